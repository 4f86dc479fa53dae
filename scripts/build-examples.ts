/** `npm run build:examples`: builds every example app into build/examples/ (see examples/index.ts). */
import { EXAMPLES, type ExampleName, buildExample } from '../examples/index.ts';

const force = process.argv.includes('--force');
for (const name of Object.keys(EXAMPLES) as ExampleName[]) {
  const path = await buildExample(name, force);
  process.stdout.write(`${name}: ${path}\n`);
}
