/**
 * CRL checks that @phala/dcap-qvl 0.3.9 leaves out: it consults the root CA CRL and the PCK
 * CRL for revoked serial numbers, but does not verify their signatures, their validity window,
 * or that the PCK CRL comes from the CA that issued the quote's PCK certificate. Ferry checks
 * these before calling dcap-qvl (docs/protocol.md §8 "tdx"):
 *
 * - `root_ca_crl` is issued (issuer Name byte-equal to the subject) and signed (ECDSA P-256,
 *   SHA-256) by Intel's SGX Root CA;
 * - `pck_crl` is issued and signed by the first certificate of `pck_crl_issuer_chain`, which
 *   is itself signed by the root CA, and whose subject is the issuer of the quote's PCK leaf;
 * - both CRLs satisfy thisUpdate <= now <= nextUpdate.
 */
import { verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { FerryError } from '../../kernel/index.ts';
import { children, decodeOid, readTlv, type Tlv } from '../sev-snp/der.ts';

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';

export type ParsedCrl = {
  /** DER of the TBSCertList (the signed bytes). */
  tbs: Uint8Array;
  /** DER of the issuer Name. */
  issuer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | null;
  signatureAlgorithm: string;
  /** The DER ECDSA signature inside the BIT STRING. */
  signature: Uint8Array;
};

function malformed(what: string): never {
  throw new FerryError('ATTESTATION_MALFORMED', `CRL: ${what}`);
}

function decodeTime(der: Uint8Array, t: Tlv): Date {
  const s = new TextDecoder().decode(der.subarray(t.start, t.end));
  const utc = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const gen = t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  let iso: string;
  if (utc) {
    const yy = Number(utc[1]);
    iso = `${yy >= 50 ? 1900 + yy : 2000 + yy}-${utc[2]}-${utc[3]}T${utc[4]}:${utc[5]}:${utc[6]}Z`;
  } else if (gen) {
    iso = `${gen[1]}-${gen[2]}-${gen[3]}T${gen[4]}:${gen[5]}:${gen[6]}Z`;
  } else {
    return malformed(`bad time ${s}`);
  }
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) malformed(`bad time ${s}`);
  return d;
}

/** Parses a DER CertificateList (RFC 5280 section 5.1). Throws ATTESTATION_MALFORMED. */
export function parseCrl(der: Uint8Array): ParsedCrl {
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) malformed('not a single SEQUENCE');
  const [tbs, alg, sig] = children(der, top);
  if (tbs?.tag !== 0x30 || alg?.tag !== 0x30 || sig?.tag !== 0x03) malformed('bad CertificateList');
  const fields = children(der, tbs);
  let i = 0;
  if (fields[i]?.tag === 0x02) i++; // version
  const sigAlg = fields[i++];
  const issuer = fields[i++];
  const thisUpdate = fields[i++];
  if (sigAlg?.tag !== 0x30 || issuer?.tag !== 0x30 || !thisUpdate) malformed('bad TBSCertList');
  const next = fields[i];
  const nextUpdate = next && (next.tag === 0x17 || next.tag === 0x18) ? decodeTime(der, next) : null;
  const algOid = children(der, alg)[0];
  if (algOid?.tag !== 0x06) malformed('bad signatureAlgorithm');
  if (der[sig.start] !== 0) malformed('signature BIT STRING has unused bits');
  return {
    tbs: der.slice(tbs.off, tbs.end),
    issuer: der.slice(issuer.off, issuer.end),
    thisUpdate: decodeTime(der, thisUpdate),
    nextUpdate,
    signatureAlgorithm: decodeOid(der.subarray(algOid.start, algOid.end)),
    signature: der.slice(sig.start + 1, sig.end),
  };
}

