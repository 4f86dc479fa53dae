/**
 * Measured-boot appraisal on swtpm (issue 17): the events `src/image/measure.ts` computes for
 * the node image's shape (the recorded boot of test/vectors/image: OVMF 2022.11, q35, 1 vCPU,
 * 1 GiB, its command line and initrd; a synthetic kernel), written as a TCG event log, extended
 * into a fresh vTPM's PCRs as the firmware would, quoted by an activated AK, and appraised by
 * Tpm2Verifier under the policy `ferry image measure` writes (PCRs and events). The attacker
 * boots a tampered kernel, initrd or command line (each rejected naming the event), sends a
 * log that does not replay (the honest log in front of a tampered boot; a log edited in one
 * bank), drops the log, or quotes from another vTPM with the honest TPM's activation.
 * Five swtpm instances, started in parallel by the first test and shared by the file; a sixth
 * replays the real log of the recorded boot (four banks) against a real four-bank quote.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { makeCredential, signActivationRecord } from '../src/attestation/tpm2/activation.ts';
import { Tpm2Backend } from '../src/attestation/tpm2/backend.ts';
import { encodeEventLog, type LogEventInput, readEventLog } from '../src/attestation/tpm2/eventlog.ts';
import { Swtpm } from '../src/attestation/tpm2/swtpm.ts';
import { Tpm2Tools } from '../src/attestation/tpm2/tools.ts';
import { Tpm2Verifier } from '../src/attestation/tpm2/verifier.ts';
import { parsePolicy } from '../src/attestation/policy.ts';
import type { AppraisalPolicy, Evidence } from '../src/attestation/types.ts';
import {
  type BootInputs,
  type ExpectedEvent,
  expectedEvents,
  expectedPcrs,
  imagePolicy,
} from '../src/image/measure.ts';
import { FIRMWARE, findGolden } from '../src/image/firmware.ts';
import { backendSpecToWire, openTeeBackend } from '../src/enclave/backends.ts';
import { type CanonicalValue, decodeTagged, encodeTagged, isFerryError, toHex } from '../src/kernel/index.ts';
import { syntheticKernel } from './helpers/bzimage.ts';
import { requireTool } from './helpers/tools.ts';

const VECTOR = JSON.parse(
  readFileSync(new URL('./vectors/image/ovmf-4m-q35-1cpu-1024mib.json', import.meta.url), 'utf8'),
) as { cmdline: string; initrdSha256: string; eventLog: string; pcrs: { sha256: Record<string, string> } };
const INITRD_SIZE = 40840513;
const BOOT = [0, 1, 2, 3, 4, 5, 6, 7, 9];
const SELECTION = `sha1:${BOOT.join(',')}+sha256:${BOOT.join(',')}`;

function inputs(over: Partial<BootInputs> = {}): BootInputs {
  const g = findGolden(FIRMWARE[0].codeSha256, 1, 1024);
  assert.ok(!('missing' in g));
  return {
    kernel: syntheticKernel(),
    initrd: { sha256: VECTOR.initrdSha256, size: INITRD_SIZE },
    cmdline: VECTOR.cmdline,
    memoryMiB: 1024,
    firmware: g.firmware,
    peifv: g.peifv,
    ...over,
  };
}

const HONEST = expectedEvents(inputs());
const evilKernel = syntheticKernel();
evilKernel[0x1800] ^= 0x40;
const BOOTS: Record<string, ExpectedEvent[]> = {
  honest: HONEST,
  kernel: expectedEvents(inputs({ kernel: evilKernel })),
  initrd: expectedEvents(
    inputs({
      initrd: { sha256: createHash('sha256').update('another initrd').digest('hex'), size: INITRD_SIZE },
    }),
  ),
  cmdline: expectedEvents(inputs({ cmdline: `${VECTOR.cmdline} init=/bin/sh` })),
};
/** The policy `ferry image measure` writes for the honest image. */
const POLICY: AppraisalPolicy = imagePolicy(expectedPcrs(HONEST), 'node-image-test', HONEST);
/** The same image pinned by PCRs only (the policy before event logs). */
const PCRS_ONLY: AppraisalPolicy = imagePolicy(expectedPcrs(HONEST), 'node-image-pcrs');

