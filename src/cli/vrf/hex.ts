/** Hex option parsing shared by the `ferry vrf` commands. */
import { FerryError, fromHex } from '../../kernel/index.ts';
import { requireHex } from '../args.ts';
import type { CommandContext } from '../command.ts';

/** A required hex option of exactly `length` bytes; USAGE_* errors (exit 2) otherwise. */
export function hexOption(ctx: CommandContext, name: string, length?: number): Uint8Array {
  return requireHex(ctx, name, length);
}

/**
 * `--alpha HEX`: required, but may be empty (`--alpha ''` is the empty string, a valid VRF
 * input). Malformed hex is a usage error.
 */
export function alphaOption(ctx: CommandContext): Uint8Array {
  const v = ctx.values.alpha;
  if (typeof v !== 'string') {
    throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --alpha', {
      hints: ["pass the VRF input as hex; --alpha '' is the empty input"],
    });
  }
  try {
    return fromHex(v, '--alpha');
  } catch (e) {
    const fe = e as FerryError;
    throw new FerryError('USAGE_INVALID_ARGUMENT', fe.message, { hints: fe.hints, cause: e });
  }
}
