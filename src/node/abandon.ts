/**
 * The cause an executor writes on chain when it abandons an attempt (Tasks.abandon, §11.3):
 * the error code and fixed wording of ours, never an error's message, which may carry a peer's
 * text (an agent's or any server's JSON `error.message`) or a URL (§13.1).
 */
import { ERROR_CODES } from '../kernel/index.ts';

const WORDING: readonly [prefix: string, words: string][] = [
  ['PEER_ENDPOINT_REFUSED', 'an input endpoint on chain is not one this node calls'],
  ['PEER_', 'an input could not be fetched from its owner'],
  ['RELAY_', 'an input stream from its owner failed'],
  ['ENCLAVE_KEYS_MISSING', 'keys released on chain were not delivered'],
  ['ENCLAVE_', 'the enclave could not finish the run'],
  ['KEY_', 'a delivered key did not check out'],
  ['AGE_', 'an input did not decrypt'],
  ['CHAIN_', 'the chain could not be read'],
];

/**
 * `CODE: fixed wording`, or `CODE: app|dataset N: fixed wording` when the error's message starts
 * by naming the input (as the enclave's input errors do: `dataset 3: …`); only that kind and
 * number are taken from the message. An unknown code becomes INTERNAL.
 */
export function abandonCause(code: string, message = ''): string {
  const c = Object.hasOwn(ERROR_CODES, code) ? code : 'INTERNAL';
  const words = WORDING.find(([p]) => c.startsWith(p))?.[1] ?? 'the run could not finish';
  const input = /^(app|dataset) ([0-9]{1,20}): /.exec(message);
  return input ? `${c}: ${input[1]} ${input[2]}: ${words}` : `${c}: ${words}`;
}
