/**
 * The reference values of a node image for a TPM measured boot under the pinned OVMF
 * (docs/protocol.md §17.3): every event the firmware and the kernel's EFI stub log, in log
 * order per PCR, and the PCR values they produce. PCRs 2-7 and 9 follow from the image and
 * fixed strings; PCR 4 also from the RAM size and the initrd size (QEMU patches the kernel's
 * setup header); PCR 0 and 1 need the recorded firmware values of firmware.ts. The policy
 * pins the PCRs and each event (a verifier with the guest's TCG event log names the event
 * that differs: docs/protocol.md §9).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type AppraisalPolicy, type Tpm2ReferenceEvent, tpm2ProductionPolicy } from '../attestation/index.ts';
import { FerryError } from '../kernel/index.ts';
import { readImage } from './build.ts';
import { DEFAULT_FIRMWARE, type FirmwareGolden, findGolden } from './firmware.ts';
import { kernelEventDigest } from './pe.ts';

/** The PCRs a node image policy pins (sha256 bank). PCR 8 and 10-23 are not set by the boot. */
export const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 9] as const;

export type ExpectedEvent = { pcr: number; type: string; digest: string; what: string };

export type BootInputs = {
  kernel: Uint8Array;
  /** SHA-256 (hex) and size of the initrd file. */
  initrd: { sha256: string; size: number };
  /** The `-append` text. */
  cmdline: string;
  memoryMiB: number;
  firmware: FirmwareGolden;
  /** The PEIFV digest recorded for this firmware and VM shape. */
  peifv: string;
};

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const SEPARATOR = sha256(new Uint8Array(4));

/** GUIDs in their UEFI byte order (first three fields little-endian). */
function guidBytes(guid: string): Buffer {
  const h = guid.replace(/-/g, '');
  const b = Buffer.from(h, 'hex');
  return Buffer.concat([
    Buffer.from(b.subarray(0, 4)).reverse(),
    Buffer.from(b.subarray(4, 6)).reverse(),
    Buffer.from(b.subarray(6, 8)).reverse(),
    b.subarray(8),
  ]);
}
const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';

/** SHA-256 of UEFI_VARIABLE_DATA: GUID ‖ u64 name length (chars) ‖ u64 data length ‖ UTF-16LE name ‖ data. */
function variableDigest(guid: string, name: string, data: Uint8Array): string {
  const len = Buffer.alloc(16);
  len.writeBigUInt64LE(BigInt(name.length), 0);
  len.writeBigUInt64LE(BigInt(data.length), 8);
  return sha256(Buffer.concat([guidBytes(guid), len, Buffer.from(name, 'utf16le'), data]));
}

/** The PCR 9 digest of the command line: UTF-16LE of what the kernel receives, with its NUL. */
export function loadOptionsDigest(cmdline: string): string {
  return sha256(Buffer.from(`${cmdline} initrd=initrd\0`, 'utf16le'));
}

/** Every event of an OVMF direct kernel boot of these inputs, PCR by PCR in log order. */
export function expectedEvents(inputs: BootInputs): ExpectedEvent[] {
  const fw = inputs.firmware;
  const action = (pcr: number, text: string): ExpectedEvent => ({
    pcr,
    type: 'EV_EFI_ACTION',
    digest: sha256(text),
    what: text,
  });
  const sep = (pcr: number): ExpectedEvent => ({
    pcr,
    type: 'EV_SEPARATOR',
    digest: SEPARATOR,
    what: '00000000',
  });
  return [
    { pcr: 0, type: 'EV_S_CRTM_VERSION', digest: sha256(new Uint8Array(2)), what: 'CRTM version 0000' },
    { pcr: 0, type: 'EV_EFI_PLATFORM_FIRMWARE_BLOB', digest: inputs.peifv, what: 'PEIFV (recorded)' },
    { pcr: 0, type: 'EV_EFI_PLATFORM_FIRMWARE_BLOB', digest: fw.dxefv, what: 'DXEFV (recorded)' },
    sep(0),
    {
      pcr: 1,
      type: 'EV_EFI_VARIABLE_BOOT',
      digest: sha256(Buffer.from(fw.bootOrder, 'hex')),
      what: 'BootOrder',
    },
    {
      pcr: 1,
      type: 'EV_EFI_VARIABLE_BOOT',
      digest: sha256(Buffer.from(fw.boot0000, 'hex')),
      what: 'Boot0000 (recorded)',
    },
    sep(1),
    sep(2),
    sep(3),
    {
      pcr: 4,
      type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
      digest: kernelEventDigest(inputs.kernel, inputs.initrd.size, inputs.memoryMiB),
      what: 'kernel (Authenticode after QEMU setup-header patch)',
    },
    action(4, 'Calling EFI Application from Boot Option'),
    sep(4),
    sep(5),
    action(5, 'Exit Boot Services Invocation'),
    action(5, 'Exit Boot Services Returned with Success'),
    sep(6),
    ...(
      [
        [EFI_GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(0)],
        [EFI_GLOBAL_VARIABLE, 'PK', new Uint8Array(0)],
        [EFI_GLOBAL_VARIABLE, 'KEK', new Uint8Array(0)],
        [EFI_IMAGE_SECURITY_DATABASE, 'db', new Uint8Array(0)],
        [EFI_IMAGE_SECURITY_DATABASE, 'dbx', new Uint8Array(0)],
      ] as const
    ).map(
      ([g, n, d]): ExpectedEvent => ({
        pcr: 7,
        type: 'EV_EFI_VARIABLE_DRIVER_CONFIG',
        digest: variableDigest(g, n, d),
        what: `${n} (${d.length === 0 ? 'empty' : 'disabled'})`,
      }),
    ),
    sep(7),
    {
      pcr: 9,
      type: 'EV_EVENT_TAG',
      digest: loadOptionsDigest(inputs.cmdline),
      what: 'LOADED_IMAGE::LoadOptions (command line + " initrd=initrd", UTF-16LE with NUL)',
    },
    { pcr: 9, type: 'EV_EVENT_TAG', digest: inputs.initrd.sha256, what: 'Linux initrd (the file)' },
  ];
}