/** DER of a certificate's subject Name. */
export function subjectDer(cert: X509Certificate): Uint8Array {
  const der = new Uint8Array(cert.raw);
  const tbs = children(der, readTlv(der, 0))[0];
  const f = children(der, tbs);
  const off = f[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const subject = f[off + 4];
  if (subject?.tag !== 0x30) malformed('certificate without a subject');
  return der.slice(subject.off, subject.end);
}

function checkOne(crl: ParsedCrl, issuer: X509Certificate, what: string, now: Date): void {
  if (!Buffer.from(crl.issuer).equals(Buffer.from(subjectDer(issuer)))) {
    throw new FerryError(
      'ATTESTATION_CHAIN_INVALID',
      `${what} is not issued by ${issuer.subject.split('\n')[0]}`,
    );
  }
  if (crl.signatureAlgorithm !== ECDSA_SHA256) {
    throw new FerryError(
      'ATTESTATION_CHAIN_INVALID',
      `${what} signature algorithm ${crl.signatureAlgorithm} is not ecdsa-with-SHA256`,
    );
  }
  if (!cryptoVerify('sha256', crl.tbs, issuer.publicKey, crl.signature)) {
    throw new FerryError('ATTESTATION_CHAIN_INVALID', `${what} signature does not verify`);
  }
  checkCurrent(crl, what, now);
}

function checkCurrent(crl: { thisUpdate: Date; nextUpdate: Date | null }, what: string, now: Date): void {
  if (
    crl.thisUpdate.getTime() > now.getTime() ||
    (crl.nextUpdate !== null && crl.nextUpdate.getTime() < now.getTime())
  ) {
    throw new FerryError('ATTESTATION_COLLATERAL_EXPIRED', `${what} is not current at ${now.toISOString()}`, {
      hints: [
        `thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${crl.nextUpdate?.toISOString() ?? 'none'}`,
      ],
    });
  }
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function hexOrBytes(v: string | number[]): Uint8Array {
  return typeof v === 'string' ? Uint8Array.from(Buffer.from(v, 'hex')) : Uint8Array.from(v);
}

/**
 * What `checkDcapCrls` established that depends only on the bytes of the CRLs, the PCK CRL
 * issuer chain and the root: the signatures verified. Its dates are re-checked by
 * `recheckDcapCrls` at each use.
 */
export type DcapCrlFacts = {
  rootCrl: { thisUpdate: Date; nextUpdate: Date | null };
  pckCa: { validFrom: number; validTo: number; subject: string };
  pckCrl: { thisUpdate: Date; nextUpdate: Date | null };
};

/**
 * Checks the collateral's CRLs as described in the module comment. `pckLeafIssuer` is the
 * issuer (X509Certificate.issuer string) of the quote's PCK certificate, when known.
 * Throws ATTESTATION_MALFORMED, ATTESTATION_CHAIN_INVALID or ATTESTATION_COLLATERAL_EXPIRED;
 * returns the facts `recheckDcapCrls` needs to repeat the checks that depend on time and on
 * the quote without verifying a signature again.
 */
export function checkDcapCrls(
  collateral: { root_ca_crl: string | number[]; pck_crl: string | number[]; pck_crl_issuer_chain: string },
  root: X509Certificate,
  now: Date,
  pckLeafIssuer?: string,
): DcapCrlFacts {
  const rootCrl = parseCrl(hexOrBytes(collateral.root_ca_crl));
  checkOne(rootCrl, root, 'root CA CRL', now);
  const chain = (collateral.pck_crl_issuer_chain.match(PEM_RE) ?? []).map((p) => {
    try {
      return new X509Certificate(p);
    } catch (e) {
      throw new FerryError('ATTESTATION_MALFORMED', 'pck_crl_issuer_chain: a certificate does not parse', {
        cause: e,
      });
    }
  });
  const pckCa = chain[0];
  if (!pckCa) throw new FerryError('ATTESTATION_MALFORMED', 'pck_crl_issuer_chain has no certificate');
  if (!pckCa.checkIssued(root) || !pckCa.verify(root.publicKey)) {
    throw new FerryError(
      'ATTESTATION_CHAIN_INVALID',
      'the PCK CRL issuer is not signed by the Intel SGX Root CA',
    );
  }
  const ca = {
    validFrom: pckCa.validFromDate.getTime(),
    validTo: pckCa.validToDate.getTime(),
    subject: pckCa.subject,
  };
  checkPckCa(ca, now, pckLeafIssuer);
  const pckCrl = parseCrl(hexOrBytes(collateral.pck_crl));
  checkOne(pckCrl, pckCa, 'PCK CRL', now);
  const dates = (c: ParsedCrl) => ({ thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate });
  return { rootCrl: dates(rootCrl), pckCa: ca, pckCrl: dates(pckCrl) };
}

function checkPckCa(ca: DcapCrlFacts['pckCa'], now: Date, pckLeafIssuer: string | undefined): void {
  if (ca.validFrom > now.getTime() || ca.validTo < now.getTime()) {
    throw new FerryError(
      'ATTESTATION_COLLATERAL_EXPIRED',
      'the PCK CRL issuer certificate is not valid at this time',
    );
  }
  if (pckLeafIssuer !== undefined && pckLeafIssuer !== ca.subject) {
    throw new FerryError(
      'ATTESTATION_CHAIN_INVALID',
      "the PCK CRL is not from the CA that issued the quote's PCK certificate",
      {
        hints: [`PCK issuer: ${pckLeafIssuer.split('\n')[0]}`, `CRL issuer: ${ca.subject.split('\n')[0]}`],
      },
    );
  }
}

/**
 * The checks of `checkDcapCrls` that depend on `now` and on the quote (the PCK leaf's issuer),
 * in the same order and with the same errors, on facts a previous `checkDcapCrls` of the same
 * bytes returned: each CRL current, the PCK CRL issuer certificate valid, and the issuer of
 * the PCK leaf.
 */
export function recheckDcapCrls(facts: DcapCrlFacts, now: Date, pckLeafIssuer?: string): void {
  checkCurrent(facts.rootCrl, 'root CA CRL', now);
  checkPckCa(facts.pckCa, now, pckLeafIssuer);
  checkCurrent(facts.pckCrl, 'PCK CRL', now);
}
