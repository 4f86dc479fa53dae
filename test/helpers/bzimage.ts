/**
 * A synthetic bzImage for measured-boot tests: an MZ/PE32+ image with two sections and a
 * certificate table, whose setup header ("HdrS", protocol 2.15, XLF_CAN_BE_LOADED_ABOVE_4G)
 * sits where Linux puts it — enough for src/image/pe.ts to compute its PCR 4 event digest
 * (the same construction as src/image/measure.test.ts). Section bytes follow `seed`.
 */
export function syntheticKernel(seed = 7): Uint8Array {
  const size = 0x3000 + 16;
  const k = new Uint8Array(size);
  const dv = new DataView(k.buffer);
  dv.setUint16(0, 0x5a4d, true);
  dv.setUint32(0x3c, 0x80, true);
  const pe = 0x80;
  dv.setUint32(pe, 0x4550, true);
  dv.setUint16(pe + 4, 0x8664, true);
  dv.setUint16(pe + 6, 2, true); // sections
  dv.setUint16(pe + 20, 240, true); // SizeOfOptionalHeader (PE32+ with 16 directories)
  const opt = pe + 24;
  dv.setUint16(opt, 0x20b, true);
  dv.setUint32(opt + 60, 0x1000, true); // SizeOfHeaders
  dv.setUint32(opt + 108, 16, true); // NumberOfRvaAndSizes
  dv.setUint32(opt + 112 + 32, 0x3000, true); // certificate table: file offset
  dv.setUint32(opt + 112 + 36, 16, true); // and size
  const sec = opt + 240;
  for (const [i, ptr] of [
    [0, 0x1000],
    [1, 0x2000],
  ]) {
    dv.setUint32(sec + i * 40 + 16, 0x1000, true); // SizeOfRawData
    dv.setUint32(sec + i * 40 + 20, ptr, true); // PointerToRawData
  }
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, 0x20f, true);
  dv.setUint32(0x22c, 0x7fffffff, true);
  dv.setUint16(0x236, 0x2 | 0x1, true);
  for (let i = 0x1000; i < 0x3000; i++) k[i] = (i * seed) & 0xff;
  return k;
}
