/**
 * The program the node image's init runs (as `/bin/node /ferry/src/image/guest.ts`): the guest
 * agent of the VM enclave backend (docs/protocol.md §17.5). It is part of the initrd and
 * therefore of PCR 9.
 *
 * 1. It prints one report line on the console (ttyS0), what the boot measured:
 *
 *        FERRY-IMAGE-REPORT {"node", "uptime", "runtimeMeasurement", "pcrs": {"sha256": {...}},
 *                            "eventLog": base64 | null}
 *
 * 2. Without a second serial port (ttyS1) it exits, which powers the VM off (`ferry image`
 *    tests boot it that way). With one, it serves the host over it (channel.ts) until the host
 *    goes away: per attempt it starts one process of the enclave runtime
 *    (/ferry/src/enclave/main.ts, fixed path and arguments) and relays its pipe; it takes no
 *    other command (no shell, no exec of anything else, no file from the host). It inspects two
 *    host requests before they reach the enclave: `init` must name the guest's TPM
 *    (`tpm2-device` on /dev/tpmrm0), and `run` may name only `url` sources: the agent asks the
 *    host to fetch each (the guest has no network), writes the bytes — ciphertext, which the
 *    enclave authenticates and hashes itself — to the attempt's directory in /tmp and hands
 *    the enclave that file instead. The directory is removed when the attempt's process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { uptime } from 'node:os';
import { PassThrough } from 'node:stream';
import { ReadStream, WriteStream } from 'node:tty';
import { type CanonicalValue, FerryError } from '../kernel/index.ts';
import { encodeFrame, errorMessage, type Message, readFrames } from '../enclave/protocol.ts';
import { type ChannelMessage, encodeLine, KIND, lineReader } from './channel.ts';

const ENCLAVE_ENTRY = '/ferry/src/enclave/main.ts';
const TPM_DEVICE = '/dev/tpmrm0';
/** The only file an enclave's backend may read as its event log (the firmware's, from securityfs). */
const EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
const CHANNEL = '/dev/ttyS1';

