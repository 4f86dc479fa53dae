/**
 * The host <-> guest channel of the VM enclave backend (docs/protocol.md §17.5): the guest's
 * second serial port (ttyS1; the Debian kernel builds the 8250 driver in, virtio-console is a
 * module and the initrd loads none), a QEMU socket chardev on the host.
 *
 * A tty is not an 8-bit clean pipe unless its termios says so, and Node.js can set raw mode
 * but not clear OPOST (libuv's raw mode keeps ONLCR): so every message is one text line,
 * `base64(kind u8 || id u32 big-endian || payload) "\n"`, and a reader ignores `\r`. Lines
 * are at most MAX_LINE characters. OVMF writes its console to every serial port, so the host
 * skips what is not a channel line until the agent's hello (which the agent sends after a
 * newline of its own). The kinds:
 *
 * host -> guest: `o` open attempt `id` (start an enclave process), `f` bytes for the
 * attempt's enclave pipe, `k` kill the attempt's process, `d` relay data for request `id`,
 * `e` relay end for request `id` (payload empty: complete; else the error text).
 * guest -> host: `H` hello (JSON), `F` bytes from the attempt's enclave pipe, `L` one stderr
 * line of the attempt's process, `X` the attempt's process exited (JSON {code, signal}),
 * `R` relay request `id` (payload: the URL), `A` relay chunk acknowledged.
 *
 * Imports Node.js built-ins only: it is part of the image (PCR 9) with guest.ts.
 */

export const KIND = {
  open: 0x6f, // o
  toEnclave: 0x66, // f
  kill: 0x6b, // k
  relayData: 0x64, // d
  relayEnd: 0x65, // e
  hello: 0x48, // H
  fromEnclave: 0x46, // F
  log: 0x4c, // L
  exited: 0x58, // X
  relayRequest: 0x52, // R
  relayAck: 0x41, // A
} as const;

/** Longest line accepted (base64 of 96 MiB: above the largest enclave frame, 80 MiB). */
export const MAX_LINE = 128 * 1024 * 1024;
/** Relay chunk size and how many chunks may be unacknowledged (the tty's buffers are small). */
export const RELAY_CHUNK = 32 * 1024;
export const RELAY_WINDOW = 4;

export type ChannelMessage = { kind: number; id: number; payload: Uint8Array };

export function encodeLine(kind: number, id: number, payload: Uint8Array = new Uint8Array(0)): string {
  const b = Buffer.alloc(5 + payload.length);
  b[0] = kind;
  b.writeUInt32BE(id >>> 0, 1);
  b.set(payload, 5);
  return `${b.toString('base64')}\n`;
}

/**
 * Splits a byte stream into messages; calls `onError` once (and stops) on a bad line. With
 * `skipOthers`, lines that are not channel lines are skipped instead: before the guest agent's
 * hello the port carries OVMF's console output (the firmware writes to every serial port).
 */
export function lineReader(
  onMessage: (m: ChannelMessage) => void,
  onError: (message: string) => void,
  options: { skipOthers?: boolean } = {},
): (chunk: Buffer | string) => void {
  let pending = '';
  let failed = false;
  return (chunk) => {
    if (failed) return;
    pending += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    for (;;) {
      const nl = pending.indexOf('\n');
      if (nl < 0) break;
      const line = pending.slice(0, nl).replace(/\r/g, '');
      pending = pending.slice(nl + 1);
      if (line.length === 0) continue;
      if (!/^[A-Za-z0-9+/]+=*$/.test(line)) {
        if (options.skipOthers) continue;
        failed = true;
        onError(`not a channel line (${line.length} characters: ${JSON.stringify(line.slice(0, 40))}…)`);
        return;
      }
      const b = Buffer.from(line, 'base64');
      if (b.length < 5) {
        if (options.skipOthers) continue;
        failed = true;
        onError('short channel line');
        return;
      }
      onMessage({ kind: b[0], id: b.readUInt32BE(1), payload: new Uint8Array(b.subarray(5)) });
    }
    if (options.skipOthers && pending.length > 1 << 20) pending = pending.slice(-4096);
    if (pending.length > MAX_LINE) {
      failed = true;
      onError(`channel line longer than ${MAX_LINE} characters`);
    }
  };
}
