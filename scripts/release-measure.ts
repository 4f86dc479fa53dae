/**
 * `npm run release:measure`: writes release/reference-values.json, the published reference
 * values of this tree's enclave runtime (src/enclave/release.ts, docs/protocol.md §9.3).
 * Run it whenever a file the enclave process loads changes, and commit the result.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../src/enclave/measure.ts';
import { currentReferenceValues, RELEASE_FILE } from '../src/enclave/release.ts';

const r = await currentReferenceValues();
const path = join(REPO_ROOT, RELEASE_FILE);
mkdirSync(dirname(path), { recursive: true });
writeFileSync(path, `${JSON.stringify(r, null, 2)}\n`);
process.stdout.write(
  `${RELEASE_FILE}: ${r.package} ${r.version}, runtime measurement ${r.runtimeMeasurement} (${r.files.length} files, ${r.packages.length} packages)\n`,
);
