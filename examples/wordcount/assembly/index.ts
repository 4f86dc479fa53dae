// wordcount: counts lines, words (runs of non-whitespace) and bytes of stdin, like `wc`, and
// prints {"lines":L,"words":W,"bytes":B}.
import { print, readFd, exit } from '../../lib/assembly/wasi';

export function _start(): void {
  const cap = 65536;
  const buf = heap.alloc(cap);
  let lines: u64 = 0;
  let words: u64 = 0;
  let bytes: u64 = 0;
  let inWord = false;
  while (true) {
    const n = readFd(0, buf, cap);
    if (n < 0) exit(2);
    if (n == 0) break;
    bytes += <u64>n;
    for (let i = 0; i < n; i++) {
      const c = load<u8>(buf + i);
      if (c == 10) lines++;
      const space = c == 32 || c == 10 || c == 9 || c == 13 || c == 11 || c == 12;
      if (space) inWord = false;
      else if (!inWord) {
        inWord = true;
        words++;
      }
    }
  }
  print('{"lines":' + lines.toString() + ',"words":' + words.toString() + ',"bytes":' + bytes.toString() + '}\n');
}
