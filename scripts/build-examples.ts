/**
 * `npm run build:examples [-- --force]`: builds every example app into build/examples/ (see
 * examples/index.ts), then refreshes the demo's committed copy of csv-stats
 * (src/cli/generated/csv-stats.wasm; test/build-examples.test.ts checks it is current). The C
 * and Rust examples are built when their toolchain is present (`.ci/run` installs it);
 * otherwise the reason is printed and they are skipped (with CI set, that is a failure).
 */
import { copyFileSync } from 'node:fs';
import {
  buildExample,
  buildNativeExample,
  EXAMPLES,
  type ExampleName,
  NATIVE_EXAMPLES,
  type NativeExampleName,
} from '../examples/index.ts';
import { DEMO_APP_PATH } from '../src/cli/demo-app.ts';

const force = process.argv.includes('--force');
for (const name of Object.keys(EXAMPLES) as ExampleName[]) {
  const path = await buildExample(name, force);
  process.stdout.write(`${name}: ${path}\n`);
}
let skipped = false;
for (const name of Object.keys(NATIVE_EXAMPLES) as NativeExampleName[]) {
  const built = await buildNativeExample(name, force);
  if (typeof built === 'string') process.stdout.write(`${name}: ${built}\n`);
  else {
    skipped = true;
    process.stdout.write(`${name}: skipped, ${built.missing}\n`);
  }
}
copyFileSync(await buildExample('csv-stats'), DEMO_APP_PATH);
process.stdout.write(`demo app: ${DEMO_APP_PATH}\n`);
if (skipped && process.env.CI) {
  process.stderr.write(
    'build-examples: CI is set and a C or Rust toolchain is missing (.ci/run installs it)\n',
  );
  process.exitCode = 1;
}
