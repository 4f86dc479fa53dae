/**
 * The published reference values of the enclave runtime (docs/protocol.md §9.3): for each
 * release, `release/reference-values.json` records the runtime measurement of src/enclave/
 * main.ts's closure (src/enclave/measure.ts), the reference values derived from it for every
 * kind Ferry can pin today, and the measured files and packages. `npm run release:measure`
 * writes it; a unit test fails while the tree differs from it. `releasePolicy()` turns it into
 * the production-settings policy that `--policy release` names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { tpm2ProductionPolicy } from '../attestation/index.ts';
import {
  expectedRuntimePcr,
  runtimeMeasurement as tpm2RuntimeMeasurement,
} from '../attestation/tpm2/index.ts';
import type { AppraisalPolicy } from '../attestation/index.ts';
import { computeRuntimeManifest, type MeasuredFile, type MeasuredPackage, REPO_ROOT } from './measure.ts';
import { FerryError, fromHex, toHex } from '../kernel/index.ts';

/** Path of the committed reference values, relative to the repository root. */
export const RELEASE_FILE = 'release/reference-values.json';
/** The `format` field of the file. */
export const RELEASE_FORMAT = 'ferry/reference-values/v1';
/** The name of the PCR-23 event a tpm2 node extends with the runtime measurement. */
export const RUNTIME_EVENT = 'ferry/enclave-runtime';

/** Reference values derived from a runtime measurement, as a policy's `referenceValues`. */
export type RuntimeReferenceValues = {
  /** `referenceValues.sim.measurement`: the runtime measurement (development only). */
  sim: { measurement: string[] };
  /** `referenceValues.tpm2.pcrs.sha256['23']`: PCR 23 after the node's single extension. */
  tpm2: { pcrs: { sha256: { '23': string[] } } };
};

/** The document `release/reference-values.json`. */
export type ReleaseReferenceValues = {
  format: typeof RELEASE_FORMAT;
  package: string;
  version: string;
  /** SHA-256 runtime measurement, hex. */
  runtimeMeasurement: string;
  referenceValues: RuntimeReferenceValues;
  files: MeasuredFile[];
  packages: MeasuredPackage[];
};

/**
 * The reference values of a runtime measurement: `sim` carries it as is; `tpm2` is PCR 23
 * (sha256) after a reset and one extension with runtimeMeasurement([{name:
 * 'ferry/enclave-runtime', content: measurement}]) — what a tpm2 node does at start.
 */
export function runtimeReferenceValues(measurement: Uint8Array): RuntimeReferenceValues {
  if (!(measurement instanceof Uint8Array) || measurement.length !== 32) {
    throw new FerryError('INVALID_ARGUMENT', 'measurement: expected 32 bytes', {
      hints: [
        `got: ${measurement instanceof Uint8Array ? `${measurement.length} bytes` : typeof measurement}`,
      ],
    });
  }
  const pcr = expectedRuntimePcr(tpm2RuntimeMeasurement([{ name: RUNTIME_EVENT, content: measurement }]));
  return {
    sim: { measurement: [toHex(measurement)] },
    tpm2: { pcrs: { sha256: { '23': [toHex(pcr)] } } },
  };
}

/**
 * The production-settings policy pinning a runtime: kinds `tpm2` only (the one hardware kind
 * whose reference values Ferry derives from the runtime; never `sim`), no debug, TCB
 * `UpToDate`, evidence at most 10 minutes old, `referenceValues.tpm2` of the measurement.
 * Usable with `dataset add --policy FILE` and `app publish --policy FILE`.
 */
export function runtimePolicy(measurement: Uint8Array, name: string): AppraisalPolicy {
  return tpm2ProductionPolicy(name, runtimeReferenceValues(measurement).tpm2);
}

function packageInfo(root: string): { name: string; version: string } {
  const p = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: p.name, version: p.version };
}

/** The reference values of the tree at `root` (default this checkout), computed now. */
export async function currentReferenceValues(root: string = REPO_ROOT): Promise<ReleaseReferenceValues> {
  const m = await computeRuntimeManifest(root);
  const pkg = packageInfo(root);
  return {
    format: RELEASE_FORMAT,
    package: pkg.name,
    version: pkg.version,
    runtimeMeasurement: toHex(m.measurement),
    referenceValues: runtimeReferenceValues(m.measurement),
    files: m.files,
    packages: m.packages,
  };
}

const hex32 = z.string().regex(/^[0-9a-f]{64}$/);
const RELEASE_SCHEMA = z.strictObject({
  format: z.literal(RELEASE_FORMAT),
  package: z.string().min(1),
  version: z.string().min(1),
  runtimeMeasurement: hex32,
  referenceValues: z.strictObject({
    sim: z.strictObject({ measurement: z.array(hex32).length(1) }),
    tpm2: z.strictObject({
      pcrs: z.strictObject({ sha256: z.strictObject({ '23': z.array(hex32).length(1) }) }),
    }),
  }),
  files: z.array(z.strictObject({ path: z.string().min(1), sha256: hex32 })).min(1),
  packages: z.array(
    z.strictObject({ name: z.string().min(1), version: z.string().min(1), integrity: z.string() }),
  ),
});

/**
 * Reads and validates the committed reference values (`root/release/reference-values.json`).
 * Throws CONFIG_FILE_UNREADABLE when absent, CONFIG_INVALID when malformed or when its derived
 * values do not follow from its runtime measurement.
 */
export function readPublishedReferenceValues(root: string = REPO_ROOT): ReleaseReferenceValues {
  const path = join(root, RELEASE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FerryError(
      'CONFIG_FILE_UNREADABLE',
      `cannot read the published reference values ${RELEASE_FILE}`,
      {
        cause: e,
        hints: ['regenerate them with: npm run release:measure'],
      },
    );
  }
  let parsed: ReleaseReferenceValues;
  try {
    parsed = RELEASE_SCHEMA.parse(JSON.parse(text)) as ReleaseReferenceValues;
  } catch (e) {
    throw new FerryError('CONFIG_INVALID', `${RELEASE_FILE} is not a valid reference-values document`, {
      cause: e,
      hints: ['regenerate it with: npm run release:measure'],
    });
  }
  const derived = runtimeReferenceValues(fromHex(parsed.runtimeMeasurement, 'runtimeMeasurement', 32));
  if (JSON.stringify(derived) !== JSON.stringify(parsed.referenceValues)) {
    throw new FerryError(
      'CONFIG_INVALID',
      `${RELEASE_FILE}: the reference values do not follow from its measurement`,
      {
        hints: ['regenerate it with: npm run release:measure'],
      },
    );
  }
  return parsed;
}

/** The name `--policy release` resolves to `releasePolicy()`. */
export const RELEASE_POLICY_NAME = 'release';

/**
 * The production-settings policy (runtimePolicy) pinning this release's published runtime,
 * named `ferry-<version>`. Throws as readPublishedReferenceValues.
 */
export function releasePolicy(root: string = REPO_ROOT): AppraisalPolicy {
  const r = readPublishedReferenceValues(root);
  return runtimePolicy(fromHex(r.runtimeMeasurement, 'runtimeMeasurement', 32), `${r.package}-${r.version}`);
}
