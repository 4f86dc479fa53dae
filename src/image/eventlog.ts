/**
 * The firmware's TCG event log in the crypto-agile format (TCG PC Client Platform Firmware
 * Profile §10), as Linux exposes it at /sys/kernel/security/tpm0/binary_bios_measurements:
 * a first TCG_PCClientPCREvent (SHA-1 format; its data is the Spec ID event naming the banks
 * and their digest sizes), then TCG_PCR_EVENT2 records — u32 pcrIndex, u32 eventType, u32 digest
 * count, per digest u16 algorithm id and the digest, u32 eventSize and the event data. All
 * little-endian. `replayEventLog` extends each record's digests into PCRs starting from zero.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../kernel/index.ts';

export type LogEvent = {
  pcr: number;
  type: number;
  /** Digests by bank name (sha1, sha256, sha384, sha512), hex. */
  digests: Record<string, string>;
  data: Uint8Array;
};

// TPM_ALG_ID: 4 sha1, 0xb sha256, 0xc sha384, 0xd sha512
const ALG: Record<number, string> = { 4: 'sha1', 11: 'sha256', 12: 'sha384', 13: 'sha512' };

/** Event types that appear in an OVMF direct kernel boot (TCG PC Client PFP §10.4.1). */
export const EV = {
  SEPARATOR: 0x4,
  ACTION: 0x5,
  EVENT_TAG: 0x6,
  S_CRTM_VERSION: 0x8,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
} as const;

function bad(message: string): FerryError {
  return new FerryError('ATTESTATION_MALFORMED', `TCG event log: ${message}`);
}

/** Parses a crypto-agile event log. Throws ATTESTATION_MALFORMED on a truncated or odd log. */
export function parseEventLog(bytes: Uint8Array): LogEvent[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (o: number, n: number) => {
    if (o + n > bytes.length) throw bad(`truncated at offset ${o}`);
  };
  // First event: pcr u32, type u32, sha1 digest 20, size u32, data.
  need(0, 32);
  const firstSize = dv.getUint32(28, true);
  need(32, firstSize);
  const spec = bytes.subarray(32, 32 + firstSize);
  if (new TextDecoder().decode(spec.subarray(0, 15)) !== 'Spec ID Event03')
    throw bad('not a crypto-agile log');
  const sdv = new DataView(spec.buffer, spec.byteOffset, spec.byteLength);
  const algCount = sdv.getUint32(24, true);
  const sizes = new Map<number, number>();
  for (let i = 0; i < algCount; i++)
    sizes.set(sdv.getUint16(28 + 4 * i, true), sdv.getUint16(30 + 4 * i, true));
  const out: LogEvent[] = [];
  let o = 32 + firstSize;
  while (o < bytes.length) {
    need(o, 12);
    const pcr = dv.getUint32(o, true);
    const type = dv.getUint32(o + 4, true);
    const count = dv.getUint32(o + 8, true);
    o += 12;
    const digests: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      need(o, 2);
      const alg = dv.getUint16(o, true);
      const size = sizes.get(alg);
      if (size === undefined) throw bad(`unknown digest algorithm 0x${alg.toString(16)}`);
      need(o + 2, size);
      digests[ALG[alg] ?? `alg${alg}`] = Buffer.from(bytes.subarray(o + 2, o + 2 + size)).toString('hex');
      o += 2 + size;
    }
    need(o, 4);
    const size = dv.getUint32(o, true);
    need(o + 4, size);
    out.push({ pcr, type, digests, data: bytes.slice(o + 4, o + 4 + size) });
    o += 4 + size;
  }
  return out;
}

/** Replays the events of one bank into PCR values (hex by index), each PCR starting at zero. */
export function replayEventLog(events: readonly LogEvent[], bank = 'sha256'): Record<string, string> {
  const size = bank === 'sha1' ? 20 : bank === 'sha256' ? 32 : bank === 'sha384' ? 48 : 64;
  const pcrs = new Map<number, Buffer>();
  for (const e of events) {
    const d = e.digests[bank];
    if (d === undefined) continue;
    const old = pcrs.get(e.pcr) ?? Buffer.alloc(size);
    pcrs.set(e.pcr, createHash(bank).update(old).update(Buffer.from(d, 'hex')).digest());
  }
  const out: Record<string, string> = {};
  for (const k of [...pcrs.keys()].sort((a, b) => a - b))
    out[String(k)] = (pcrs.get(k) as Buffer).toString('hex');
  return out;
}