function tryRead(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

function report(): void {
  const pcrs: Record<string, string> = {};
  for (let i = 0; i < 24; i++) {
    const v = tryRead(`/sys/class/tpm/tpm0/pcr-sha256/${i}`);
    if (v !== null) pcrs[String(i)] = v.toString('utf8').trim().toLowerCase();
  }
  const log = tryRead(EVENT_LOG);
  const manifest = tryRead('/ferry/runtime-manifest.txt');
  const out = {
    node: process.version,
    uptime: uptime(),
    runtimeMeasurement: manifest === null ? null : createHash('sha256').update(manifest).digest('hex'),
    pcrs: { sha256: pcrs },
    eventLog: log === null ? null : log.toString('base64'),
  };
  process.stdout.write(`FERRY-IMAGE-REPORT ${JSON.stringify(out)}\n`);
}

/** The second serial port, when the VM has one (a missing UART has type 0, or fails to open). */
function openChannel(): number | null {
  const type = tryRead('/sys/class/tty/ttyS1/type');
  if (type === null || type.toString('utf8').trim() === '0') return null;
  try {
    return openSync(CHANNEL, 'r+');
  } catch {
    return null;
  }
}

type Attempt = {
  child: ChildProcess;
  /** Bytes from the host, parsed into frames before they reach the enclave. */
  inbound: PassThrough;
  dir: string;
  /** The frames from the host, in order (a `run` waits for its inputs). */
  queue: Promise<void>;
  files: number;
};

function serve(fd: number): void {
  const input = new ReadStream(fd);
  input.setRawMode(true);
  const output = new WriteStream(openSync(CHANNEL, 'w'));
  const send = (kind: number, id: number, payload?: Uint8Array) =>
    output.write(encodeLine(kind, id, payload));
  const attempts = new Map<number, Attempt>();
  const relays = new Map<
    number,
    { write: (b: Uint8Array) => Promise<void>; done: (error: string | null) => void }
  >();
  let nextRelay = 1;

  /** Fetches a URL through the host into `path`; rejects with the host's error. */
  const fetchToFile = (url: string, path: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const id = nextRelay++;
      let writing = Promise.resolve();
      let fd: number;
      try {
        fd = openSync(path, 'wx', 0o600);
      } catch (e) {
        reject(e);
        return;
      }
      relays.set(id, {
        write: (b) => {
          writing = writing.then(() => {
            writeSync(fd, b);
            send(KIND.relayAck, id);
          });
          return writing;
        },
        done: (error) => {
          relays.delete(id);
          void writing.then(() => {
            closeSync(fd);
            if (error === null) resolve();
            else
              reject(
                new FerryError('ENCLAVE_DATA_UNAVAILABLE', 'the host could not fetch an input', {
                  hints: [error.slice(0, 200)],
                }),
              );
          });
        },
      });
      send(KIND.relayRequest, id, Buffer.from(url, 'utf8'));
    });

  /** `run` with every url source replaced by a file fetched through the host. */
  const stage = async (a: Attempt, m: Message): Promise<Message> => {
    const source = async (v: CanonicalValue, what: string): Promise<CanonicalValue> => {
      const s = v as { kind?: unknown; location?: unknown; encrypted?: unknown };
      if (s === null || typeof s !== 'object' || s.kind !== 'url' || typeof s.location !== 'string') {
        throw new FerryError('ENCLAVE_PROTOCOL', `run: ${what}: the VM enclave takes url sources only`, {
          hints: ['the guest fetches each url through the host; it opens no file the host names'],
        });
      }
      await mkdir(a.dir, { recursive: true, mode: 0o700 });
      const path = `${a.dir}/${a.files++}`;
      await fetchToFile(s.location, path);
      return { kind: 'file', location: path, encrypted: s.encrypted as CanonicalValue };
    };
    const app = m.app as { [k: string]: CanonicalValue } | undefined;
    const datasets = Array.isArray(m.datasets) ? (m.datasets as { [k: string]: CanonicalValue }[]) : [];
    const out: { [k: string]: CanonicalValue } = { ...m };
    if (app && typeof app === 'object') out.app = { ...app, source: await source(app.source, 'app') };
    const ds: CanonicalValue[] = [];
    for (let i = 0; i < datasets.length; i++) {
      const d = datasets[i];
      ds.push(d && typeof d === 'object' ? { ...d, source: await source(d.source, `datasets[${i}]`) } : d);
    }
    if (Array.isArray(m.datasets)) out.datasets = ds;
    return out as Message;
  };

  const check = (m: Message): void => {
    if (m.type !== 'init') return;
    const b = m.backend as { [k: string]: CanonicalValue } | undefined;
    if (!b || typeof b !== 'object' || b.kind !== 'tpm2-device' || b.device !== TPM_DEVICE) {
      throw new FerryError(
        'ENCLAVE_PROTOCOL',
        `init: the VM enclave quotes with its TPM (${TPM_DEVICE}) only`,
        {
          hints: ['expected backend {kind: "tpm2-device", device: "/dev/tpmrm0", ...}'],
        },
      );
    }
    // The host names no other guest file: the log sent in evidence is the firmware's, or none.
    if (b.eventLogFile !== undefined && b.eventLogFile !== EVENT_LOG) {
      throw new FerryError('ENCLAVE_PROTOCOL', `init: the VM enclave's event log is ${EVENT_LOG} only`);
    }
  };

  const open = (id: number) => {
    if (attempts.has(id)) return;
    const child = spawn('/bin/node', ['--disable-warning=ExperimentalWarning', ENCLAVE_ENTRY], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=2', HOME: '/tmp', TMPDIR: '/tmp' },
    });
    const pipe = child.stdio[3] as unknown as import('node:net').Socket;
    const inbound = new PassThrough();
    const a: Attempt = { child, inbound, dir: `/tmp/attempt-${id}`, queue: Promise.resolve(), files: 0 };
    attempts.set(id, a);
    const reply = (m: Message) => send(KIND.fromEnclave, id, encodeFrame(m));
    readFrames(
      inbound,
      (m) => {
        a.queue = a.queue.then(async () => {
          try {
            check(m);
            const forwarded = m.type === 'run' ? await stage(a, m) : m;
            pipe.write(encodeFrame(forwarded));
          } catch (e) {
            reply(errorMessage(e));
          }
        });
      },
      (e) => {
        reply(errorMessage(e));
        child.kill('SIGKILL');
      },
    );
    pipe.on('data', (b: Buffer) => send(KIND.fromEnclave, id, b));
    pipe.on('error', () => {});
    let tail = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      tail += s;
      const lines = tail.split('\n');
      tail = lines.pop() ?? '';
      for (const l of lines) if (l) send(KIND.log, id, Buffer.from(l.slice(0, 2000), 'utf8'));
    });
    child.on('exit', (code, signal) => {
      attempts.delete(id);
      void rm(a.dir, { recursive: true, force: true }).finally(() =>
        send(KIND.exited, id, Buffer.from(JSON.stringify({ code, signal }), 'utf8')),
      );
    });
    child.on('error', () => {});
  };

  const onMessage = (m: ChannelMessage) => {
    switch (m.kind) {
      case KIND.open:
        return open(m.id);
      case KIND.toEnclave:
        return void attempts.get(m.id)?.inbound.write(m.payload);
      case KIND.kill:
        return void attempts.get(m.id)?.child.kill('SIGKILL');
      case KIND.relayData:
        return void relays.get(m.id)?.write(m.payload);
      case KIND.relayEnd:
        return relays
          .get(m.id)
          ?.done(m.payload.length === 0 ? null : Buffer.from(m.payload).toString('utf8'));
      default:
        return undefined; // unknown kinds are ignored: the agent takes no other command
    }
  };
  input.on(
    'data',
    lineReader(onMessage, (why) => process.stderr.write(`ferry-guest: channel: ${why}\n`)),
  );
  // A newline first: the firmware's console output on this port may end mid-line.
  output.write('\n');
  send(KIND.hello, 0, Buffer.from(JSON.stringify({ node: process.version, uptime: uptime() }), 'utf8'));
}

report();
const fd = openChannel();
if (fd !== null) serve(fd);
