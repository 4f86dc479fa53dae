/**
 * `npm run build:examples [-- --force]`: builds every example app into build/examples/ (see
 * examples/index.ts), then refreshes the demo's committed copy of csv-stats
 * (src/cli/generated/csv-stats.wasm; test/build-examples.test.ts checks it is current).
 */
import { copyFileSync } from 'node:fs';
import { EXAMPLES, type ExampleName, buildExample } from '../examples/index.ts';
import { DEMO_APP_PATH } from '../src/cli/demo-app.ts';

const force = process.argv.includes('--force');
for (const name of Object.keys(EXAMPLES) as ExampleName[]) {
  const path = await buildExample(name, force);
  process.stdout.write(`${name}: ${path}\n`);
}
copyFileSync(await buildExample('csv-stats'), DEMO_APP_PATH);
process.stdout.write(`demo app: ${DEMO_APP_PATH}\n`);
