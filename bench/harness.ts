/**
 * Benchmark harness. Each `bench/*.bench.ts` default-exports a `Bench`: a function that runs
 * its measurements (ours and the baselines, in the same run) and returns rows. `npm run bench`
 * (bench/run.ts) runs them, prints a table and writes bench/results/<timestamp>.json.
 * Benchmarks never assert wall-clock times.
 */
export type BenchRow = {
  group: string;
  name: string;
  value: number;
  unit: string;
  /** Name of the row in the same group this one is compared with. */
  baseline?: string;
  /** value / baseline value (computed by the runner when `baseline` is set). */
  ratio?: number;
  note?: string;
};

export type BenchOptions = {
  /** Smaller sizes for a quick run (`npm run bench -- --quick`). */
  quick: boolean;
  log: (line: string) => void;
};

export type Bench = (opts: BenchOptions) => Promise<BenchRow[]>;

/** Runs `fn` repeatedly for at least `ms` milliseconds; returns operations per second. */
export async function opsPerSecond(
  fn: () => unknown | Promise<unknown>,
  ms = 1000,
  warmup = 20,
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < ms) {
    await fn();
    n++;
  }
  return (n * 1000) / (performance.now() - start);
}
