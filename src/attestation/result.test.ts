import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { isFerryError, toHex } from '../kernel/index.ts';
import { appraiseSevSnp } from './sev-snp/verify.ts';
import { developmentPolicy, invalidAppraisal, PRODUCTION_POLICY } from './policy.ts';
import {
  AR4SI,
  attestationResultHash,
  buildAttestationResult,
  decodeSignedResult,
  ed25519PublicKey,
  encodeSignedResult,
  evidenceHash,
  signAttestationResult,
  trustVector,
  verifyAttestationResult,
} from './result.ts';
import type { Evidence } from './types.ts';

const V = new URL('../../test/vectors/sev-snp-milan/', import.meta.url);
const report = new Uint8Array(readFileSync(new URL('attestation.bin', V)));
const vcek = new Uint8Array(readFileSync(new URL('vcek.der', V)));
const evidence: Evidence = { kind: 'sev-snp', reportData: report.slice(0x50, 0x90), body: { report, vcek } };
const AT = new Date('2025-07-01T00:00:00Z');
const SK = new Uint8Array(32).fill(7);
const PK = ed25519PublicKey(SK);

test('ed25519PublicKey agrees with node:crypto key generation', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16));
  const pub = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
  assert.equal(toHex(ed25519PublicKey(seed)), toHex(pub));
  // RFC 8032 test 1: secret 9d61b19d..., public d75a9801...
  const sk1 = Uint8Array.from(
    Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
  );
  assert.equal(
    toHex(ed25519PublicKey(sk1)),
    'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  );
});

test('a result is built, signed, encoded, decoded and verified; tampering is detected', () => {
  const a = appraiseSevSnp(evidence, { policy: PRODUCTION_POLICY, now: AT });
  const r = buildAttestationResult(a, {
    evidence,
    policy: PRODUCTION_POLICY,
    verifierId: 'verifier-1',
    verifierKey: PK,
    issuedAt: AT,
  });
  assert.equal(r.status, 'contraindicated');
  assert.equal(r.issuedAt, 1751328000);
  assert.equal(toHex(r.evidenceHash), toHex(evidenceHash(evidence)));
  assert.equal(r.trustVector.configuration, AR4SI.configuration.unsupportable);
  assert.equal(r.trustVector['instance-identity'], AR4SI.instanceIdentity.trustworthy);
  const signed = signAttestationResult(r, SK);
  assert.equal(signed.signature.length, 64);
  assert.equal(verifyAttestationResult(signed, PK), r);
  const wire = encodeSignedResult(signed);
  const back = decodeSignedResult(wire, PK);
  assert.equal(toHex(attestationResultHash(back.result)), toHex(attestationResultHash(r)));

  const tampered = [
    { ...r, accepted: true },
    { ...r, status: 'affirming' as const },
    { ...r, measurement: '00'.repeat(48) },
    { ...r, issuedAt: r.issuedAt + 1 },
    { ...r, trustVector: { ...r.trustVector, configuration: 2 } },
    { ...r, reasons: [] },
  ];
  for (const t of tampered) {
    assert.throws(
      () => verifyAttestationResult({ result: t, signature: signed.signature }),
      (e) => isFerryError(e, 'SIGNATURE_INVALID'),
    );
  }
  for (const i of [0, 31, 63]) {
    const sig = Uint8Array.from(signed.signature);
    sig[i] ^= 1;
    assert.throws(
      () => verifyAttestationResult({ result: r, signature: sig }),
      (e) => isFerryError(e, 'SIGNATURE_INVALID'),
    );
  }
  // Wire bytes flipped: either undecodable or a bad signature, never accepted.
  for (let i = 0; i < wire.length; i += 37) {
    const w = Uint8Array.from(wire);
    w[i] ^= 0x10;
    assert.throws(
      () => decodeSignedResult(w, PK),
      (e) => isFerryError(e),
    );
  }
  const otherKey = ed25519PublicKey(new Uint8Array(32).fill(8));
  assert.throws(
    () => verifyAttestationResult(signed, otherKey),
    (e) => isFerryError(e, 'SIGNATURE_INVALID'),
  );
  assert.throws(
    () => signAttestationResult(r, new Uint8Array(32).fill(8)),
    (e) => isFerryError(e, 'SIGNATURE_KEY_INVALID'),
  );
  // A key swap with a re-signature by the attacker is a different verifier: the caller's key pin catches it.
  const forged = signAttestationResult(
    { ...r, accepted: true, verifierKey: otherKey },
    new Uint8Array(32).fill(8),
  );
  assert.throws(
    () => verifyAttestationResult(forged, PK),
    (e) => isFerryError(e, 'SIGNATURE_INVALID'),
  );
});

test('trust vector: accepted, debug tolerated, invalid', () => {
  const ok = appraiseSevSnp(evidence, { policy: developmentPolicy(), now: AT });
  const tv = trustVector(ok, developmentPolicy());
  assert.equal(tv.configuration, AR4SI.configuration.unsafe);
  assert.equal(tv['runtime-opaque'], AR4SI.runtimeOpaque.visibleMemory);
  assert.equal(tv.hardware, AR4SI.hardware.genuine);
  const bad = trustVector(invalidAppraisal('tdx', { code: 'ATTESTATION_SIGNATURE_INVALID', message: 'x' }));
  assert.equal(bad['instance-identity'], AR4SI.cryptoValidationFailed);
  assert.equal(bad.hardware, AR4SI.cryptoValidationFailed);
  assert.throws(
    () =>
      buildAttestationResult(ok, {
        evidence: new Uint8Array(31),
        policy: PRODUCTION_POLICY,
        verifierId: 'v',
        verifierKey: PK,
        issuedAt: AT,
      }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
  assert.throws(
    () =>
      buildAttestationResult(ok, {
        evidence,
        policy: PRODUCTION_POLICY,
        verifierId: '',
        verifierKey: PK,
        issuedAt: AT,
      }),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});
