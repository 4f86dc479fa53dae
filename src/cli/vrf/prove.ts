/** `ferry vrf prove`: an RFC 9381 proof and its output for one input. */
import { vrfProofToHash, vrfProve } from '../../crypto/vrf/index.ts';
import { toHex } from '../../kernel/index.ts';
import { requireHex } from '../args.ts';
import { defineCommand } from '../command.ts';
import { alphaOption } from './hex.ts';

export default defineCommand({
  name: 'vrf prove',
  summary: 'prove a VRF output for an input with a secret key',
  usage: 'vrf prove --sk HEX --alpha HEX [--json]',
  description: `
Computes the 80-byte proof pi = Gamma || c || s and the 64-byte output beta of
ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381). Deterministic: the same sk and alpha give the same pi.
JSON: {"pi": hex, "beta": hex}`,
  options: {
    sk: { type: 'string', value: 'HEX', description: '32-byte secret key (seed), hex' },
    alpha: { type: 'string', value: 'HEX', description: "input bytes, hex ('' for the empty input)" },
  },
  async run(ctx) {
    const sk = requireHex(ctx, 'sk', 32);
    const alpha = alphaOption(ctx);
    const pi = vrfProve(sk, alpha);
    sk.fill(0);
    const out = { pi: toHex(pi), beta: toHex(vrfProofToHash(pi)) };
    return { json: out, text: `pi: ${out.pi}\nbeta: ${out.beta}` };
  },
});
