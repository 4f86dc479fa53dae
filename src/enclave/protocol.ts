/**
 * The executor <-> enclave pipe: length-prefixed canonical messages (docs/protocol.md §10).
 *
 * Frame = u32 big-endian length || encodeTagged('ferry/enclave-msg/v1', body), with
 * length <= MAX_FRAME. `body` is a map with a text field `type`. The executor sends one
 * request at a time and waits for its answer; the enclave answers every request with
 * exactly one message (the answer or `{type: "error", code, message, hints}`); during a run
 * it also sends the progress messages `app-started` and `app-ended`, which are not answers.
 * Nothing secret travels in clear: file keys arrive HPKE-sealed, the result and log leave
 * age-encrypted, the rest (public keys, evidence, receipt, hashes, paths) is public.
 */
import type { Readable, Writable } from 'node:stream';
import { type CanonicalValue, decodeTagged, encodeTagged, FerryError } from '../kernel/index.ts';

export const ENCLAVE_MSG_TAG = 'ferry/enclave-msg/v1';
/** Largest frame accepted (the result ciphertext is bounded by MAX_LIMITS.maxOutputBytes). */
export const MAX_FRAME = 80 * 1024 * 1024;

export type Message = { readonly type: string; readonly [key: string]: CanonicalValue };

export function encodeFrame(msg: Message): Uint8Array {
  const body = encodeTagged(ENCLAVE_MSG_TAG, msg as CanonicalValue);
  if (body.length > MAX_FRAME) {
    throw new FerryError('ENCLAVE_PROTOCOL', 'enclave message too large', {
      hints: [`limit: ${MAX_FRAME} bytes`, `got: ${body.length} bytes`],
    });
  }
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, 4);
  return out;
}

/** Decodes one frame body (without its length prefix). Throws ENCLAVE_PROTOCOL. */
export function decodeFrameBody(body: Uint8Array): Message {
  let v: CanonicalValue;
  try {
    v = decodeTagged(ENCLAVE_MSG_TAG, body);
  } catch (e) {
    throw new FerryError('ENCLAVE_PROTOCOL', 'malformed enclave message', { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || typeof (v as Message).type !== 'string') {
    throw new FerryError('ENCLAVE_PROTOCOL', 'enclave message without a type');
  }
  return v as Message;
}

/** Reads frames from a byte stream; calls `onMessage` per frame, `onError` once on bad input. */
export function readFrames(
  stream: Readable,
  onMessage: (m: Message) => void,
  onError: (e: FerryError) => void,
): void {
  let buf: Buffer = Buffer.alloc(0);
  let failed = false;
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len > MAX_FRAME) {
        failed = true;
        onError(
          new FerryError('ENCLAVE_PROTOCOL', 'enclave frame too large', { hints: [`got: ${len} bytes`] }),
        );
        return;
      }
      if (buf.length < 4 + len) return;
      const body = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      let m: Message;
      try {
        m = decodeFrameBody(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
      } catch (e) {
        failed = true;
        onError(e as FerryError);
        return;
      }
      onMessage(m);
    }
  });
}

export function writeFrame(stream: Writable, msg: Message): Promise<void> {
  const frame = encodeFrame(msg);
  return new Promise((resolve, reject) => {
    stream.write(frame, (err) => (err ? reject(err) : resolve()));
  });
}

/** The error answer for a failure (code, message and hints only; never secrets). */
export function errorMessage(e: unknown): Message {
  const fe =
    e instanceof FerryError
      ? e
      : new FerryError('INTERNAL', `internal enclave error: ${(e as Error)?.message ?? String(e)}`);
  return { type: 'error', code: fe.code, message: fe.message, hints: [...fe.hints] };
}

/** Turns an error answer back into a FerryError on the executor side. */
export function errorFromMessage(m: Message): FerryError {
  const hints = Array.isArray(m.hints) ? (m.hints as CanonicalValue[]).map(String) : [];
  return new FerryError(
    (typeof m.code === 'string' ? m.code : 'ENCLAVE_PROTOCOL') as FerryError['code'],
    typeof m.message === 'string' ? m.message : 'enclave error',
    { hints },
  );
}
