/**
 * Parsing the textual forms of recipients and identities, and of identity / recipient
 * files (age's format: one key per line, `#` comments and blank lines ignored).
 * Errors never echo the secret text.
 */
import { describe, FerryError } from '../../kernel/index.ts';
import { HybridIdentity, HybridRecipient } from './hybrid.ts';
import type { Identity, Recipient } from './recipients.ts';
import { X25519Identity, X25519Recipient } from './x25519.ts';

/** Parses `age1...` or `age1pq1...`. Throws AGE_INVALID_RECIPIENT. */
export function parseRecipient(s: string): Recipient {
  if (typeof s !== 'string') {
    throw new FerryError('AGE_INVALID_RECIPIENT', 'recipient must be a string', {
      hints: [`got: ${describe(s)}`],
    });
  }
  if (s.startsWith('age1pq1')) return new HybridRecipient(s);
  if (s.startsWith('age1')) return new X25519Recipient(s);
  throw new FerryError('AGE_INVALID_RECIPIENT', 'unknown recipient type', {
    hints: [
      'expected: age1... (X25519) or age1pq1... (ML-KEM-768 + X25519)',
      `got: ${JSON.stringify(s.slice(0, 12))}...`,
    ],
  });
}

/** Parses `AGE-SECRET-KEY-1...` or `AGE-SECRET-KEY-PQ-1...`. Throws AGE_INVALID_IDENTITY (without echoing the input). */
export function parseIdentity(s: string): Identity {
  if (typeof s !== 'string') {
    throw new FerryError('AGE_INVALID_IDENTITY', 'identity must be a string', {
      hints: [`got: ${describe(s)}`],
    });
  }
  if (s.startsWith('AGE-SECRET-KEY-1')) return new X25519Identity(s);
  if (s.startsWith('AGE-SECRET-KEY-PQ-1')) return new HybridIdentity(s);
  throw new FerryError('AGE_INVALID_IDENTITY', 'unknown identity type', {
    hints: ['expected: AGE-SECRET-KEY-1... (X25519) or AGE-SECRET-KEY-PQ-1... (hybrid)'],
  });
}

function lines(text: string): { line: string; n: number }[] {
  return text
    .split('\n')
    .map((l, i) => ({ line: l.endsWith('\r') ? l.slice(0, -1) : l, n: i + 1 }))
    .filter(({ line }) => line !== '' && !line.startsWith('#'));
}

/** Parses an identity file. Throws AGE_INVALID_IDENTITY naming the bad line number. */
export function parseIdentityFile(text: string): Identity[] {
  if (typeof text !== 'string') {
    throw new FerryError('AGE_INVALID_IDENTITY', 'identity file must be text', {
      hints: [`got: ${describe(text)}`],
    });
  }
  const out: Identity[] = [];
  for (const { line, n } of lines(text)) {
    try {
      out.push(parseIdentity(line));
    } catch (e) {
      throw new FerryError('AGE_INVALID_IDENTITY', `invalid identity on line ${n}`, {
        cause: e,
        hints: (e as FerryError).hints,
      });
    }
  }
  if (out.length === 0)
    throw new FerryError('AGE_INVALID_IDENTITY', 'no identities found in the identity file');
  return out;
}

/** Parses a recipients file. Throws AGE_INVALID_RECIPIENT naming the bad line number. */
export function parseRecipientsFile(text: string): Recipient[] {
  if (typeof text !== 'string') {
    throw new FerryError('AGE_INVALID_RECIPIENT', 'recipients file must be text', {
      hints: [`got: ${describe(text)}`],
    });
  }
  const out: Recipient[] = [];
  for (const { line, n } of lines(text)) {
    try {
      out.push(parseRecipient(line));
    } catch (e) {
      throw new FerryError('AGE_INVALID_RECIPIENT', `invalid recipient on line ${n}`, {
        cause: e,
        hints: (e as FerryError).hints,
      });
    }
  }
  if (out.length === 0)
    throw new FerryError('AGE_INVALID_RECIPIENT', 'no recipients found in the recipients file');
  return out;
}
