import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INIT_MOUNTS, initExecutable } from './init.ts';

const OPTS = { program: '/bin/node', argv: ['/bin/node', '/ferry/src/image/guest.ts'], env: ['HOME=/tmp'] };

test('init: a static x86-64 ELF with one R+X segment at 0x400000, the same bytes every time', () => {
  const a = initExecutable(OPTS);
  assert.deepEqual(initExecutable(OPTS), a);
  const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
  assert.deepEqual([...a.subarray(0, 8)], [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  assert.equal(dv.getUint16(16, true), 2, 'ET_EXEC');
  assert.equal(dv.getUint16(18, true), 62, 'EM_X86_64');
  assert.equal(dv.getUint16(56, true), 1, 'one program header');
  assert.equal(dv.getUint32(64, true), 1, 'PT_LOAD');
  assert.equal(dv.getUint32(68, true), 5, 'PF_R | PF_X, not writable');
  assert.equal(dv.getBigUint64(64 + 32, true), BigInt(a.length));
  const entry = Number(dv.getBigUint64(24, true)) - 0x400000;
  assert.ok(entry > 120 && entry < a.length);
  assert.ok(a.length < 2048);
  const text = Buffer.from(a).toString('latin1');
  for (const s of [
    '/bin/node\0',
    '/ferry/src/image/guest.ts\0',
    'HOME=/tmp\0',
    'securityfs\0',
    '/sys/kernel/security\0',
  ]) {
    assert.ok(text.includes(s), s);
  }
  assert.ok(!text.includes('/bin/sh'), 'no shell is named');
  // The code ends with sync, reboot(POWER_OFF) and exit.
  assert.ok(
    Buffer.from(a).includes(Buffer.from([0xbf, 0xad, 0xde, 0xe1, 0xfe])),
    'mov edi, LINUX_REBOOT_MAGIC1',
  );
  assert.notDeepEqual(initExecutable({ ...OPTS, argv: ['/bin/node', '/other.ts'] }), a);
  assert.ok(
    INIT_MOUNTS.every((m) => (m.flags & 8) === 8),
    'every mount is noexec',
  );
});
