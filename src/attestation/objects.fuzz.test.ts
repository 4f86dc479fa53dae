// Fuzz: the tagged objects of the attestation layer (issue 13 item 5): signed attestation
// results, simulation roots, attesters and certificates, TPM 2.0 activation records. Seeds are
// built here. Every failure must be a coded FerryError.
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assertExercised,
  byteMutations,
  fuzz,
  mutateValue,
  type Rng,
  summary,
} from '../../test/helpers/fuzz.ts';
import { type CanonicalValue, decodeCanonical, encodeCanonical } from '../kernel/index.ts';
import { appraiseEvidence, defaultVerifiers } from './appraise.ts';
import { developmentPolicy } from './policy.ts';
import {
  buildAttestationResult,
  decodeSignedResult,
  encodeSignedResult,
  signAttestationResult,
} from './result.ts';
import {
  createSimRoot,
  decodeSimAttester,
  decodeSimCert,
  decodeSimRoot,
  encodeSimAttester,
  encodeSimRoot,
  issueSimAttester,
  SimBackend,
} from './sim/index.ts';
import { ed25519PublicKeyOf } from './sim/ed25519.ts';
import { decodeActivationRecord, encodeActivationRecord, signActivationRecord } from './tpm2/activation.ts';

function cborGen(rng: Rng, seeds: readonly Uint8Array[]): Uint8Array {
  if (rng.below(2) === 0) return byteMutations(rng, seeds);
  const v = decodeCanonical(rng.pick(seeds));
  return Uint8Array.from(encodeCanonical(mutateValue(rng, v as never) as CanonicalValue));
}

test('fuzz decodeSignedResult: signed attestation results', async (t) => {
  const root = createSimRoot();
  const evidence = await new SimBackend({
    attester: issueSimAttester(root),
    measurement: new Uint8Array(32).fill(9),
  }).collect(new Uint8Array(64));
  const policy = developmentPolicy();
  const a = await appraiseEvidence(
    evidence,
    { policy, now: new Date() },
    defaultVerifiers({ sim: { roots: [root.publicKey] } }),
  );
  const sk = new Uint8Array(32).fill(5);
  const kp = { secretKey: sk, publicKey: ed25519PublicKeyOf(sk) };
  const r = buildAttestationResult(a, {
    evidence,
    policy,
    verifierId: 'fuzz',
    verifierKey: kp.publicKey,
    issuedAt: new Date(1_800_000_000_000),
  });
  const wire = encodeSignedResult(signAttestationResult(r, kp.secretKey));
  const stats = fuzz(
    'decodeSignedResult',
    { seed: 0x4e5, iterations: 2000, seeds: [wire], generate: cborGen },
    (b) => decodeSignedResult(b),
  );
  assertExercised('decodeSignedResult', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decodeSimRoot / decodeSimAttester / decodeSimCert', (t) => {
  const root = createSimRoot();
  const attester = issueSimAttester(root);
  const seeds = [encodeSimRoot(root), encodeSimAttester(attester), attester.cert];
  const stats = fuzz('sim objects', { seed: 0x515, iterations: 3000, seeds, generate: cborGen }, (b) => {
    let ok = 0;
    let first: unknown = null;
    for (const f of [decodeSimRoot, decodeSimAttester, decodeSimCert]) {
      try {
        f(b);
        ok++;
      } catch (e) {
        if (!(e instanceof Error) || e.name !== 'FerryError') throw e;
        first ??= e;
      }
    }
    if (ok === 0) throw first;
  });
  assertExercised('sim objects', stats);
  t.diagnostic(summary(stats));
});

test('fuzz decodeActivationRecord', (t) => {
  const V = join(import.meta.dirname, '../../test/vectors/tpm2');
  const ek = new X509Certificate(readFileSync(join(V, 'ek-cert.der')));
  const kp = generateKeyPairSync('ed25519');
  const rec = signActivationRecord(kp.privateKey, {
    akName: new Uint8Array(readFileSync(join(V, 'ecc-sha256/ak.name'))),
    ekCert: ek,
    activatedAt: 1_700_000_000,
  });
  const stats = fuzz(
    'decodeActivationRecord',
    { seed: 0xac7, iterations: 2000, seeds: [encodeActivationRecord(rec)], generate: cborGen },
    (b) => decodeActivationRecord(b),
  );
  assertExercised('decodeActivationRecord', stats);
  t.diagnostic(summary(stats));
});
