/**
 * `ferry attest verify tpm2`: verifies a TPM 2.0 quote made by tpm2-tools and appraises it
 * against a policy. Exit 0 when accepted, 3 when not, 2 on usage errors.
 */
import type { X509Certificate } from 'node:crypto';
import {
  type PcrValues,
  parsePcrValues,
  appraiseQuote,
  type AkPublic,
  parseAkPublic,
  parseCertificates,
  invalidAppraisal,
} from '../../attestation/index.ts';
import { FerryError, fromHex, isFerryError } from '../../kernel/index.ts';
import { stringList } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  appraisalResult,
  COMMON_VERIFY_OPTIONS,
  loadPolicyOption,
  nowOption,
  readFileArg,
} from './common.ts';

const DESCRIPTION = `
Checks that the quote (TPMS_ATTEST, "tpm2_quote -m") is a TPM-generated quote (magic
0xff544347, type 0x8018) signed by the AK ("-s" TPMT_SIGNATURE: RSASSA, RSAPSS or ECDSA),
that its extraData equals --nonce, and, with --pcrs, that the PCR values digest (with the
signing scheme's hash, also for a SHA-1 bank) to the quote's pcrDigest. When the AK is given
as TPM2B_PUBLIC or TPMT_PUBLIC, it must also be a restricted, fixedTPM signing key.

--ak accepts PEM or DER SubjectPublicKeyInfo, TPM2B_PUBLIC ("tpm2_createak -u -f tss") or
TPMT_PUBLIC; the format is detected. --pcrs accepts JSON {"sha256": {"0": hex, ...},
"sha1": {...}} or tpm2-tools' serialized file ("tpm2_quote -o").

--event-log accepts a TCG crypto-agile event log as Linux exposes it
(/sys/kernel/security/tpm0/binary_bios_measurements); it needs --pcrs. For every quoted PCR
of a bank the log has and touches, the log must replay to the value in --pcrs (else the
evidence is invalid, ATTESTATION_PCR_MISMATCH), and then a policy pinning measured-boot
events (referenceValues.tpm2.events) judges the log's events. Without it, such a policy
reports that the evidence carries no event log.

Proving the AK (optional; needs at least one --ca, each file PEM or DER, PEM may hold several):
  --ak-cert F --ca F   the AK certificate (first certificate of F; further ones are
                       intermediates) must be for this AK and chain to a --ca: the AK is proven.
  --ek-cert F --ca F   the EK certificate must chain to a --ca. This proves a genuine TPM's EK,
                       but an EK cannot sign, so nothing here binds the AK to that TPM: that
                       takes credential activation (an online challenge at node registration).
                       The quote stays valid, and the reason ATTESTATION_AK_NOT_PROVEN is
                       reported, so it is not accepted.
Without these options the AK is taken as given.

For Ferry evidence the nonce is SHA256(report_data) (docs/protocol.md §8, tpm2).
"accepted" = valid and allowed by the policy (default: the production policy).`;

async function certsArg(
  ctx: Parameters<typeof readFileArg>[0],
  name: string,
): Promise<X509Certificate[] | undefined> {
  const bytes = await readFileArg(ctx, name, { optional: true });
  return bytes === undefined ? undefined : parseCertificates(bytes, `--${name}`);
}

