/**
 * `ferry measure runtime [--policy-out FILE] [--json]`: the enclave runtime's measurement
 * (src/enclave/measure.ts), the reference values derived from it for each kind Ferry can pin
 * (sim, tpm2 PCR 23), and whether they equal the values published for this release
 * (release/reference-values.json). `--policy-out` writes the production-settings appraisal
 * policy (tpm2 only, no debug, TCB UpToDate) pinning them, for `dataset add --policy FILE`
 * and `app publish --policy FILE`.
 */
import { writeFile } from 'node:fs/promises';
import { policyHash } from '../../attestation/index.ts';
import {
  RELEASE_FILE,
  readPublishedReferenceValues,
  runtimeMeasuredFiles,
  runtimeMeasurement,
  runtimePolicy,
  runtimeReferenceValues,
} from '../../enclave/index.ts';
import { FerryError, isFerryError, toHex } from '../../kernel/index.ts';
import { optionalString } from '../args.ts';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'measure runtime',
  summary: "print the enclave runtime's measurement and the reference values that pin it",
  usage: 'measure runtime [--policy-out FILE] [--json]',
  description: `
The runtime measurement is the SHA-256 of a manifest of every file the enclave process loads
(the closure of src/enclave/main.ts's imports, each file by path and SHA-256) and of the npm
packages it imports (name, version, package-lock integrity); see docs/protocol.md §9.
Prints it, the reference values derived from it:
  sim   referenceValues.sim.measurement          (development chains only)
  tpm2  referenceValues.tpm2.pcrs.sha256["23"]   (PCR 23 after the node's extension)
and whether they equal the values published for this release in ${RELEASE_FILE}.
--policy-out FILE writes an appraisal policy pinning the tpm2 value with production settings
(kinds tpm2 only, no debug, TCB UpToDate, evidence at most 600 s old): use it with
"dataset add --policy FILE" and "app publish --policy FILE".
--json prints {runtimeMeasurement, referenceValues, fileCount, files, packages, published,
policyOut?, policyHash?}. Exit 0.`,
  options: {
    'policy-out': {
      type: 'string',
      value: 'FILE',
      description: 'write the pinning appraisal policy (JSON) here',
    },
  },
  async run(ctx) {
    const m = await runtimeMeasurement();
    const { files, packages } = await runtimeMeasuredFiles();
    const referenceValues = runtimeReferenceValues(m);
    let published: {
      file: string;
      version: string | null;
      runtimeMeasurement: string | null;
      matches: boolean;
      error?: string;
    };
    try {
      const p = readPublishedReferenceValues();
      published = {
        file: RELEASE_FILE,
        version: p.version,
        runtimeMeasurement: p.runtimeMeasurement,
        matches: p.runtimeMeasurement === toHex(m),
      };
    } catch (e) {
      if (!isFerryError(e)) throw e;
      published = {
        file: RELEASE_FILE,
        version: null,
        runtimeMeasurement: null,
        matches: false,
        error: e.code,
      };
    }
    const out = optionalString(ctx, 'policy-out');
    let policyHashHex: string | undefined;
    if (out !== undefined) {
      const policy = runtimePolicy(m, `runtime-${toHex(m).slice(0, 16)}`);
      try {
        await writeFile(out, `${JSON.stringify(policy, null, 2)}\n`, { flag: 'w' });
      } catch (e) {
        throw new FerryError('IO_WRITE_FAILED', `cannot write the --policy-out file ${out}`, {
          cause: e,
          hints: [(e as NodeJS.ErrnoException).code ?? String(e)],
        });
      }
      policyHashHex = toHex(policyHash(policy));
    }
    const json = {
      runtimeMeasurement: toHex(m),
      referenceValues,
      fileCount: files.length,
      files,
      packages,
      published,
      ...(out !== undefined ? { policyOut: out, policyHash: policyHashHex } : {}),
    };
    const text = [
      `runtime measurement: ${toHex(m)} (${files.length} files, ${packages.length} npm packages)`,
      `  sim   referenceValues.sim.measurement:       ${referenceValues.sim.measurement[0]}`,
      `  tpm2  referenceValues.tpm2.pcrs.sha256.23:   ${referenceValues.tpm2.pcrs.sha256['23'][0]}`,
      published.matches
        ? `published (${RELEASE_FILE}, version ${published.version}): equal`
        : published.runtimeMeasurement
          ? `published (${RELEASE_FILE}, version ${published.version}): DIFFERENT (${published.runtimeMeasurement}): this tree is not the published runtime`
          : `published (${RELEASE_FILE}): unavailable (${published.error})`,
      ...(out !== undefined ? [`policy written to ${out} (policy hash ${policyHashHex})`] : []),
    ].join('\n');
    return { json, text };
  },
});
