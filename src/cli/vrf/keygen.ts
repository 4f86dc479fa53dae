/** `ferry vrf keygen`: a fresh VRF key pair. */
import { vrfKeygen } from '../../crypto/vrf/index.ts';
import { toHex } from '../../kernel/index.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'vrf keygen',
  summary: 'generate an RFC 9381 VRF key pair',
  usage: 'vrf keygen [--json]',
  description: `
Prints a new secret key (sk, a 32-byte seed) and its public key (pk, a compressed
edwards25519 point), both as hex. The secret key is printed on stdout: redirect it to a file
that only you can read.
JSON: {"sk": hex, "pk": hex}`,
  options: {},
  async run() {
    const { sk, pk } = vrfKeygen();
    const out = { sk: toHex(sk), pk: toHex(pk) };
    sk.fill(0);
    return { json: out, text: `sk: ${out.sk}\npk: ${out.pk}` };
  },
});
