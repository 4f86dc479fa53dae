export { concatBytes, equalBytes, fromHex, toHex, utf8, wipe } from './bytes.ts';
export {
  type CanonicalValue,
  decodeCanonical,
  decodeTagged,
  encodeCanonical,
  encodeTagged,
  hashTagged,
} from './canonical.ts';
export { EXIT, ERROR_CODES, type ErrorCode, type ExitCode, exitCodeFor, isRetryable } from './codes.ts';
export {
  compileCacheDir,
  envName,
  ferryHome,
  type LoadConfigOptions,
  loadConfig,
  readConfigFile,
} from './config.ts';
export { describe, FerryError, type FerryErrorOptions, isFerryError, toFerryError } from './errors.ts';
export { createLogger, type Logger, type LoggerOptions, type LogLevel, redact } from './log.ts';
