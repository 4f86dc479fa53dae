/** `npm run bench [-- --quick] [-- --only NAME]`: runs every bench/*.bench.ts. */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Bench, BenchRow } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, only: { type: 'string', multiple: true } },
  allowPositionals: false,
});
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  // --only NAME selects bench/NAME.bench.ts (the file's name without .bench.ts, exactly).
  .filter(
    (f) => !values.only || values.only.some((o) => f === `${o.replace(/\.bench(\.ts)?$/, '')}.bench.ts`),
  )
  .sort();
if (values.only) {
  const names = readdirSync(here)
    .filter((f) => f.endsWith('.bench.ts'))
    .map((f) => f.slice(0, -'.bench.ts'.length));
  const unknown = values.only.filter((o) => !names.includes(o.replace(/\.bench(\.ts)?$/, '')));
  if (unknown.length > 0) {
    process.stderr.write(`bench: no bench named ${unknown.join(', ')}; there are: ${names.join(', ')}\n`);
    process.exit(2);
  }
}
const all: BenchRow[] = [];
for (const f of files) {
  process.stderr.write(`bench: ${f}\n`);
  const mod = (await import(join(here, f))) as { default: Bench };
  const rows = await mod.default({
    quick: values.quick === true,
    log: (l) => process.stderr.write(`  ${l}\n`),
  });
  for (const r of rows) {
    if (r.baseline) {
      const b = rows.find((x) => x.group === r.group && x.name === r.baseline);
      if (b && b.value !== 0) r.ratio = r.value / b.value;
    }
  }
  all.push(...rows);
}
const fmt = (n: number) =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);
const table = all.map((r) => [
  r.group,
  r.name,
  `${fmt(r.value)} ${r.unit}`,
  r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x ${r.baseline}`,
  r.note ?? '',
]);
const head = ['group', 'name', 'value', 'ratio', 'note'];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
const line = (row: string[]) =>
  row
    .map((c, i) => c.padEnd(widths[i]))
    .join('  ')
    .trimEnd();
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const row of table) console.log(line(row));
const outDir = join(here, 'results');
mkdirSync(outDir, { recursive: true });
const out = join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  out,
  `${JSON.stringify({ date: new Date().toISOString(), node: process.version, rows: all }, null, 2)}\n`,
);
console.log(`\nwrote ${out}`);
