/**
 * Recorded ("golden") values of the pinned OVMF build: what the firmware measures that cannot
 * be computed from the image (docs/protocol.md §17.3). Each entry names the firmware by the
 * SHA-256 of its code file and says where every value came from. A VM shape (vCPUs, RAM) that
 * is not listed has no PCR 0 prediction: `measureImage` refuses it (IMAGE_NO_GOLDEN_VALUES)
 * until someone boots it once and records its PEIFV digest here.
 */

/** The OVMF build the node image is measured under (Debian `ovmf`, see /usr/share/qemu/firmware/60-edk2-x86_64.json). */
export const DEFAULT_FIRMWARE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
/** Its variable store template; the VM uses a fresh copy at every boot. */
export const DEFAULT_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export type FirmwareGolden = {
  name: string;
  /** SHA-256 of the code file (pflash unit 0, read-only). */
  codeSha256: string;
  /** SHA-256 of the variable store template copied for each boot (pflash unit 1). */
  varsSha256: string;
  package: string;
  qemu: string;
  machine: 'q35';
  /** EV_EFI_PLATFORM_FIRMWARE_BLOB digest of the DXE firmware volume (same for every shape). */
  dxefv: string;
  /** PEIFV digest per VM shape: PEI writes into the volume before it is measured. */
  peifv: { cpus: number; memoryMiB: number; digest: string }[];
  /** The data of the Boot0000 variable (the UiApp entry), measured into PCR 1. */
  boot0000: string;
  /** The data of BootOrder. */
  bootOrder: string;
  provenance: string;
};

export const FIRMWARE: readonly FirmwareGolden[] = [
  {
    name: 'OVMF_CODE_4M.fd',
    codeSha256: 'b157d97b1f69729514feb7f201d2cbe4957f23ab77920e361fe9f822ba49ca4c',
    varsSha256: '5d2ac383371b408398accee7ec27c8c09ea5b74a0de0ceea6513388b15be5d1e',
    package: 'ovmf 2022.11-6+deb12u2 (Debian 12)',
    qemu: 'qemu-system-x86 1:7.2+dfsg-7+deb12u18+b3',
    machine: 'q35',
    dxefv: '82a0445201cb49945461acc6ed78426700fb7e92819862edc55ba3ad4559b135',
    peifv: [
      {
        cpus: 1,
        memoryMiB: 1024,
        digest: '4c251b0c52a393c134c2ddf7c9afb08878cf9dc95f9ff6827cad7ed4394dd209',
      },
    ],
    boot0000:
      '090100002c0055006900410070007000000004071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400',
    bootOrder: '0000',
    provenance:
      'read from the TCG event log of one boot on 2026-12-03 (test/vectors/image/ovmf-4m-q35-1cpu-1024mib.json: ' +
      'qemu -accel tcg -machine q35 -smp 1 -m 1024, fresh OVMF_VARS_4M.fd, swtpm 0.7.1, tpm-crb, ' +
      'direct kernel boot of a ferry node image); the DXEFV digest and the 1 vCPU / 1 GiB PEIFV digest ' +
      'equal those in /work/shared/notes/measured-boot.md (recorded independently; the DXEFV digest is ' +
      'also the SHA-256 of the LZMA-decompressed DXE volume of the .fd)',
  },
];

/** The recorded values for a firmware (by code SHA-256) and shape, or an explanation of what is missing. */
export function findGolden(
  codeSha256: string,
  cpus: number,
  memoryMiB: number,
): { firmware: FirmwareGolden; peifv: string } | { missing: string; known: string[] } {
  const fw = FIRMWARE.find((f) => f.codeSha256 === codeSha256);
  if (!fw) {
    return {
      missing: `firmware ${codeSha256}`,
      known: FIRMWARE.map((f) => `${f.name} (${f.package}) ${f.codeSha256}`),
    };
  }
  const shape = fw.peifv.find((s) => s.cpus === cpus && s.memoryMiB === memoryMiB);
  if (!shape) {
    return {
      missing: `${fw.name} with ${cpus} vCPU(s) and ${memoryMiB} MiB`,
      known: fw.peifv.map((s) => `${s.cpus} vCPU(s), ${s.memoryMiB} MiB`),
    };
  }
  return { firmware: fw, peifv: shape.digest };
}
