/**
 * The firmware's TCG event log in the crypto-agile format (TCG PC Client Platform Firmware
 * Profile §10), as Linux exposes it at /sys/kernel/security/tpm0/binary_bios_measurements
 * (docs/protocol.md §8, tpm2, "Event log"). All integers little-endian:
 *
 * - a first TCG_PCClientPCREvent in the SHA-1 format: u32 pcrIndex = 0, u32 eventType =
 *   EV_NO_ACTION, a 20-byte digest of zeros, u32 eventSize and the TCG_EfiSpecIdEvent:
 *   "Spec ID Event03\0", u32 platformClass, u8 specVersionMinor, u8 specVersionMajor = 2,
 *   u8 specErrata, u8 uintnSize (1 or 2), u32 numberOfAlgorithms (1..5), per algorithm u16
 *   algorithmId and u16 digestSize, u8 vendorInfoSize and the vendor info — exactly eventSize;
 * - then TCG_PCR_EVENT2 records: u32 pcrIndex (0..23), u32 eventType, u32 digest count = the
 *   number of algorithms, per digest u16 algorithmId (each algorithm of the Spec ID event once,
 *   in any order) and the digest, u32 eventSize and the event data.
 *
 * Algorithms: sha1 (0x0004), sha256 (0x000b), sha384 (0x000c), sha512 (0x000d); any other is
 * refused. The log is at most MAX_EVENT_LOG_BYTES. Every malformation is ATTESTATION_MALFORMED.
 *
 * `replayEventLog` extends each measured event's digest into the PCRs of one bank, each PCR
 * starting at zero; EV_NO_ACTION events are not extended, except that a StartupLocality event
 * (EV_NO_ACTION on PCR 0 with data "StartupLocality\0" and one locality byte) sets PCR 0's
 * starting value to that locality in its last byte.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';
import type { HashName } from './structures.ts';

/** Largest event log accepted (evidence is fetched in at most 1 MiB, MAX_EVIDENCE_BYTES). */
export const MAX_EVENT_LOG_BYTES = 512 * 1024;
/** Most events accepted in one log. */
export const MAX_EVENT_LOG_EVENTS = 8192;

export type LogEvent = {
  pcr: number;
  /** TCG event type (u32). */
  type: number;
  /** Its TCG name, e.g. `EV_SEPARATOR`, or `0x` and 8 hex digits when unnamed (eventTypeName). */
  typeName: string;
  /** Digests by bank name, hex: one per algorithm of the log. */
  digests: Partial<Record<HashName, string>>;
  data: Uint8Array;
};

export type EventLog = {
  /** The banks of the Spec ID event, in its order. */
  banks: HashName[];
  /** The TCG_PCR_EVENT2 records in log order (the Spec ID event excluded). */
  events: LogEvent[];
};

const ALGS: ReadonlyMap<number, { name: HashName; size: number }> = new Map([
  [0x0004, { name: 'sha1', size: 20 }],
  [0x000b, { name: 'sha256', size: 32 }],
  [0x000c, { name: 'sha384', size: 48 }],
  [0x000d, { name: 'sha512', size: 64 }],
]);
const ALG_ID: Record<HashName, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };
const SIZE: Record<HashName, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** Event types (TCG PC Client PFP §10.4.1), by name. */
export const EV = {
  PREBOOT_CERT: 0x0,
  POST_CODE: 0x1,
  UNUSED: 0x2,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  ACTION: 0x5,
  EVENT_TAG: 0x6,
  S_CRTM_CONTENTS: 0x7,
  S_CRTM_VERSION: 0x8,
  CPU_MICROCODE: 0x9,
  PLATFORM_CONFIG_FLAGS: 0xa,
  TABLE_OF_DEVICES: 0xb,
  COMPACT_HASH: 0xc,
  IPL: 0xd,
  IPL_PARTITION_DATA: 0xe,
  NONHOST_CODE: 0xf,
  NONHOST_CONFIG: 0x10,
  NONHOST_INFO: 0x11,
  OMIT_BOOT_DEVICE_EVENTS: 0x12,
  POST_CODE2: 0x13,
  EFI_EVENT_BASE: 0x80000000,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_HANDOFF_TABLES: 0x80000009,
  EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EFI_HANDOFF_TABLES2: 0x8000000b,
  EFI_VARIABLE_BOOT2: 0x8000000c,
  EFI_HCRTM_EVENT: 0x80000010,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
  EFI_SPDM_FIRMWARE_BLOB: 0x800000e1,
  EFI_SPDM_FIRMWARE_CONFIG: 0x800000e2,
} as const;

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(EV).map(([k, v]) => [v, `EV_${k}`]));

/** The TCG name of an event type (`EV_...`), or `0x` and 8 lowercase hex digits. */
export function eventTypeName(type: number): string {
  return NAMES.get(type) ?? `0x${(type >>> 0).toString(16).padStart(8, '0')}`;
}

