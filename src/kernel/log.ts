/**
 * A small structured logger writing to stderr. It never prints secrets: fields whose name
 * looks secret (key, secret, token, password, passphrase, plaintext, sk, identity, seed phrase)
 * are replaced by "[redacted]", and Uint8Array values are shown only by length.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

const SECRET_RE =
  /(^sk$|secret|private|password|passphrase|token|plaintext|identity|fileKey|file_key|seedPhrase|mnemonic|(^|_)key$)/i;

export function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_RE.test(k)) out[k] = '[redacted]';
    else if (v instanceof Uint8Array) out[k] = `<${v.length} bytes>`;
    else if (v instanceof Error) out[k] = v.message;
    else out[k] = v;
  }
  return out;
}

export type Logger = {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
};

export type LoggerOptions = {
  level?: LogLevel;
  component?: string;
  json?: boolean;
  write?: (line: string) => void;
};

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? (process.env.FERRY_LOG_LEVEL as LogLevel | undefined) ?? 'warn';
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const min = ORDER[level] ?? ORDER.warn;
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const f = fields ? redact(fields) : {};
    if (opts.json) {
      write(
        JSON.stringify({ t: new Date().toISOString(), level: lvl, component: opts.component, msg, ...f }),
      );
    } else {
      const kv = Object.entries(f)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      write(`${lvl}${opts.component ? ` [${opts.component}]` : ''} ${msg}${kv ? ' ' + kv : ''}`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (component) =>
      createLogger({
        ...opts,
        level,
        component: opts.component ? `${opts.component}/${component}` : component,
      }),
  };
}
