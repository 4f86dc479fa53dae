import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { requireTool } from '../../../test/helpers/tools.ts';
import { isFerryError } from '../../kernel/index.ts';
import { Tpm2Tools } from './tools.ts';

describe('Tpm2Tools', () => {
  test('refuses an unknown TCTI and a command that is not a tpm2-tools tool', async () => {
    assert.throws(
      () => new Tpm2Tools({ tcti: 'tcp:1.2.3.4' }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
    const t = new Tpm2Tools({ tcti: 'device:/dev/tpmrm0' });
    await assert.rejects(t.run('rm', ['-rf', '/']), (e) => isFerryError(e, 'INVALID_ARGUMENT'));
    await assert.rejects(t.run('tpm2_x; ls', []), (e) => isFerryError(e, 'INVALID_ARGUMENT'));
  });
  test('sessions never overlap, run in call order, and a failed session does not block the next', async () => {
    const t = new Tpm2Tools({ tcti: 'swtpm:host=127.0.0.1,port=1' });
    const log: string[] = [];
    let inside = 0;
    const s = (name: string, ms: number, fail = false) =>
      t.session(async () => {
        inside++;
        assert.equal(inside, 1, `${name} overlapped another session`);
        log.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name}:end`);
        inside--;
        if (fail) throw new Error(`${name} failed`);
        return name;
      });
    const results = await Promise.allSettled([s('a', 30), s('b', 5, true), s('c', 1)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
  });
  test('a TPM that is not there is ATTESTATION_TPM2_COMMAND_FAILED with the tool output as hints', async (t) => {
    if (!requireTool(t, 'tpm2_getcap')) return;
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 1));
      });
    });
    const tools = new Tpm2Tools({ tcti: `swtpm:host=127.0.0.1,port=${port}`, timeoutMs: 10_000 });
    await assert.rejects(tools.run('tpm2_getcap', ['properties-fixed']), (e) => {
      assert.ok(isFerryError(e, 'ATTESTATION_TPM2_COMMAND_FAILED'));
      assert.ok(e.hints.some((h) => h.includes(`port=${port}`)));
      return true;
    });
  });
});
