/**
 * Configuration fields both daemons share (`ferry node start`, `ferry agent start`): the
 * contract addresses and the list forms a flag or FERRY_* variable takes (comma-separated) or
 * a config file takes (an array). See src/kernel/config.ts for the precedence rules.
 */
import { z } from 'zod';

/** An EVM address: `0x` and 40 hex digits. */
export const AddressSchema = z.string().regex(/^0x[0-9a-fA-F]{40}$/);

/** The three contract addresses. */
export const ContractsSchema = z.object({
  NodeRegistry: AddressSchema,
  Assets: AddressSchema,
  Tasks: AddressSchema,
});

/** Contracts given as a JSON string (env, flag) or an object (config file). */
export const contractsOption = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}, ContractsSchema);

const commaList = (v: unknown) =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : v;

/** A comma-separated list (env, flag) or an array (config file) of at least one of `allowed`. */
export const enumList = (allowed: readonly string[]) =>
  z.preprocess(commaList, z.array(z.enum(allowed as [string, ...string[]])).min(1));

/** A comma-separated list of file paths (env, flag) or an array (config file). */
export const fileList = z.preprocess(commaList, z.array(z.string().min(1))).default([]);

/** A comma-separated list of 32-byte keys in lowercase hex. */
export const hexKeyList = z
  .preprocess(
    (v) => (typeof v === 'string' ? v.split(',').filter(Boolean) : v),
    z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  )
  .default([]);
