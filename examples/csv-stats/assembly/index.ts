// csv-stats: statistics of one numeric column of a CSV file on stdin (first line: header).
// The column is chosen by name: `--column NAME` or the first argument (default: the first
// column). Prints {"column":NAME,"count":N,"mean":M,"min":A,"max":B}; mean, min and max are
// null when no row had a number in that column. Rows whose cell is not a number are counted
// in "skipped". Fields are separated by commas; surrounding double quotes and spaces are
// stripped (quoted fields with embedded commas are not supported). Exit status 1 when the
// column does not exist.
import { args, eprint, exit, print, readFd } from '../../lib/assembly/wasi';

let line = new Uint8Array(1024);
let lineLen: i32 = 0;
let header = true;
let columnName = '';
let column: i32 = -1;
let count: u64 = 0;
let skipped: u64 = 0;
let sum: f64 = 0;
let min: f64 = Infinity;
let max: f64 = -Infinity;

function cell(start: i32, end: i32): string {
  while (start < end && (line[start] == 32 || line[start] == 34)) start++;
  while (end > start && (line[end - 1] == 32 || line[end - 1] == 34 || line[end - 1] == 13)) end--;
  return String.UTF8.decodeUnsafe(line.dataStart + <usize>start, <usize>(end - start));
}

function isNumber(s: string): bool {
  if (s.length == 0) return false;
  let digits = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) digits = true;
    else if (!(c == 43 || c == 45 || c == 46 || c == 101 || c == 69)) return false;
  }
  return digits;
}

function endLine(): void {
  let idx = 0;
  let start = 0;
  let found = false;
  let value = '';
  for (let i = 0; i <= lineLen; i++) {
    if (i == lineLen || line[i] == 44) {
      const c = cell(start, i);
      if (header) {
        if ((columnName.length == 0 && idx == 0) || c == columnName) {
          if (column < 0) {
            column = idx;
            columnName = c;
          }
        }
      } else if (idx == column) {
        value = c;
        found = true;
        break;
      }
      idx++;
      start = i + 1;
    }
  }
  if (header) {
    header = false;
    if (column < 0) {
      eprint('csv-stats: no column named ' + columnName + '\n');
      exit(1);
    }
  } else if (lineLen > 0) {
    if (found && isNumber(value)) {
      const v = parseFloat(value);
      if (isNaN(v)) {
        skipped++;
      } else {
        count++;
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    } else skipped++;
  }
  lineLen = 0;
}

function jsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 34) out += '\\"';
    else if (c == 92) out += '\\\\';
    else if (c < 32) out += '\\u00' + (c < 16 ? '0' : '') + c.toString(16);
    else out += s.charAt(i);
  }
  return out + '"';
}

function num(v: f64): string {
  if (!isFinite(v)) return 'null';
  return v.toString();
}

export function _start(): void {
  const a = args();
  for (let i = 0; i < a.length; i++) {
    if (a[i] == '--column' && i + 1 < a.length) {
      columnName = a[i + 1];
      i++;
    } else if (columnName.length == 0) columnName = a[i];
  }
  const cap = 65536;
  const buf = heap.alloc(cap);
  while (true) {
    const n = readFd(0, buf, cap);
    if (n < 0) exit(2);
    if (n == 0) break;
    for (let i = 0; i < n; i++) {
      const c = load<u8>(buf + i);
      if (c == 10) {
        endLine();
        continue;
      }
      if (lineLen == line.length) {
        const bigger = new Uint8Array(line.length * 2);
        bigger.set(line);
        line = bigger;
      }
      line[lineLen++] = c;
    }
  }
  if (lineLen > 0 || header) endLine();
  const mean = count > 0 ? sum / <f64>count : NaN;
  print(
    '{"column":' + jsonString(columnName) + ',"count":' + count.toString() + ',"mean":' + num(mean) +
      ',"min":' + num(count > 0 ? min : NaN) + ',"max":' + num(count > 0 ? max : NaN) +
      ',"skipped":' + skipped.toString() + '}\n',
  );
}
