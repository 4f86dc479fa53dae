/**
 * A test helper that emulates the kernel side of configfs-tsm over a temporary directory:
 * `mkdir` of a report populates `provider` and `generation`; every write to `inblob` or
 * `privlevel` bumps `generation` and (for inblob) produces `outblob` and `auxblob` from the
 * configured samples. `interfere` makes the next N reports see an extra generation bump, as
 * if another process wrote concurrently. Not for production use.
 */
import { mkdtempSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { TsmFs } from './backend.ts';

export type FakeTsmOptions = {
  provider: string;
  /** outblob for a given inblob. */
  outblob: (inblob: Uint8Array) => Uint8Array;
  auxblob?: Uint8Array;
};

export class FakeTsm {
  readonly root: string;
  readonly fs: TsmFs;
  /** Reports created so far and writes seen (for assertions). */
  readonly log: string[] = [];
  interfere = 0;

  constructor(opts: FakeTsmOptions) {
    this.root = join(mkdtempSync(join(tmpdir(), 'ferry-fake-tsm-')), 'report');
    const gen = async (dir: string, delta: number) => {
      const p = join(dir, 'generation');
      const g = Number((await fs.readFile(p, 'utf8')).trim()) + delta;
      await fs.writeFile(p, `${g}\n`);
    };
    this.fs = {
      stat: (p) => fs.stat(p),
      mkdir: async (p) => {
        await fs.mkdir(p);
        this.log.push(`mkdir ${basename(p)}`);
        await fs.writeFile(join(p, 'provider'), `${opts.provider}\n`);
        await fs.writeFile(join(p, 'generation'), '0\n');
      },
      rmdir: async (p) => {
        this.log.push(`rmdir ${basename(p)}`);
        await fs.rm(p, { recursive: true });
      },
      readFile: async (p) => new Uint8Array(await fs.readFile(p)),
      writeFile: async (p, data) => {
        const dir = dirname(p);
        const name = basename(p);
        this.log.push(`write ${name}`);
        if (name !== 'inblob' && name !== 'privlevel')
          throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
        await fs.writeFile(p, data);
        await gen(dir, 1);
        if (name === 'inblob') {
          await fs.writeFile(join(dir, 'outblob'), opts.outblob(data));
          if (opts.auxblob) await fs.writeFile(join(dir, 'auxblob'), opts.auxblob);
          if (this.interfere > 0) {
            this.interfere--;
            await gen(dir, 1);
          }
        }
      },
    };
  }

  /** Creates the report root (the fake "tree"); without it the backend sees no configfs-tsm. */
  async mount(): Promise<this> {
    await fs.mkdir(this.root, { recursive: true });
    return this;
  }
}
