/** The `--alpha` option shared by `ferry vrf prove` and `ferry vrf verify`. */
import { FerryError, fromHex } from '../../kernel/index.ts';
import type { CommandContext } from '../command.ts';

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
