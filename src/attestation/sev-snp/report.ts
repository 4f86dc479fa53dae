/**
 * The SEV-SNP ATTESTATION_REPORT structure (AMD SEV-SNP Firmware ABI specification, table
 * "ATTESTATION_REPORT Structure"): 1184 (0x4A0) bytes, little-endian fields at fixed
 * offsets. Versions 2 and later are parsed; fields added in version 3 (CPUID family, model,
 * stepping) and version 5 (mitigation vectors) are read only when the version has them.
 * docs/protocol.md §8 "sev-snp" lists every offset.
 */
import { FerryError } from '../../kernel/index.ts';

export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes 0x000..0x29F. */
export const SIGNED_LENGTH = 0x2a0;
export const SIGNATURE_OFFSET = 0x2a0;

/** The TCB_VERSION components. `fmc` exists on Turin (family 1Ah) only. */
export type TcbVersion = {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc: number | null;
};

/** Guest policy bits (ABI spec, "Guest Policy Structure"). */
export type GuestPolicy = {
  raw: bigint;
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrationAgent: boolean;
  debug: boolean;
  singleSocket: boolean;
};

export type SnpReport = {
  version: number;
  guestSvn: number;
  policy: GuestPolicy;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: TcbVersion;
  platformInfo: bigint;
  /** 0 = VCEK, 1 = VLEK, 7 = none (bits 4:2 of the word at 0x48). */
  signingKey: number;
  maskChipKey: boolean;
  authorKeyEn: boolean;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: TcbVersion;
  /** CPUID family / model / stepping (version 3 and later), else null. */
  cpuidFamily: number | null;
  cpuidModel: number | null;
  cpuidStepping: number | null;
  chipId: Uint8Array;
  committedTcb: TcbVersion;
  currentBuild: number;
  currentMinor: number;
  currentMajor: number;
  committedBuild: number;
  committedMinor: number;
  committedMajor: number;
  launchTcb: TcbVersion;
  /** Version 5 and later, else null. */
  launchMitVector: bigint | null;
  currentMitVector: bigint | null;
  /** The signature as IEEE P1363 (r || s, 48 bytes each, big-endian). */
  signatureP1363: Uint8Array;
  /** True when the upper 24 bytes of both 72-byte r and s fields are zero, as they must be. */
  signaturePaddingZero: boolean;
  /** Bytes 0x000..0x29F, the signed region. */
  signed: Uint8Array;
};

/** Family 1Ah (Turin) uses the Turin TCB_VERSION layout; earlier families the Milan one. */
export const TURIN_FAMILY = 0x1a;

/** Decodes a TCB_VERSION u64 in the layout of the given CPU family (null = pre-Turin). */
export function decodeTcb(raw: bigint, family: number | null): TcbVersion {
  const b = (i: number) => Number((raw >> BigInt(8 * i)) & 0xffn);
  if (family !== null && family >= TURIN_FAMILY) {
    return { fmc: b(0), bootloader: b(1), tee: b(2), snp: b(3), microcode: b(7) };
  }
  return { bootloader: b(0), tee: b(1), snp: b(6), microcode: b(7), fmc: null };
}

function reverse(b: Uint8Array): Uint8Array {
  return Uint8Array.from(b).reverse();
}

/**
 * Parses a raw report. Throws ATTESTATION_MALFORMED when `bytes` is not a Uint8Array of
 * exactly 1184 bytes or its version is below 2.
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array) || bytes.length !== REPORT_SIZE) {
    throw new FerryError('ATTESTATION_MALFORMED', 'SEV-SNP report has the wrong size', {
      hints: [
        `expected: ${REPORT_SIZE} bytes`,
        `got: ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`,
      ],
    });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => dv.getBigUint64(o, true);
  const sl = (o: number, n: number) => bytes.slice(o, o + n);
  const version = u32(0x00);
  if (version < 2) {
    throw new FerryError('ATTESTATION_MALFORMED', `SEV-SNP report version ${version} is not supported`, {
      hints: ['expected: version 2 or later'],
    });
  }
  const cpuidFamily = version >= 3 ? bytes[0x188] : null;
  const cpuidModel = version >= 3 ? bytes[0x189] : null;
  const cpuidStepping = version >= 3 ? bytes[0x18a] : null;
  const pol = u64(0x08);
  const keyInfo = u32(0x48);
  const r = bytes.subarray(SIGNATURE_OFFSET, SIGNATURE_OFFSET + 72);
  const s = bytes.subarray(SIGNATURE_OFFSET + 72, SIGNATURE_OFFSET + 144);
  const padZero = r.subarray(48).every((x) => x === 0) && s.subarray(48).every((x) => x === 0);
  const sig = new Uint8Array(96);
  sig.set(reverse(r.subarray(0, 48)), 0);
  sig.set(reverse(s.subarray(0, 48)), 48);
  return {
    version,
    guestSvn: u32(0x04),
    policy: {
      raw: pol,
      abiMinor: Number(pol & 0xffn),
      abiMajor: Number((pol >> 8n) & 0xffn),
      smt: ((pol >> 16n) & 1n) === 1n,
      migrationAgent: ((pol >> 18n) & 1n) === 1n,
      debug: ((pol >> 19n) & 1n) === 1n,
      singleSocket: ((pol >> 20n) & 1n) === 1n,
    },
    familyId: sl(0x10, 16),
    imageId: sl(0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo: u32(0x34),
    currentTcb: decodeTcb(u64(0x38), cpuidFamily),
    platformInfo: u64(0x40),
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipKey: ((keyInfo >> 1) & 1) === 1,
    signingKey: (keyInfo >> 2) & 7,
    reportData: sl(0x50, 64),
    measurement: sl(0x90, 48),
    hostData: sl(0xc0, 32),
    idKeyDigest: sl(0xe0, 48),
    authorKeyDigest: sl(0x110, 48),
    reportId: sl(0x140, 32),
    reportIdMa: sl(0x160, 32),
    reportedTcb: decodeTcb(u64(0x180), cpuidFamily),
    cpuidFamily,
    cpuidModel,
    cpuidStepping,
    chipId: sl(0x1a0, 64),
    committedTcb: decodeTcb(u64(0x1e0), cpuidFamily),
    currentBuild: bytes[0x1e8],
    currentMinor: bytes[0x1e9],
    currentMajor: bytes[0x1ea],
    committedBuild: bytes[0x1ec],
    committedMinor: bytes[0x1ed],
    committedMajor: bytes[0x1ee],
    launchTcb: decodeTcb(u64(0x1f0), cpuidFamily),
    launchMitVector: version >= 5 ? u64(0x1f8) : null,
    currentMitVector: version >= 5 ? u64(0x200) : null,
    signatureP1363: sig,
    signaturePaddingZero: padZero,
    signed: bytes.slice(0, SIGNED_LENGTH),
  };
}

/** `b2-t0-s5-u68` style summary of a TCB version (for messages). */
export function tcbString(t: TcbVersion): string {
  return `${t.fmc === null ? '' : `f${t.fmc}-`}bl${t.bootloader}-tee${t.tee}-snp${t.snp}-ucode${t.microcode}`;
}