/** The sha256 PCR values the events give, each PCR starting at zero. */
export function expectedPcrs(events: readonly ExpectedEvent[]): Record<string, string> {
  const pcrs = new Map<number, Buffer>();
  for (const e of events) {
    const old = pcrs.get(e.pcr) ?? Buffer.alloc(32);
    pcrs.set(e.pcr, createHash('sha256').update(old).update(Buffer.from(e.digest, 'hex')).digest());
  }
  const out: Record<string, string> = {};
  for (const k of [...pcrs.keys()].sort((a, b) => a - b))
    out[String(k)] = (pcrs.get(k) as Buffer).toString('hex');
  return out;
}

/**
 * The production-settings policy (tpm2 only) pinning these boot PCRs and, when `events` are
 * given, every event of them (`referenceValues.tpm2.events.sha256`, in log order per PCR), so
 * that a verifier with the guest's event log names the event that differs.
 */
export function imagePolicy(
  pcrs: Record<string, string>,
  name: string,
  events?: readonly ExpectedEvent[],
): AppraisalPolicy {
  const sha256Pcrs: Record<string, string[]> = {};
  for (const i of BOOT_PCRS) sha256Pcrs[String(i)] = [pcrs[String(i)]];
  if (!events) return tpm2ProductionPolicy(name, { pcrs: { sha256: sha256Pcrs } });
  const sha256Events: Record<string, Tpm2ReferenceEvent[]> = {};
  for (const i of BOOT_PCRS) {
    sha256Events[String(i)] = events
      .filter((e) => e.pcr === i)
      .map((e) => ({ type: e.type, digest: e.digest, what: e.what }));
  }
  return tpm2ProductionPolicy(name, { pcrs: { sha256: sha256Pcrs }, events: { sha256: sha256Events } });
}

export type ImageMeasurement = {
  image: { digest: string; kernel: string; initrd: string; cmdline: string };
  vm: { firmware: string; firmwareSha256: string; memoryMiB: number; cpus: number; machine: 'q35' };
  events: ExpectedEvent[];
  pcrs: { sha256: Record<string, string> };
  policy: AppraisalPolicy;
  provenance: string;
};

/** Measures the image in `dir` for a boot under `firmware` with this VM shape. */
export async function measureImage(
  dir: string,
  options: { firmware?: string; memoryMiB?: number; cpus?: number } = {},
): Promise<ImageMeasurement> {
  const memoryMiB = options.memoryMiB ?? 1024;
  const cpus = options.cpus ?? 1;
  for (const [name, v] of [
    ['memoryMiB', memoryMiB],
    ['cpus', cpus],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 1 << 20) {
      throw new FerryError('INVALID_ARGUMENT', `${name} must be a positive integer`, {
        hints: [`got: ${String(v)}`],
      });
    }
  }
  const firmwarePath = options.firmware ?? DEFAULT_FIRMWARE;
  let fwBytes: Buffer;
  try {
    fwBytes = await readFile(firmwarePath);
  } catch (e) {
    throw new FerryError('IO_READ_FAILED', `cannot read the firmware ${firmwarePath}`, {
      cause: e,
      hints: ['install the Debian package ovmf, or pass --firmware'],
    });
  }
  const fwSha = sha256(fwBytes);
  const golden = findGolden(fwSha, cpus, memoryMiB);
  if ('missing' in golden) {
    throw new FerryError('IMAGE_NO_GOLDEN_VALUES', `no recorded firmware values for ${golden.missing}`, {
      hints: [
        `recorded: ${golden.known.join('; ')}`,
        'PCR 0 depends on the firmware build, the vCPUs and the RAM',
      ],
    });
  }
  const img = await readImage(dir);
  const events = expectedEvents({
    kernel: img.kernel,
    initrd: { sha256: img.manifest.initrd.sha256, size: img.initrd.length },
    cmdline: img.cmdline,
    memoryMiB,
    firmware: golden.firmware,
    peifv: golden.peifv,
  });
  const pcrs = expectedPcrs(events);
  return {
    image: {
      digest: img.manifest.digest,
      kernel: img.manifest.kernel.sha256,
      initrd: img.manifest.initrd.sha256,
      cmdline: img.manifest.cmdline.sha256,
    },
    vm: { firmware: firmwarePath, firmwareSha256: fwSha, memoryMiB, cpus, machine: 'q35' },
    events,
    pcrs: { sha256: pcrs },
    policy: imagePolicy(pcrs, `node-image-${img.manifest.digest.slice(0, 16)}`, events),
    provenance: golden.firmware.provenance,
  };
}