/**
 * The sha1 bank of the test logs: the firmware logs every active bank; measure.ts computes
 * sha256 only, so the sha1 digest of each event here is SHA-1 of its sha256 digest — any
 * digest does, as long as the TPM is extended with the same one.
 */
const sha1Of = (d: string) => createHash('sha1').update(Buffer.from(d, 'hex')).digest('hex');
const logEvents = (events: readonly ExpectedEvent[]): LogEventInput[] =>
  events.map((e) => ({
    pcr: e.pcr,
    type: e.type,
    digests: { sha1: sha1Of(e.digest), sha256: e.digest },
    data: new TextEncoder().encode(e.what),
  }));
const logOf = (events: readonly ExpectedEvent[]) => encodeEventLog(['sha1', 'sha256'], logEvents(events));

const activator = generateKeyPairSync('ed25519');
const activatorPub = new Uint8Array(
  Buffer.from(activator.publicKey.export({ format: 'jwk' }).x as string, 'base64url'),
);
const codes = (a: { reasons: { code: string }[] }) => a.reasons.map((r) => r.code);
const messages = (a: { reasons: { message: string }[] }) => a.reasons.map((r) => r.message).join('\n');
const withBody = (ev: Evidence, patch: Record<string, CanonicalValue | undefined>): Evidence => {
  const body: Record<string, CanonicalValue> = { ...ev.body };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete body[k];
    else body[k] = v;
  }
  return { ...ev, body };
};

type Booted = {
  sw: Swtpm;
  be: Tpm2Backend;
  root: X509Certificate;
  ekCert: X509Certificate;
};

/**
 * A fresh vTPM that went through `events` as the firmware would (each event extended into its
 * PCR, sha1 and sha256, in log order), with an AK activated by the trusted activator and a
 * backend that sends the log of `events` from a file.
 */
async function boot(events: readonly ExpectedEvent[], dir: string, name: string): Promise<Booted> {
  const sw = await Swtpm.start({ pcrBanks: ['sha1', 'sha256'] });
  try {
    const tools = new Tpm2Tools({ tcti: sw.tcti });
    await tools.run(
      'tpm2_pcrextend',
      logEvents(events).map((e) => `${e.pcr}:sha1=${e.digests.sha1},sha256=${e.digests.sha256}`),
    );
    const logFile = join(dir, `${name}.log`);
    await writeFile(logFile, logOf(events));
    const be = await Tpm2Backend.open({
      tools,
      akAlg: 'rsa',
      akHandle: 0x81010020,
      pcrSelection: SELECTION,
      eventLogFile: logFile,
    });
    const ekCert = new X509Certificate(Buffer.from(await be.readEkCertificate()));
    be.setEkChain([new Uint8Array(new X509Certificate(await sw.issuerCaPem()).raw)]);
    const secret = new Uint8Array(randomBytes(32));
    const got = await be.activateCredential(makeCredential(ekCert.publicKey, be.akName, secret));
    assert.equal(toHex(got), toHex(secret));
    be.setActivationRecord(
      signActivationRecord(activator.privateKey, {
        akName: be.akName,
        ekCert,
        activatedAt: Math.floor(Date.now() / 1000),
      }),
    );
    return { sw, be, root: new X509Certificate(await sw.rootCaPem()), ekCert };
  } catch (e) {
    await sw.stop();
    throw e;
  }
}

