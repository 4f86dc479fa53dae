/**
 * The app `ferry demo` publishes: examples/csv-stats compiled by `npm run build:examples` and
 * committed under src/cli/generated/, so the demo needs no compiler (AssemblyScript is a
 * devDependency) at run time. test/build-examples.test.ts checks that compiling the sources
 * again gives exactly these bytes.
 */
import { fileURLToPath } from 'node:url';

export const DEMO_APP_PATH = fileURLToPath(new URL('./generated/csv-stats.wasm', import.meta.url));
