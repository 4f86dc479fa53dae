// Reference values of the node image, pure: the recorded boot of test/vectors/image (a real
// OVMF + swtpm boot) against the recipes, and what a changed kernel, initrd or command line does.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  checkSoftwareIdentified,
  encodePolicyDocument,
  parseEventLog,
  replayEventLog,
} from '../attestation/index.ts';
import { isFerryError } from '../kernel/index.ts';
import { FIRMWARE, findGolden } from './firmware.ts';
import {
  BOOT_PCRS,
  type BootInputs,
  expectedEvents,
  expectedPcrs,
  imagePolicy,
  loadOptionsDigest,
} from './measure.ts';
import { authenticodeSha256, kernelEventDigest, q35Below4g, qemuPatchedKernel } from './pe.ts';

const VECTOR = JSON.parse(
  readFileSync(new URL('../../test/vectors/image/ovmf-4m-q35-1cpu-1024mib.json', import.meta.url), 'utf8'),
) as { cmdline: string; initrdSha256: string; pcrs: { sha256: Record<string, string> }; eventLog: string };
const LOG = parseEventLog(Buffer.from(VECTOR.eventLog, 'base64'));
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/**
 * A synthetic bzImage: an MZ/PE32+ image with two sections and a certificate table, whose
 * setup header ("HdrS", protocol 2.15, XLF_CAN_BE_LOADED_ABOVE_4G) sits where Linux puts it.
 */
function syntheticKernel(): Uint8Array {
  const size = 0x3000 + 16;
  const k = new Uint8Array(size);
  const dv = new DataView(k.buffer);
  dv.setUint16(0, 0x5a4d, true);
  dv.setUint32(0x3c, 0x80, true);
  const pe = 0x80;
  dv.setUint32(pe, 0x4550, true);
  dv.setUint16(pe + 4, 0x8664, true);
  dv.setUint16(pe + 6, 2, true); // sections
  dv.setUint16(pe + 20, 240, true); // SizeOfOptionalHeader (PE32+ with 16 directories)
  const opt = pe + 24;
  dv.setUint16(opt, 0x20b, true);
  dv.setUint32(opt + 60, 0x1000, true); // SizeOfHeaders
  dv.setUint32(opt + 64, 0xdeadbeef, true); // CheckSum
  dv.setUint32(opt + 108, 16, true); // NumberOfRvaAndSizes
  dv.setUint32(opt + 112 + 32, 0x3000, true); // certificate table: file offset
  dv.setUint32(opt + 112 + 36, 16, true); // and size
  const sec = opt + 240;
  for (const [i, ptr] of [
    [0, 0x2000],
    [1, 0x1000],
  ]) {
    dv.setUint32(sec + i * 40 + 16, 0x1000, true); // SizeOfRawData
    dv.setUint32(sec + i * 40 + 20, ptr, true); // PointerToRawData (out of order on purpose)
  }
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x20f, true);
  dv.setUint32(0x22c, 0x7fffffff, true);
  dv.setUint16(0x236, 0x2 | 0x1, true);
  for (let i = 0x1000; i < 0x3000; i++) k[i] = (i * 7) & 0xff;
  return k;
}

function inputs(over: Partial<BootInputs> = {}): BootInputs {
  const g = findGolden(FIRMWARE[0].codeSha256, 1, 1024);
  assert.ok(!('missing' in g));
  return {
    kernel: syntheticKernel(),
    initrd: { sha256: VECTOR.initrdSha256, size: 40840513 },
    cmdline: VECTOR.cmdline,
    memoryMiB: 1024,
    firmware: g.firmware,
    peifv: g.peifv,
    ...over,
  };
}

test('event log: the recorded log replays to the PCRs the guest read', () => {
  assert.equal(LOG.length, 24);
  const replayed = replayEventLog(LOG);
  for (const i of BOOT_PCRS) assert.equal(replayed[String(i)], VECTOR.pcrs.sha256[String(i)], `PCR ${i}`);
  assert.throws(
    () => parseEventLog(Buffer.from(VECTOR.eventLog, 'base64').subarray(0, 200)),
    (e) => isFerryError(e) && e.code === 'ATTESTATION_MALFORMED',
  );
});

test('recipes: every event but the kernel equals the recorded boot, in log order per PCR', () => {
  const expected = expectedEvents(inputs());
  for (const pcr of [0, 1, 2, 3, 4, 5, 6, 7, 9]) {
    const want = LOG.filter((e) => e.pcr === pcr).map((e) => e.digests.sha256);
    const got = expected.filter((e) => e.pcr === pcr).map((e) => e.digest);
    if (pcr === 4) {
      assert.deepEqual(got.slice(1), want.slice(1)); // the synthetic kernel differs from the booted one
      assert.equal(got.length, want.length);
    } else {
      assert.deepEqual(got, want, `PCR ${pcr}`);
    }
  }
  assert.equal(loadOptionsDigest(VECTOR.cmdline), LOG.find((e) => e.pcr === 9)?.digests.sha256);
  const pcrs = expectedPcrs(expected);
  for (const i of [0, 1, 2, 3, 5, 6, 7, 9])
    assert.equal(pcrs[String(i)], VECTOR.pcrs.sha256[String(i)], `PCR ${i}`);
});