export default defineCommand({
  name: 'attest verify tpm2',
  summary: 'verify a TPM 2.0 quote (tpm2-tools files) and appraise it against a policy',
  usage:
    'attest verify tpm2 --quote F --signature F --ak F --nonce HEX [--pcrs F] [--event-log F] [--ak-cert F] [--ek-cert F] [--ca F]... [--policy F] [--now ISO8601] [--json]',
  description: DESCRIPTION,
  options: {
    quote: { type: 'string', value: 'FILE', description: 'TPMS_ATTEST as written by tpm2_quote -m' },
    signature: { type: 'string', value: 'FILE', description: 'TPMT_SIGNATURE as written by tpm2_quote -s' },
    ak: {
      type: 'string',
      value: 'FILE',
      description: 'AK public key: PEM/DER SPKI, TPM2B_PUBLIC or TPMT_PUBLIC',
    },
    nonce: {
      type: 'string',
      value: 'HEX',
      description: "the expected extraData (the quote's qualifying data)",
    },
    pcrs: { type: 'string', value: 'FILE', description: "PCR values: JSON or tpm2-tools' serialized format" },
    'event-log': {
      type: 'string',
      value: 'FILE',
      description: 'TCG event log (binary_bios_measurements) to replay against --pcrs',
    },
    'ak-cert': { type: 'string', value: 'FILE', description: 'AK certificate (+ intermediates), PEM or DER' },
    'ek-cert': { type: 'string', value: 'FILE', description: 'EK certificate (+ intermediates), PEM or DER' },
    ca: {
      type: 'string',
      multiple: true,
      value: 'FILE',
      description: 'trusted CA certificate(s), PEM or DER',
    },
    ...COMMON_VERIFY_OPTIONS,
  },
  async run(ctx) {
    const policy = await loadPolicyOption(ctx);
    const now = nowOption(ctx);
    const nonceHex = ctx.values.nonce;
    if (typeof nonceHex !== 'string' || nonceHex.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', 'missing --nonce HEX', {
        hints: ['run with --help for usage'],
      });
    }
    let nonce: Uint8Array;
    try {
      nonce = fromHex(nonceHex, '--nonce');
    } catch (e) {
      const fe = e as FerryError;
      throw new FerryError('USAGE_INVALID_ARGUMENT', fe.message, { hints: fe.hints, cause: e });
    }
    if (nonce.length > 64) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--nonce is longer than a TPM accepts', {
        hints: ['expected: at most 64 bytes', `got: ${nonce.length}`],
      });
    }
    const quote = await readFileArg(ctx, 'quote');
    const signature = await readFileArg(ctx, 'signature');
    const akBytes = await readFileArg(ctx, 'ak');
    const pcrBytes = await readFileArg(ctx, 'pcrs', { optional: true });
    const eventLog = await readFileArg(ctx, 'event-log', { optional: true });
    if (eventLog !== undefined && pcrBytes === undefined) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', '--event-log needs --pcrs', {
        hints: ['the log is replayed against the quoted PCR values: give them with --pcrs'],
      });
    }
    const caFiles = stringList(ctx, 'ca');
    const hasAkCert = typeof ctx.values['ak-cert'] === 'string';
    const hasEkCert = typeof ctx.values['ek-cert'] === 'string';
    if ((hasAkCert || hasEkCert) && caFiles.length === 0) {
      throw new FerryError('USAGE_MISSING_ARGUMENT', '--ak-cert and --ek-cert need at least one --ca', {
        hints: ['give the CA certificate(s) the AK or EK certificate must chain to'],
      });
    }
    if (caFiles.length > 0 && !hasAkCert && !hasEkCert) {
      throw new FerryError('USAGE_INVALID_ARGUMENT', '--ca needs --ak-cert or --ek-cert');
    }
    const trustedCas: X509Certificate[] = [];
    for (const f of caFiles) {
      const bytes = await readFileArg({ ...ctx, values: { ...ctx.values, ca: f } }, 'ca');
      try {
        trustedCas.push(...parseCertificates(bytes, `--ca ${f}`));
      } catch (e) {
        const fe = e as FerryError;
        throw new FerryError('USAGE_INVALID_ARGUMENT', fe.message, { cause: e });
      }
    }

    // From here on, bad content is bad evidence: it is reported (exit 3), not a usage error.
    const bad = (e: unknown) => {
      if (!isFerryError(e) || e.exitCode === 2) throw e;
      return appraisalResult(invalidAppraisal('tpm2', { code: e.code, message: e.message }));
    };
    let ak: AkPublic;
    let pcrs: PcrValues | undefined;
    let akCerts: X509Certificate[] | undefined;
    let ekCerts: X509Certificate[] | undefined;
    try {
      ak = parseAkPublic(akBytes);
      pcrs = pcrBytes === undefined ? undefined : parsePcrValues(pcrBytes);
      akCerts = await certsArg(ctx, 'ak-cert');
      ekCerts = await certsArg(ctx, 'ek-cert');
    } catch (e) {
      return bad(e);
    }
    const appraisal = appraiseQuote({
      quote,
      signature,
      ak,
      nonce,
      pcrs,
      eventLog,
      policy,
      now,
      proof: {
        akCert: akCerts?.[0],
        ekCert: ekCerts?.[0],
        intermediates: [...(akCerts?.slice(1) ?? []), ...(ekCerts?.slice(1) ?? [])],
        trustedCas,
      },
    });
    return appraisalResult(appraisal);
  },
});
