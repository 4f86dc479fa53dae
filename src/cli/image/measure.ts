/**
 * `ferry image measure DIR [--firmware F] [--memory MiB] [--cpus N] [--policy-out FILE]
 * [--json]`: the reference values of a node image for a TPM measured boot under the pinned
 * OVMF (src/image/measure.ts, docs/protocol.md §17.3), and the appraisal policy pinning them.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { policyHash } from '../../attestation/index.ts';
import { measureImage } from '../../image/index.ts';
import { FerryError, toHex } from '../../kernel/index.ts';
import { intOption, optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'image measure',
  summary:
    "print a node image's measured-boot reference values (PCR 0-7, 9) and write the policy pinning them",
  usage:
    'image measure DIR [--firmware OVMF_CODE_4M.fd] [--memory MiB] [--cpus N] [--policy-out FILE] [--json]',
  description: `
Computes what a TPM measured boot of the image in DIR (from "ferry image build") under QEMU
(q35, -kernel/-initrd/-append) and the pinned OVMF logs: the event digests (the kernel as an EFI
image after QEMU's setup-header patch, the command line, the initrd, the firmware's fixed
events) and the sha256 PCRs 0-7 and 9 they give. PCR 0 and 1 use values recorded per firmware
build and VM shape (src/image/firmware.ts); an unrecorded shape is IMAGE_NO_GOLDEN_VALUES.
Writes an appraisal policy (tpm2 only, production settings) pinning those PCRs and each of
their events (referenceValues.tpm2.events: a verifier given the guest's TCG event log names the
event that differs; evidence without the log is refused) to --policy-out (default
DIR/policy.json) for "dataset add --policy" and "app publish --policy".
--json prints {image, vm, events, pcrs, policyOut, policyHash, provenance}.`,
  options: {
    firmware: {
      type: 'string',
      value: 'FILE',
      description: 'OVMF code file (default /usr/share/OVMF/OVMF_CODE_4M.fd)',
    },
    memory: { type: 'string', value: 'MiB', description: 'guest RAM (default 1024)' },
    cpus: { type: 'string', value: 'N', description: 'vCPUs (default 1)' },
    'policy-out': {
      type: 'string',
      value: 'FILE',
      description: 'where to write the policy (default DIR/policy.json)',
    },
  },
  positionals: { min: 1, max: 1 },
  async run(ctx) {
    const dir = ctx.positionals[0];
    const m = await measureImage(dir, {
      firmware: optionalString(ctx, 'firmware'),
      memoryMiB: intOption(ctx, 'memory', 1024, 1),
      cpus: intOption(ctx, 'cpus', 1, 1),
    });
    const policyOut = optionalString(ctx, 'policy-out') ?? join(dir, 'policy.json');
    try {
      await writeFile(policyOut, `${JSON.stringify(m.policy, null, 2)}\n`);
    } catch (e) {
      throw new FerryError('IO_WRITE_FAILED', `cannot write the policy file ${policyOut}`, {
        cause: e,
        hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
      });
    }
    const hash = toHex(policyHash(m.policy));
    const json = { ...m, policyOut, policyHash: hash };
    const text = [
      `node image ${m.image.digest} (${m.vm.cpus} vCPU, ${m.vm.memoryMiB} MiB, ${m.vm.firmware})`,
      ...m.events.map((e) => `  PCR ${String(e.pcr).padStart(2)}  ${e.digest}  ${e.type}: ${e.what}`),
      'expected PCRs (sha256):',
      ...Object.entries(m.pcrs.sha256).map(([i, v]) => `  ${i.padStart(2)}  ${v}`),
      `policy written to ${policyOut} (policy hash ${hash})`,
    ].join('\n');
    return { json, text };
  },
});
