/**
 * What OVMF measures into PCR 4 for a QEMU direct kernel boot: the Authenticode SHA-256 of the
 * kernel as OVMF receives it — the bzImage after QEMU's `x86_load_linux` (hw/i386/x86.c, QEMU
 * 7.2) has patched its setup header (docs/protocol.md §17.3, notes: measured-boot.md §4).
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../kernel/index.ts';

function bad(message: string): FerryError {
  return new FerryError('IMAGE_INVALID', `kernel: ${message}`, {
    hints: ['expected an x86-64 Linux bzImage with an EFI stub (a PE image)'],
  });
}

/**
 * The Authenticode digest (SHA-256) of a PE image, as edk2's measured boot computes it: the
 * headers without the checksum and the certificate-table directory entry, the sections in file
 * order, then any bytes after the last section up to the certificate table.
 */
export function authenticodeSha256(image: Uint8Array): string {
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 0x40 || dv.getUint16(0, true) !== 0x5a4d) throw bad('no MZ header');
  const pe = dv.getUint32(0x3c, true);
  if (pe + 24 > image.length || dv.getUint32(pe, true) !== 0x4550) throw bad('no PE signature');
  const sections = dv.getUint16(pe + 6, true);
  const optSize = dv.getUint16(pe + 20, true);
  const opt = pe + 24;
  const magic = dv.getUint16(opt, true);
  if (magic !== 0x20b && magic !== 0x10b) throw bad(`unknown optional header magic 0x${magic.toString(16)}`);
  const checksum = opt + 64;
  const dirs = opt + (magic === 0x20b ? 112 : 96);
  const nDirs = dv.getUint32(opt + (magic === 0x20b ? 108 : 92), true);
  const sizeOfHeaders = dv.getUint32(opt + 60, true);
  const certEntry = dirs + 4 * 8;
  const certSize = nDirs > 4 ? dv.getUint32(certEntry + 4, true) : 0;
  if (sizeOfHeaders > image.length || opt + optSize + sections * 40 > image.length)
    throw bad('truncated headers');
  const h = createHash('sha256');
  h.update(image.subarray(0, checksum));
  if (nDirs > 4) {
    h.update(image.subarray(checksum + 4, certEntry));
    h.update(image.subarray(certEntry + 8, sizeOfHeaders));
  } else {
    h.update(image.subarray(checksum + 4, sizeOfHeaders));
  }
  const table: { ptr: number; size: number }[] = [];
  for (let i = 0; i < sections; i++) {
    const s = opt + optSize + i * 40;
    const size = dv.getUint32(s + 16, true);
    const ptr = dv.getUint32(s + 20, true);
    if (size > 0) table.push({ ptr, size });
  }
  table.sort((a, b) => a.ptr - b.ptr);
  let hashed = sizeOfHeaders;
  for (const s of table) {
    if (s.ptr + s.size > image.length) throw bad('a section lies beyond the end of the file');
    h.update(image.subarray(s.ptr, s.ptr + s.size));
    hashed += s.size;
  }
  if (image.length > hashed + certSize) h.update(image.subarray(hashed, image.length - certSize));
  return h.digest('hex');
}

/** QEMU's ACPI data size on pc/q35 machines (ACPI_BUILD_TABLE_SIZE 0x20000 + 0x8000). */
const ACPI_DATA_SIZE = 0x28000;

/** RAM below 4 GiB on q35 for a RAM size: all of it under 2.75 GiB, else 2 GiB (hw/i386/pc_q35.c). */
export function q35Below4g(memoryMiB: number): number {
  const ram = memoryMiB * 1024 * 1024;
  return ram >= 0xb0000000 ? 0x80000000 : Math.min(ram, 0xb0000000);
}

/**
 * The kernel as QEMU 7.2 hands it to OVMF for `-kernel K -initrd I -m memoryMiB` on q35 (not
 * SEV): setup header fields type_of_loader, loadflags.CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr,
 * ramdisk_image and ramdisk_size rewritten as `x86_load_linux` does.
 */
export function qemuPatchedKernel(kernel: Uint8Array, initrdSize: number, memoryMiB: number): Uint8Array {
  const k = Uint8Array.from(kernel);
  const dv = new DataView(k.buffer);
  if (k.length < 0x250 || dv.getUint32(0x202, true) !== 0x53726448) throw bad('no "HdrS" setup header');
  const protocol = dv.getUint16(0x206, true);
  if (protocol < 0x20c) throw bad(`boot protocol 0x${protocol.toString(16)} is older than 2.12`);
  const realAddr = 0x10000;
  const cmdlineAddr = 0x20000;
  let initrdMax = dv.getUint16(0x236, true) & 0x2 ? 0xffffffff : dv.getUint32(0x22c, true); // XLF_CAN_BE_LOADED_ABOVE_4G
  const below4g = q35Below4g(memoryMiB);
  if (initrdMax >= below4g - ACPI_DATA_SIZE) initrdMax = below4g - ACPI_DATA_SIZE - 1;
  if (initrdSize >= initrdMax) throw bad(`an initrd of ${initrdSize} bytes does not fit below ${initrdMax}`);
  dv.setUint32(0x228, cmdlineAddr, true); // cmd_line_ptr
  k[0x210] = 0xb0; // type_of_loader: QEMU
  k[0x211] |= 0x80; // loadflags: CAN_USE_HEAP
  dv.setUint16(0x224, cmdlineAddr - realAddr - 0x200, true); // heap_end_ptr
  dv.setUint32(0x218, (initrdMax - initrdSize) & ~0xfff, true); // ramdisk_image
  dv.setUint32(0x21c, initrdSize, true); // ramdisk_size
  return k;
}

/** The PCR 4 event digest of a kernel booted by QEMU with an initrd of `initrdSize` bytes. */
export function kernelEventDigest(kernel: Uint8Array, initrdSize: number, memoryMiB: number): string {
  return authenticodeSha256(qemuPatchedKernel(kernel, initrdSize, memoryMiB));
}