describe('measured boot: event log appraisal on swtpm', () => {
  let started: Promise<{ dir: string; tpms: Record<string, Booted> }> | undefined;
  async function tpms(t: TestContext): Promise<Record<string, Booted> | null> {
    if (!['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((n) => requireTool(t, n))) return null;
    started ??= (async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ferry-eventlog-'));
      const names = [...Object.keys(BOOTS), 'other'];
      const settled = await Promise.allSettled(names.map((n) => boot(BOOTS[n] ?? HONEST, dir, n)));
      const out: Record<string, Booted> = {};
      settled.forEach((s, i) => {
        if (s.status === 'fulfilled') out[names[i] as string] = s.value;
      });
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) {
        await Promise.all(Object.values(out).map((b) => b.sw.stop()));
        throw (failed as PromiseRejectedResult).reason;
      }
      return { dir, tpms: out };
    })();
    return (await started).tpms;
  }
  after(async () => {
    if (!started) return;
    const s = await started.catch(() => null);
    if (!s) return;
    await Promise.all(Object.values(s.tpms).map((b) => b.sw.stop()));
    await rm(s.dir, { recursive: true, force: true });
  });

  /** The verifier of the honest platform's relying party: its TPM vendor CA and the activator. */
  const verifier = (b: Booted) =>
    new Tpm2Verifier({ trustedCas: [b.root], trustedActivators: [activatorPub] });
  const appraise = async (b: Booted, ev: Evidence, policy = POLICY, v = verifier(b)) =>
    v.appraise(ev, { policy, now: new Date(), expectedReportData: ev.reportData });
  const collect = (b: Booted) => b.be.collect(new Uint8Array(randomBytes(64)));

  test('honest boot: the quote and its event log (read from the backend file) are accepted; the events are claimed', async (t) => {
    const all = await tpms(t);
    if (!all) return;
    const h = all.honest as Booted;
    const collected = await collect(h);
    assert.ok(collected.body.eventLog instanceof Uint8Array);
    // As evidence travels (docs/protocol.md §8).
    const ev = decodeTagged(
      'ferry/evidence/v1',
      encodeTagged('ferry/evidence/v1', collected as unknown as CanonicalValue),
    ) as unknown as Evidence;
    const a = await appraise(h, ev);
    assert.deepEqual(a.reasons, []);
    assert.equal(a.accepted, true);
    assert.equal(a.claims.eventLogEvents, HONEST.length);
    assert.equal(a.claims.eventLogBanks, 'sha1,sha256');
    assert.equal(a.claims['pcr.sha256.9'], expectedPcrs(HONEST)['9']);
    // A policy without events behaves as before: with or without the log.
    assert.equal((await appraise(h, ev, PCRS_ONLY)).accepted, true);
    assert.equal((await appraise(h, withBody(ev, { eventLog: undefined }), PCRS_ONLY)).accepted, true);
    assert.equal((await appraise(h, withBody(ev, { eventLog: null }), PCRS_ONLY)).accepted, true);
  });

  test('the backends read the log at collect: Tpm2Backend eventLogFile, and the enclave spec eventLogFile', async (t) => {
    const all = await tpms(t);
    if (!all) return;
    const h = all.honest as Booted;
    const { dir } = await (started as NonNullable<typeof started>);
    const file = join(dir, 'later.log');
    const be = await Tpm2Backend.open({
      tools: h.be.tools,
      akHandle: 0x81010020,
      pcrSelection: SELECTION,
      eventLogFile: file,
    });
    await assert.rejects(be.collect(new Uint8Array(64)), (e) =>
      isFerryError(e, 'ATTESTATION_BACKEND_UNAVAILABLE'),
    );
    await writeFile(file, logOf(HONEST).subarray(0, 100));
    await assert.rejects(be.collect(new Uint8Array(64)), (e) => isFerryError(e, 'ATTESTATION_MALFORMED'));
    // Read at every collect: the file written now is the one sent.
    await writeFile(file, logOf(HONEST));
    assert.deepEqual((await be.collect(new Uint8Array(64))).body.eventLog, logOf(HONEST));
    // Without the option, no eventLog key (evidence as before).
    const plain = await Tpm2Backend.open({
      tools: h.be.tools,
      akHandle: 0x81010020,
      pcrSelection: SELECTION,
    });
    assert.equal('eventLog' in (await plain.collect(new Uint8Array(64))).body, false);
    // The enclave side: the spec names the file, the enclave's backend sends it.
    const wire = backendSpecToWire({
      kind: 'tpm2',
      tcti: h.sw.tcti,
      akHandle: 0x81010020,
      pcrSelection: SELECTION,
      eventLogFile: file,
    });
    assert.equal(wire.eventLogFile, file);
    const enclaveBackend = await openTeeBackend(wire);
    assert.deepEqual((await enclaveBackend.collect(new Uint8Array(64))).body.eventLog, logOf(HONEST));
    for (const bad of ['', 5]) {
      assert.throws(
        () => backendSpecToWire({ kind: 'tpm2', tcti: h.sw.tcti, eventLogFile: bad as string }),
        (e) => isFerryError(e, 'INVALID_ARGUMENT'),
      );
    }
  });

  for (const [what, pcr, event] of [
    ['kernel', 4, 'kernel (Authenticode after QEMU setup-header patch)'],
    ['initrd', 9, 'Linux initrd (the file)'],
    ['cmdline', 9, 'LOADED_IMAGE::LoadOptions (command line + " initrd=initrd", UTF-16LE with NUL)'],
  ] as const) {
    test(`attacker: a tampered ${what} is rejected, naming the event`, async (t) => {
      const all = await tpms(t);
      if (!all) return;
      const b = all[what] as Booted;
      const ev = await collect(b);
      const a = await appraise(b, ev);
      assert.equal(
        a.valid,
        true,
        'a genuine TPM and a log that replays: valid evidence of the wrong software',
      );
      assert.equal(a.accepted, false);
      const bad = BOOTS[what]?.find((e) => e.what.startsWith(event.slice(0, 12)) && e.pcr === pcr);
      const good = HONEST.find((e) => e.what === bad?.what);
      assert.ok(bad && good && bad.digest !== good.digest);
      const named = a.reasons.filter((r) => r.message.includes(`event '${event}'`));
      assert.deepEqual(
        named.map((r) => [r.code, r.message]),
        [
          [
            'ATTESTATION_MEASUREMENT_MISMATCH',
            `PCR sha256:${pcr} event '${event}': digest ${bad.digest}, expected ${good.digest}`,
          ],
        ],
        messages(a),
      );
      // Only that event: every other event of every pinned PCR matched.
      const eventReasons = a.reasons.filter((r) => / event /.test(r.message));
      assert.equal(eventReasons.length, 1, messages(a));
      // The PCR pin refuses it too, without naming anything.
      assert.ok(
        a.reasons.some((r) => r.message.startsWith(`PCR sha256:${pcr} `) && /not among/.test(r.message)),
      );
      // Without the log the events policy cannot judge it at all: refused, saying why.
      const bare = await appraise(b, withBody(ev, { eventLog: undefined }));
      assert.equal(bare.accepted, false);
      assert.ok(/carries no event log/.test(messages(bare)), messages(bare));
      // The honest log in front of the tampered boot does not replay: invalid, naming the PCR.
      const lying = await appraise(b, withBody(ev, { eventLog: logOf(HONEST) }));
      assert.equal(lying.valid, false);
      assert.equal(lying.accepted, false);
      const replay = lying.reasons.find((r) => /does not replay/.test(r.message));
      assert.ok(replay, messages(lying));
      assert.equal(replay.code, 'ATTESTATION_PCR_MISMATCH');
      assert.match(replay.message, new RegExp(`\\(PCR sha1:${pcr}: the log gives `));
      assert.ok(!/ event '/.test(messages(lying)), 'a log that does not replay is not read for events');
    });
  }

  test('attacker: a log edited in one bank, or in one digest, does not replay; a malformed log is invalid', async (t) => {
    const all = await tpms(t);
    if (!all) return;
    const h = all.honest as Booted;
    const ev = await collect(h);
    // The sha256 digest of the initrd event replaced, the sha1 bank left alone.
    const edited = logEvents(HONEST);
    const initrd = edited.findIndex(
      (e) => e.data && new TextDecoder().decode(e.data).startsWith('Linux initrd'),
    );
    edited[initrd] = {
      ...(edited[initrd] as LogEventInput),
      digests: { ...edited[initrd]?.digests, sha256: 'ab'.repeat(32) },
    };
    const a = await appraise(h, withBody(ev, { eventLog: encodeEventLog(['sha1', 'sha256'], edited) }));
    assert.equal(a.valid, false);
    assert.deepEqual(codes(a), ['ATTESTATION_PCR_MISMATCH']);
    assert.match(
      a.reasons[0]?.message ?? '',
      /^the event log does not replay to the quoted PCRs \(PCR sha256:9: the log gives [0-9a-f]{64}, the quote [0-9a-f]{64}\)$/,
    );
    // Only the sha1 digest of the kernel event changed: the sha1 bank names PCR 4.
    const sha1Edit = logEvents(HONEST);
    const k = sha1Edit.findIndex((e) => e.pcr === 4);
    sha1Edit[k] = {
      ...(sha1Edit[k] as LogEventInput),
      digests: { ...sha1Edit[k]?.digests, sha1: '00'.repeat(20) },
    };
    const b = await appraise(h, withBody(ev, { eventLog: encodeEventLog(['sha1', 'sha256'], sha1Edit) }));
    assert.equal(b.valid, false);
    assert.match(messages(b), /\(PCR sha1:4: the log gives /);
    // An event dropped from the log.
    const dropped = await appraise(
      h,
      withBody(ev, {
        eventLog: logOf(HONEST.filter((e) => !e.what.startsWith('Exit Boot Services Returned'))),
      }),
    );
    assert.equal(dropped.valid, false);
    assert.match(messages(dropped), /PCR sha1:5: the log gives/);
    // Cut short, and not bytes at all.
    const cut = await appraise(h, withBody(ev, { eventLog: logOf(HONEST).subarray(0, 500) }));
    assert.equal(cut.valid, false);
    assert.deepEqual(codes(cut), ['ATTESTATION_MALFORMED']);
    const text = await appraise(h, withBody(ev, { eventLog: 'log' }));
    assert.equal(text.valid, false);
    assert.deepEqual(codes(text), ['ATTESTATION_MALFORMED']);
    // Events moved across PCRs replay to other values too: the order per PCR is what counts,
    // and a log that lists the PCR 9 events in the other order is refused by the policy.
    const swapped = [...HONEST];
    const i9 = swapped.findIndex((e) => e.pcr === 9);
    [swapped[i9], swapped[i9 + 1]] = [swapped[i9 + 1] as ExpectedEvent, swapped[i9] as ExpectedEvent];
    const s = await appraise(h, withBody(ev, { eventLog: logOf(swapped) }));
    assert.equal(s.valid, false, 'PCR 9 extended in another order has another value');
  });

  test('the recorded OVMF log (four banks, firmware order) replays against a real four-bank quote; measure.ts events match it', async (t) => {
    if (!['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'tpm2_quote'].every((n) => requireTool(t, n))) return;
    const recorded = new Uint8Array(Buffer.from(VECTOR.eventLog, 'base64'));
    const log = readEventLog(recorded);
    const sw = await Swtpm.start({ pcrBanks: ['sha1', 'sha256', 'sha384', 'sha512'] });
    const dir = await mkdtemp(join(tmpdir(), 'ferry-eventlog-'));
    try {
      const tools = new Tpm2Tools({ tcti: sw.tcti });
      // The firmware's extends, in log order, every bank.
      await tools.run(
        'tpm2_pcrextend',
        log.events.map((e) => `${e.pcr}:${log.banks.map((b) => `${b}=${e.digests[b]}`).join(',')}`),
      );
      const file = join(dir, 'binary_bios_measurements');
      await writeFile(file, recorded);
      const all = log.banks.map((b) => `${b}:${BOOT.join(',')}`).join('+');
      const be = await Tpm2Backend.open({ tools, akAlg: 'ecc', pcrSelection: all, eventLogFile: file });
      const ev = await be.collect(new Uint8Array(randomBytes(64)));
      assert.deepEqual(
        toHex((ev.body.pcrs as { [b: string]: { [i: string]: Uint8Array } }).sha256['9']),
        VECTOR.pcrs.sha256['9'],
      );
      // The image's policy for every PCR but the kernel's (its bytes are not in the vector).
      const events = HONEST.filter((e) => e.pcr !== 4);
      const policy = parsePolicy({
        ...POLICY,
        name: 'recorded-boot',
        referenceValues: {
          tpm2: {
            events: {
              sha256: Object.fromEntries(
                BOOT.filter((i) => i !== 4).map((i) => [
                  String(i),
                  events.filter((e) => e.pcr === i).map(({ type, digest, what }) => ({ type, digest, what })),
                ]),
              ),
            },
          },
        },
      });
      // The AK of this test TPM is taken as given (no proof): validity of quote and log, and the events.
      const v = new Tpm2Verifier({ trustedCas: [], requireAkProof: false });
      const a = await v.appraise(ev, { policy, now: new Date(), expectedReportData: ev.reportData });
      assert.deepEqual(a.reasons, []);
      assert.equal(a.claims.eventLogBanks, 'sha1,sha256,sha384,sha512');
      // One sha512 digest changed in the recorded log: the sha512 bank no longer replays.
      const edited = Buffer.from(recorded);
      const at = edited.lastIndexOf(Buffer.from(log.events.at(-1)?.digests.sha512 ?? '', 'hex'));
      edited[at] ^= 1;
      const b = await v.appraise(
        { ...ev, body: { ...ev.body, eventLog: new Uint8Array(edited) } },
        { policy, now: new Date() },
      );
      assert.equal(b.valid, false);
      assert.match(messages(b), /\(PCR sha512:5: the log gives /);
    } finally {
      await sw.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('attacker: another vTPM extended with the honest events, quoting with its own AK, is not the activated TPM', async (t) => {
    const all = await tpms(t);
    if (!all) return;
    const h = all.honest as Booted;
    const o = all.other as Booted;
    const ev = await collect(o);
    // The other TPM's own evidence: the log replays, every event is the honest one...
    const own = await appraise(h, ev);
    assert.equal(own.valid, false, messages(own));
    assert.ok(codes(own).includes('ATTESTATION_CHAIN_INVALID'), messages(own));
    // ...and in front of the honest TPM's EK certificate and activation record.
    const honestEv = await collect(h);
    const replayed = withBody(ev, {
      ekCert: honestEv.body.ekCert,
      certChain: honestEv.body.certChain,
      activation: honestEv.body.activation,
    });
    const a = await appraise(h, replayed);
    assert.equal(a.valid, false);
    assert.equal(a.accepted, false);
    assert.deepEqual(codes(a), ['ATTESTATION_AK_NOT_PROVEN'], messages(a));
    // The honest TPM's AK with the other TPM's quote: the signature does not verify.
    const mixed = await appraise(
      h,
      withBody(honestEv, { quote: ev.body.quote, signature: ev.body.signature }),
    );
    assert.equal(mixed.valid, false);
    assert.ok(codes(mixed).includes('ATTESTATION_SIGNATURE_INVALID'), messages(mixed));
  });
});
