// sha256: prints the SHA-256 of its input in hex, like `sha256sum`. With no arguments it
// hashes stdin and prints "HEX  -"; with arguments it hashes each /data/NAME and prints one
// "HEX  NAME" line per file (exit status 1 if a file cannot be opened).
import { args, eprint, exit, openData, print, readFd } from '../../lib/assembly/wasi';

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H = new StaticArray<u32>(8);
const Wk = new StaticArray<u32>(64);
const block = new StaticArray<u8>(64);
let blockLen: i32 = 0;
let total: u64 = 0;

function reset(): void {
  H[0] = 0x6a09e667; H[1] = 0xbb67ae85; H[2] = 0x3c6ef372; H[3] = 0xa54ff53a;
  H[4] = 0x510e527f; H[5] = 0x9b05688c; H[6] = 0x1f83d9ab; H[7] = 0x5be0cd19;
  blockLen = 0;
  total = 0;
}

function compress(): void {
  for (let i = 0; i < 16; i++) {
    Wk[i] = (<u32>block[i * 4] << 24) | (<u32>block[i * 4 + 1] << 16) | (<u32>block[i * 4 + 2] << 8) | <u32>block[i * 4 + 3];
  }
  for (let i = 16; i < 64; i++) {
    const w15 = Wk[i - 15];
    const w2 = Wk[i - 2];
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10);
    Wk[i] = Wk[i - 16] + s0 + Wk[i - 7] + s1;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  for (let i = 0; i < 64; i++) {
    const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
    const ch = (e & f) ^ (~e & g);
    const t1 = h + S1 + ch + K[i] + Wk[i];
    const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = S0 + maj;
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
}

function update(ptr: usize, n: i32): void {
  total += <u64>n;
  for (let i = 0; i < n; i++) {
    block[blockLen++] = load<u8>(ptr + i);
    if (blockLen == 64) {
      compress();
      blockLen = 0;
    }
  }
}

function finish(): string {
  const bits = total * 8;
  block[blockLen++] = 0x80;
  if (blockLen > 56) {
    while (blockLen < 64) block[blockLen++] = 0;
    compress();
    blockLen = 0;
  }
  while (blockLen < 56) block[blockLen++] = 0;
  for (let i = 7; i >= 0; i--) block[blockLen++] = <u8>(bits >> (<u64>i * 8));
  compress();
  let s = '';
  const hex = '0123456789abcdef';
  for (let i = 0; i < 8; i++) {
    for (let j = 28; j >= 0; j -= 4) s += hex.charAt(<i32>((H[i] >>> j) & 15));
  }
  return s;
}

function hashFd(fd: i32, buf: usize, cap: i32): string | null {
  reset();
  while (true) {
    const n = readFd(fd, buf, cap);
    if (n < 0) return null;
    if (n == 0) break;
    update(buf, n);
  }
  return finish();
}

export function _start(): void {
  const cap = 65536;
  const buf = heap.alloc(cap);
  const names = args();
  if (names.length == 0) {
    const h = hashFd(0, buf, cap);
    if (h == null) exit(2);
    print(h! + '  -\n');
    return;
  }
  let status = 0;
  for (let i = 0; i < names.length; i++) {
    const fd = openData(names[i]);
    if (fd < 0) {
      eprint('sha256: cannot open /data/' + names[i] + ' (errno ' + (-fd).toString() + ')\n');
      status = 1;
      continue;
    }
    const h = hashFd(fd, buf, cap);
    if (h == null) {
      eprint('sha256: read error on /data/' + names[i] + '\n');
      status = 1;
      continue;
    }
    print(h! + '  ' + names[i] + '\n');
  }
  if (status != 0) exit(status);
}
