/** `ferry vrf verify`: checks an RFC 9381 proof and prints its output. */
import { vrfVerify } from '../../crypto/vrf/index.ts';
import { EXIT, FerryError, toHex } from '../../kernel/index.ts';
import { requireHex } from '../args.ts';
import { defineCommand } from '../command.ts';
import { alphaOption } from './hex.ts';

export default defineCommand({
  name: 'vrf verify',
  summary: 'verify a VRF proof under a public key and print its output',
  usage: 'vrf verify --pk HEX --alpha HEX --pi HEX [--json]',
  description: `
Verifies pi with full public-key validation (RFC 9381 ECVRF_verify with validate_key, and
RFC 8032 canonical decoding). A valid proof prints its 64-byte output beta and exits 0. An
invalid proof or public key exits 3 and says why, with a stable code: VRF_PROOF_INVALID,
VRF_PROOF_WRONG_LENGTH, VRF_PROOF_INVALID_GAMMA, VRF_PROOF_S_OUT_OF_RANGE,
VRF_INVALID_PUBLIC_KEY, VRF_PUBLIC_KEY_SMALL_ORDER, VRF_PUBLIC_KEY_NON_CANONICAL.
Malformed hex or a public key that is not 32 bytes is a usage error (exit 2).
JSON: {"valid": true, "beta": hex} or {"valid": false, "error": {"code", "message", "hints"}}`,
  options: {
    pk: { type: 'string', value: 'HEX', description: '32-byte public key, hex' },
    alpha: { type: 'string', value: 'HEX', description: "input bytes, hex ('' for the empty input)" },
    pi: { type: 'string', value: 'HEX', description: '80-byte proof, hex' },
  },
  async run(ctx) {
    const pk = requireHex(ctx, 'pk', 32);
    const alpha = alphaOption(ctx);
    const pi = requireHex(ctx, 'pi');
    let beta: Uint8Array;
    try {
      beta = vrfVerify(pk, alpha, pi);
    } catch (e) {
      if (e instanceof FerryError && e.code.startsWith('VRF_') && e.exitCode === EXIT.verification) {
        return {
          json: { valid: false, error: e.toJSON() },
          text: [`invalid: ${e.message} [${e.code}]`, ...e.hints.map((h) => `  ${h}`)].join('\n'),
          exitCode: EXIT.verification,
        };
      }
      throw e;
    }
    const out = { valid: true, beta: toHex(beta) };
    return { json: out, text: `valid: true\nbeta: ${out.beta}` };
  },
});
