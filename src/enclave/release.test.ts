import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { checkSoftwareIdentified, policyHash } from '../attestation/policy.ts';
import { runtimeMeasurement } from './measure.ts';
import { isFerryError, toHex } from '../kernel/index.ts';
import { pinnedDevelopmentPolicy } from './policies.ts';
import {
  currentReferenceValues,
  RELEASE_FILE,
  readPublishedReferenceValues,
  releasePolicy,
  runtimePolicy,
  runtimeReferenceValues,
} from './release.ts';

const tmp = mkdtempSync(join(tmpdir(), 'ferry-release-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('the published reference values are those of this tree', async () => {
  const published = readPublishedReferenceValues();
  const current = await currentReferenceValues();
  if (published.runtimeMeasurement !== current.runtimeMeasurement) {
    const was = new Map(published.files.map((f) => [f.path, f.sha256]));
    const now = new Map(current.files.map((f) => [f.path, f.sha256]));
    const changed = [...new Set([...was.keys(), ...now.keys()])].filter((p) => was.get(p) !== now.get(p));
    assert.fail(
      [
        `${RELEASE_FILE} is stale: it publishes runtime measurement ${published.runtimeMeasurement},`,
        `this tree measures ${current.runtimeMeasurement}.`,
        `Files that differ: ${changed.join(', ') || '(none; the npm packages differ)'}.`,
        'Expected while several branches change the enclave runtime: the lead regenerates it once',
        'everything is merged. To regenerate: npm run release:measure, then commit the file.',
      ].join('\n'),
    );
  }
  assert.deepEqual(published, current);
});

test('reference values derived from the runtime: sim is the measurement, tpm2 is PCR 23 as pinned today', async () => {
  const m = await runtimeMeasurement();
  const rv = runtimeReferenceValues(m);
  assert.deepEqual(rv.sim.measurement, [toHex(m)]);
  // The same values as the pinned development policy (the node's PCR 23 extension).
  const pinned = await pinnedDevelopmentPolicy();
  assert.deepEqual(pinned.referenceValues.tpm2, rv.tpm2);
  assert.deepEqual(pinned.referenceValues.sim, rv.sim);
  assert.throws(
    () => runtimeReferenceValues(new Uint8Array(31)),
    (e) => isFerryError(e, 'INVALID_ARGUMENT'),
  );
});

test('the release policy: production settings, tpm2 only, never sim, and it identifies the software', async () => {
  const p = runtimePolicy(await runtimeMeasurement(), 'x');
  assert.deepEqual(p.allowedKinds, ['tpm2']);
  assert.equal(p.allowDebug, false);
  assert.deepEqual(p.allowedTcbStatuses, ['UpToDate']);
  assert.equal(p.referenceValues.sim, undefined);
  assert.equal(checkSoftwareIdentified(p, 'tpm2'), null);
  const r = releasePolicy();
  const published = readPublishedReferenceValues();
  assert.equal(r.name, `${published.package}-${published.version}`);
  assert.deepEqual(r.referenceValues.tpm2, published.referenceValues.tpm2);
  assert.equal(policyHash(r).length, 32);
});

test('a tampered or missing reference-values file is refused', () => {
  const root = join(tmp, 'tampered');
  cpSync(join(import.meta.dirname, '../../release'), join(root, 'release'), { recursive: true });
  const path = join(root, RELEASE_FILE);
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  // The attacker's case: a PCR 23 value that does not follow from the published measurement.
  doc.referenceValues.tpm2.pcrs.sha256['23'] = ['00'.repeat(32)];
  writeFileSync(path, JSON.stringify(doc));
  assert.throws(
    () => releasePolicy(root),
    (e) => isFerryError(e, 'CONFIG_INVALID'),
  );
  writeFileSync(path, '{}');
  assert.throws(
    () => readPublishedReferenceValues(root),
    (e) => isFerryError(e, 'CONFIG_INVALID'),
  );
  assert.throws(
    () => readPublishedReferenceValues(join(tmp, 'none')),
    (e) => isFerryError(e, 'CONFIG_FILE_UNREADABLE'),
  );
});
