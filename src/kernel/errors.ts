import { type ErrorCode, exitCodeFor, type ExitCode } from './codes.ts';

export type FerryErrorOptions = {
  /** Lines that help a person act: expected / got / how to fix. Never secrets. */
  hints?: readonly string[];
  cause?: unknown;
  /** Structured, non-secret details for `--json` consumers. */
  details?: Record<string, unknown>;
};

/**
 * The one error type Ferry throws across module boundaries. Handlers match on `code`,
 * which is stable (see codes.ts); `message` is short and human; `hints` say what was
 * expected, what was seen and how to fix it. Messages never contain keys, plaintext or tokens.
 */
export class FerryError extends Error {
  override readonly name = 'FerryError';
  readonly code: ErrorCode;
  readonly hints: readonly string[];
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hints = Object.freeze([...(options.hints ?? [])]);
    this.details = options.details;
  }

  get exitCode(): ExitCode {
    return exitCodeFor(this.code);
  }

  /** The `{code, message, hints}` object printed by `--json`. */
  toJSON(): { code: ErrorCode; message: string; hints: string[]; details?: Record<string, unknown> } {
    const out: { code: ErrorCode; message: string; hints: string[]; details?: Record<string, unknown> } = {
      code: this.code,
      message: this.message,
      hints: [...this.hints],
    };
    if (this.details !== undefined) out.details = this.details;
    return out;
  }
}

export function isFerryError(e: unknown, code?: ErrorCode): e is FerryError {
  return e instanceof FerryError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a FerryError; non-Ferry errors become INTERNAL. */
export function toFerryError(e: unknown): FerryError {
  if (e instanceof FerryError) return e;
  if (e instanceof Error && e.name === 'AbortError')
    return new FerryError('ABORTED', 'operation aborted', { cause: e });
  const msg = e instanceof Error ? e.message : String(e);
  return new FerryError('INTERNAL', `internal error: ${msg}`, {
    cause: e,
    hints: ['this is a bug in Ferry; please report it'],
  });
}

/** Describes a value's type for "expected X, got Y" hints without printing the value. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  if (typeof value === 'string') return `string(${value.length})`;
  return typeof value;
}