test('Authenticode: checksum and certificate entry excluded, sections in file order, signature bytes excluded', () => {
  const k = syntheticKernel();
  const base = authenticodeSha256(k);
  // By hand: headers minus checksum and cert entry, then the section at 0x1000, then 0x2000.
  const opt = 0x80 + 24;
  const manual = createHash('sha256')
    .update(k.subarray(0, opt + 64))
    .update(k.subarray(opt + 68, opt + 112 + 32))
    .update(k.subarray(opt + 112 + 40, 0x1000))
    .update(k.subarray(0x1000, 0x2000))
    .update(k.subarray(0x2000, 0x3000))
    .digest('hex');
  assert.equal(base, manual);
  const same = Uint8Array.from(k);
  new DataView(same.buffer).setUint32(opt + 64, 1, true); // another checksum
  same[0x3005] ^= 1; // another signature
  assert.equal(authenticodeSha256(same), base);
  const tampered = Uint8Array.from(k);
  tampered[0x2345] ^= 1;
  assert.notEqual(authenticodeSha256(tampered), base);
  assert.throws(
    () => authenticodeSha256(new Uint8Array(64)),
    (e) => isFerryError(e) && e.code === 'IMAGE_INVALID',
  );
});

test("QEMU's setup-header patch: the fields x86_load_linux writes, and nothing else", () => {
  const k = syntheticKernel();
  const p = qemuPatchedKernel(k, 40840513, 1024);
  const dv = new DataView(p.buffer);
  assert.equal(p[0x210], 0xb0);
  assert.equal(p[0x211] & 0x80, 0x80);
  assert.equal(dv.getUint16(0x224, true), 0xfe00);
  assert.equal(dv.getUint32(0x228, true), 0x20000);
  assert.equal(dv.getUint32(0x218, true), (1024 * 1024 * 1024 - 0x28000 - 1 - 40840513) & ~0xfff);
  assert.equal(dv.getUint32(0x21c, true), 40840513);
  const changed = [...p.keys()].filter((i) => p[i] !== k[i]);
  assert.ok(
    changed.every((i) => i >= 0x210 && i < 0x230),
    `changed: ${changed.map((i) => i.toString(16))}`,
  );
  assert.equal(q35Below4g(4096), 0x80000000);
  assert.equal(q35Below4g(512), 512 * 1024 * 1024);
});

test('attacker: a changed kernel, initrd or command line gives other PCRs, which the honest policy does not list', () => {
  const honest = expectedPcrs(expectedEvents(inputs()));
  const policy = imagePolicy(honest, 'honest');
  assert.equal(checkSoftwareIdentified(policy, 'tpm2'), null);
  const pinned = policy.referenceValues.tpm2?.pcrs?.sha256 ?? {};
  assert.deepEqual(Object.keys(pinned).sort(), BOOT_PCRS.map(String).sort());
  const evilKernel = syntheticKernel();
  evilKernel[0x1800] ^= 0x40;
  const cases: [string, Partial<BootInputs>, number][] = [
    ['kernel', { kernel: evilKernel }, 4],
    ['initrd', { initrd: { sha256: sha256('another initrd'), size: 40840513 } }, 9],
    ['initrd size', { initrd: { sha256: VECTOR.initrdSha256, size: 40840514 + 4096 } }, 4],
    ['cmdline', { cmdline: `${VECTOR.cmdline} init=/bin/sh` }, 9],
    ['RAM', { memoryMiB: 2048 }, 4],
  ];
  for (const [what, over, pcr] of cases) {
    const pcrs = expectedPcrs(expectedEvents(inputs(over)));
    assert.notEqual(pcrs[String(pcr)], honest[String(pcr)], what);
    assert.ok(!pinned[String(pcr)].includes(pcrs[String(pcr)]), `${what}: the policy refuses PCR ${pcr}`);
    for (const i of BOOT_PCRS.filter((i) => i !== pcr))
      assert.equal(pcrs[String(i)], honest[String(i)], `${what}: PCR ${i}`);
  }
  // A kernel digest differs from the file's own Authenticode (QEMU's patch is part of it).
  assert.notEqual(kernelEventDigest(syntheticKernel(), 1000, 1024), authenticodeSha256(syntheticKernel()));
});

test('golden values: unknown firmware or VM shape is refused, not guessed', () => {
  assert.ok('missing' in findGolden('00'.repeat(32), 1, 1024));
  assert.ok('missing' in findGolden(FIRMWARE[0].codeSha256, 2, 1024));
  assert.ok('missing' in findGolden(FIRMWARE[0].codeSha256, 1, 512));
  for (const fw of FIRMWARE) {
    assert.equal(Buffer.from(fw.boot0000, 'hex').length, 62);
    assert.ok(fw.provenance.length > 40);
  }
});

test('the policy pins every event of PCRs 0-7 and 9 with the TCG type names the firmware logs, and fits on chain', () => {
  const events = expectedEvents(inputs());
  const policy = imagePolicy(expectedPcrs(events), 'with-events', events);
  const pinned = policy.referenceValues.tpm2?.events?.sha256 ?? {};
  assert.deepEqual(Object.keys(pinned).sort(), BOOT_PCRS.map(String).sort());
  for (const i of BOOT_PCRS) {
    const recorded = LOG.filter((e) => e.pcr === i);
    assert.deepEqual(
      (pinned[String(i)] ?? []).map((e) => e.type),
      recorded.map((e) => e.typeName),
      `types of PCR ${i}`,
    );
    if (i !== 4) {
      assert.deepEqual(
        (pinned[String(i)] ?? []).map((e) => e.digest),
        recorded.map((e) => e.digests.sha256),
        `digests of PCR ${i}`,
      );
    }
  }
  assert.ok(encodePolicyDocument(policy).length <= 16384);
  // Without events, the policy is what it was.
  assert.equal(imagePolicy(expectedPcrs(events), 'x').referenceValues.tpm2?.events, undefined);
});