/** The event type a name stands for (the inverse of eventTypeName), or null. */
export function eventTypeFromName(name: string): number | null {
  if (/^0x[0-9a-f]{8}$/.test(name)) return Number.parseInt(name.slice(2), 16);
  if (!name.startsWith('EV_')) return null;
  const v = (EV as Record<string, number>)[name.slice(3)];
  return v === undefined ? null : v;
}

function bad(message: string): FerryError {
  return new FerryError('ATTESTATION_MALFORMED', `TCG event log: ${message}`);
}

const SPEC_SIGNATURE = 'Spec ID Event03\0';
const STARTUP_LOCALITY = 'StartupLocality\0';

/** Parses a crypto-agile event log strictly (see the module comment). Throws ATTESTATION_MALFORMED. */
export function readEventLog(bytes: Uint8Array): EventLog {
  if (!(bytes instanceof Uint8Array)) throw bad('expected bytes');
  if (bytes.length > MAX_EVENT_LOG_BYTES) {
    throw bad(`${bytes.length} bytes, more than the ${MAX_EVENT_LOG_BYTES} accepted`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (o: number, n: number, what: string) => {
    if (o + n > bytes.length) throw bad(`truncated at offset ${o} (${what})`);
  };
  // The Spec ID event, SHA-1 format.
  need(0, 32, 'first event');
  if (dv.getUint32(0, true) !== 0 || dv.getUint32(4, true) !== EV.NO_ACTION) {
    throw bad('the first event is not EV_NO_ACTION on PCR 0 (not a crypto-agile log)');
  }
  if (bytes.subarray(8, 28).some((b) => b !== 0)) throw bad('the first event has a non-zero digest');
  const specSize = dv.getUint32(28, true);
  need(32, specSize, 'Spec ID event');
  const spec = bytes.subarray(32, 32 + specSize);
  const sdv = new DataView(spec.buffer, spec.byteOffset, spec.byteLength);
  if (spec.length < 29 || Buffer.from(spec.subarray(0, 16)).toString('latin1') !== SPEC_SIGNATURE) {
    throw bad('not a crypto-agile log (no "Spec ID Event03" event)');
  }
  if (spec[21] !== 2) throw bad(`Spec ID event: specVersionMajor ${spec[21]}, expected 2`);
  if (spec[23] !== 1 && spec[23] !== 2) throw bad(`Spec ID event: uintnSize ${spec[23]}, expected 1 or 2`);
  const algCount = sdv.getUint32(24, true);
  if (algCount < 1 || algCount > 5) throw bad(`Spec ID event: ${algCount} algorithms, expected 1 to 5`);
  if (spec.length < 28 + 4 * algCount + 1) throw bad('Spec ID event: truncated algorithm list');
  const banks: HashName[] = [];
  const byId = new Map<number, HashName>();
  for (let i = 0; i < algCount; i++) {
    const id = sdv.getUint16(28 + 4 * i, true);
    const size = sdv.getUint16(30 + 4 * i, true);
    const alg = ALGS.get(id);
    if (!alg) throw bad(`unsupported digest algorithm 0x${id.toString(16).padStart(4, '0')}`);
    if (size !== alg.size) throw bad(`Spec ID event: ${alg.name} digest size ${size}, expected ${alg.size}`);
    if (byId.has(id)) throw bad(`Spec ID event: ${alg.name} listed twice`);
    byId.set(id, alg.name);
    banks.push(alg.name);
  }
  const vendorSize = spec[28 + 4 * algCount] as number;
  if (28 + 4 * algCount + 1 + vendorSize !== spec.length) {
    throw bad('Spec ID event: its size is not the size of its fields');
  }

  const events: LogEvent[] = [];
  let o = 32 + specSize;
  while (o < bytes.length) {
    if (events.length >= MAX_EVENT_LOG_EVENTS) throw bad(`more than ${MAX_EVENT_LOG_EVENTS} events`);
    const at = o;
    need(o, 12, `event ${events.length}`);
    const pcr = dv.getUint32(o, true);
    const type = dv.getUint32(o + 4, true);
    const count = dv.getUint32(o + 8, true);
    if (pcr > 23) throw bad(`event ${events.length} at offset ${at}: PCR index ${pcr}, expected 0 to 23`);
    if (count !== algCount) {
      throw bad(
        `event ${events.length} at offset ${at}: ${count} digests, the log has ${algCount} algorithms`,
      );
    }
    o += 12;
    const digests: Partial<Record<HashName, string>> = {};
    for (let i = 0; i < count; i++) {
      need(o, 2, `event ${events.length} digest`);
      const id = dv.getUint16(o, true);
      const name = byId.get(id);
      if (!name) {
        throw bad(
          `event ${events.length} at offset ${at}: digest algorithm 0x${id.toString(16).padStart(4, '0')} is not in the Spec ID event`,
        );
      }
      if (digests[name] !== undefined)
        throw bad(`event ${events.length} at offset ${at}: two ${name} digests`);
      need(o + 2, SIZE[name], `event ${events.length} ${name} digest`);
      digests[name] = Buffer.from(bytes.subarray(o + 2, o + 2 + SIZE[name])).toString('hex');
      o += 2 + SIZE[name];
    }
    need(o, 4, `event ${events.length} size`);
    const size = dv.getUint32(o, true);
    need(o + 4, size, `event ${events.length} data`);
    events.push({
      pcr,
      type,
      typeName: eventTypeName(type),
      digests,
      data: bytes.slice(o + 4, o + 4 + size),
    });
    o += 4 + size;
  }
  return { banks, events };
}

/** The events of a crypto-agile log (readEventLog(bytes).events). */
export function parseEventLog(bytes: Uint8Array): LogEvent[] {
  return readEventLog(bytes).events;
}

/** The startup locality a StartupLocality event sets, or null when the log has none. */
function startupLocality(events: readonly LogEvent[]): number | null {
  for (const e of events) {
    if (e.type !== EV.NO_ACTION || e.pcr !== 0 || e.data.length !== 17) continue;
    if (Buffer.from(e.data.subarray(0, 16)).toString('latin1') === STARTUP_LOCALITY)
      return e.data[16] as number;
  }
  return null;
}

/** True when the event is extended into its PCR (every type but EV_NO_ACTION). */
export const isMeasured = (e: LogEvent): boolean => e.type !== EV.NO_ACTION;

/**
 * Replays the measured events of one bank into PCR values (hex by decimal index), each PCR
 * starting at zero (PCR 0 at the startup locality when the log records one). Only PCRs the
 * log touches are listed.
 */
export function replayEventLog(
  events: readonly LogEvent[],
  bank: HashName = 'sha256',
): Record<string, string> {
  const size = SIZE[bank];
  if (size === undefined) throw new FerryError('INVALID_ARGUMENT', `bank: unknown bank ${String(bank)}`);
  const pcrs = new Map<number, Buffer>();
  const loc = startupLocality(events);
  if (loc !== null) {
    const init = Buffer.alloc(size);
    init[size - 1] = loc;
    pcrs.set(0, init);
  }
  for (const e of events) {
    if (!isMeasured(e)) continue;
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

/** One event to write with encodeEventLog. */
export type LogEventInput = {
  pcr: number;
  /** The type, or its TCG name (eventTypeName). */
  type: number | string;
  /** A digest (hex) for every bank of the log. */
  digests: Partial<Record<HashName, string>>;
  data?: Uint8Array;
};

/**
 * Writes a crypto-agile event log with these banks and events (the inverse of readEventLog;
 * tests and tools use it to build the log a boot would produce). Platform class 0 (client),
 * spec version 2.0 errata 0, uintnSize 2, no vendor info.
 */
export function encodeEventLog(banks: readonly HashName[], events: readonly LogEventInput[]): Uint8Array {
  if (!(banks?.length >= 1) || banks.length > 4 || banks.some((b) => SIZE[b] === undefined)) {
    throw new FerryError('INVALID_ARGUMENT', 'banks: expected 1 to 4 of sha1, sha256, sha384, sha512');
  }
  const spec = Buffer.alloc(28 + 4 * banks.length + 1);
  spec.write(SPEC_SIGNATURE, 0, 'latin1');
  spec[20] = 0;
  spec[21] = 2;
  spec[22] = 0;
  spec[23] = 2;
  spec.writeUInt32LE(banks.length, 24);
  banks.forEach((b, i) => {
    spec.writeUInt16LE(ALG_ID[b], 28 + 4 * i);
    spec.writeUInt16LE(SIZE[b], 30 + 4 * i);
  });
  const head = Buffer.alloc(32);
  head.writeUInt32LE(EV.NO_ACTION, 4);
  head.writeUInt32LE(spec.length, 28);
  const parts: Buffer[] = [head, spec];
  events.forEach((e, n) => {
    const type = typeof e.type === 'string' ? eventTypeFromName(e.type) : e.type;
    if (!Number.isInteger(e.pcr) || e.pcr < 0 || e.pcr > 23 || type === null || !Number.isInteger(type)) {
      throw new FerryError('INVALID_ARGUMENT', `events[${n}]: expected {pcr: 0..23, type, digests}`);
    }
    const h = Buffer.alloc(12);
    h.writeUInt32LE(e.pcr, 0);
    h.writeUInt32LE(type >>> 0, 4);
    h.writeUInt32LE(banks.length, 8);
    parts.push(h);
    for (const b of banks) {
      const d = Buffer.from(e.digests[b] ?? '', 'hex');
      if (d.length !== SIZE[b])
        throw new FerryError(
          'INVALID_ARGUMENT',
          `events[${n}].digests.${b}: expected ${SIZE[b]} bytes of hex`,
        );
      const id = Buffer.alloc(2);
      id.writeUInt16LE(ALG_ID[b], 0);
      parts.push(id, d);
    }
    const data = Buffer.from(e.data ?? new Uint8Array(0));
    const s = Buffer.alloc(4);
    s.writeUInt32LE(data.length, 0);
    parts.push(s, data);
  });
  return new Uint8Array(Buffer.concat(parts));
}
