import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  constants,
  createDecipheriv,
  createECDH,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { concatBytes, equalBytes, isFerryError, toHex } from '../../kernel/index.ts';
import { requireTool } from '../../../test/helpers/tools.ts';
import {
  checkActivationRecord,
  credentialFile,
  decodeActivationRecord,
  encodeActivationRecord,
  kdfa,
  kdfe,
  makeCredential,
  signActivationRecord,
} from './activation.ts';
import { parseTpm2bPublic, TpmReader } from './structures.ts';

const V = join(import.meta.dirname, '../../../test/vectors/tpm2');
const EK_POLICY = Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex');

const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const t2b = (b: Uint8Array) => concatBytes(u16(b.length), b);

/** A TPM2B_PUBLIC in the default EK template (L-1 RSA or L-2 ECC P-256) for a software key. */
function ekTpm2bPublic(pub: KeyObject): Uint8Array {
  const jwk = pub.export({ format: 'jwk' });
  const head = concatBytes(
    u16(pub.asymmetricKeyType === 'rsa' ? 0x0001 : 0x0023),
    u16(0x000b),
    new Uint8Array([0x00, 0x03, 0x00, 0xb2]),
    t2b(new Uint8Array(EK_POLICY)),
    u16(0x0006),
    u16(128),
    u16(0x0043),
    u16(0x0010),
  );
  const b = (s: string | undefined) => new Uint8Array(Buffer.from(s as string, 'base64url'));
  const body =
    pub.asymmetricKeyType === 'rsa'
      ? concatBytes(head, u16(2048), new Uint8Array(4), t2b(b(jwk.n)))
      : concatBytes(head, u16(0x0003), u16(0x0010), t2b(b(jwk.x)), t2b(b(jwk.y)));
  return t2b(body);
}

/** TPM2_ActivateCredential in software, with the EK's private key: the inverse of MakeCredential. */
function activate(ek: KeyObject, akName: Uint8Array, blob: Uint8Array, secret: Uint8Array): Uint8Array {
  const r = new TpmReader(secret, 'secret');
  const enc = r.tpm2b('secret');
  let seed: Uint8Array;
  if (ek.asymmetricKeyType === 'rsa') {
    seed = new Uint8Array(
      privateDecrypt(
        {
          key: ek,
          padding: constants.RSA_PKCS1_OAEP_PADDING,
          oaepHash: 'sha256',
          oaepLabel: Buffer.from('IDENTITY\0'),
        },
        enc,
      ),
    );
  } else {
    const p = new TpmReader(enc, 'point');
    const x = p.tpm2b('x');
    const y = p.tpm2b('y');
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(ek.export({ format: 'jwk' }).d as string, 'base64url'));
    const z = new Uint8Array(ecdh.computeSecret(concatBytes(new Uint8Array([4]), x, y)));
    const ekX = new Uint8Array(ecdh.getPublicKey().subarray(1, 33));
    seed = kdfe('sha256', z, 'IDENTITY', x, ekX, 256);
  }
  const br = new TpmReader(blob, 'blob');
  const inner = new TpmReader(br.tpm2b('idObject'), 'idObject');
  const hmac = inner.tpm2b('integrityHMAC');
  const encIdentity = inner.raw(inner.bytes.length - inner.offset, 'encIdentity');
  const hkey = kdfa('sha256', seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
  const expect = new Uint8Array(createHmac('sha256', hkey).update(encIdentity).update(akName).digest());
  if (!equalBytes(hmac, expect)) throw new Error('integrity check failed');
  const key = kdfa('sha256', seed, 'STORAGE', akName, new Uint8Array(0), 128);
  const d = createDecipheriv('aes-128-cfb', key, Buffer.alloc(16));
  const plain = new Uint8Array(Buffer.concat([d.update(encIdentity), d.final()]));
  return new TpmReader(plain, 'credential').tpm2b('credential');
}

const AK_NAME = new Uint8Array(readFileSync(join(V, 'rsa-sha256/ak.name')));

describe('MakeCredential', () => {
  for (const type of ['rsa', 'ec'] as const) {
    test(`${type}: our blob opens with the EK private key and only for the right AK name`, () => {
      const kp =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const cred = new Uint8Array(randomBytes(32));
      const m = makeCredential(kp.publicKey, AK_NAME, cred);
      assert.equal(toHex(activate(kp.privateKey, AK_NAME, m.credentialBlob, m.encryptedSecret)), toHex(cred));
      const other = AK_NAME.slice();
      other[33] ^= 1;
      assert.throws(() => activate(kp.privateKey, other, m.credentialBlob, m.encryptedSecret), /integrity/);
      // Fresh randomness every time.
      assert.notEqual(
        toHex(makeCredential(kp.publicKey, AK_NAME, cred).credentialBlob),
        toHex(m.credentialBlob),
      );
    });
    test(`${type}: tpm2_makecredential -T none output opens with our inverse (cross-check of KDFa/KDFe/CFB/HMAC)`, (t) => {
      if (!requireTool(t, 'tpm2_makecredential')) return;
      const kp =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const dir = mkdtempSync(join(tmpdir(), 'ferry-mc-'));
      try {
        const pub = ekTpm2bPublic(kp.publicKey);
        assert.ok(parseTpm2bPublic(pub).key.equals(kp.publicKey));
        const cred = new Uint8Array(randomBytes(20));
        writeFileSync(join(dir, 'ek.pub'), pub);
        writeFileSync(join(dir, 'secret'), cred);
        execFileSync(
          'tpm2_makecredential',
          [
            '-T',
            'none',
            '-u',
            join(dir, 'ek.pub'),
            '-s',
            join(dir, 'secret'),
            '-n',
            toHex(AK_NAME),
            '-o',
            join(dir, 'out'),
          ],
          { stdio: 'pipe' },
        );
        const f = new Uint8Array(readFileSync(join(dir, 'out')));
        const r = new TpmReader(f, 'file');
        assert.equal(r.u32('magic'), 0xbadcc0de);
        assert.equal(r.u32('version'), 1);
        const blobStart = r.offset;
        r.tpm2b('blob');
        const blob = f.slice(blobStart, r.offset);
        const secret = f.slice(r.offset);
        assert.equal(toHex(activate(kp.privateKey, AK_NAME, blob, secret)), toHex(cred));
        // Our file format is the same layout.
        const ours = credentialFile(makeCredential(kp.publicKey, AK_NAME, cred));
        assert.equal(toHex(ours.slice(0, 8)), 'badcc0de00000001');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
  test('bad arguments', () => {
    const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bad = (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT');
    assert.throws(() => makeCredential(kp.publicKey, new Uint8Array(2), new Uint8Array(1)), bad);
    assert.throws(() => makeCredential(kp.publicKey, AK_NAME, new Uint8Array(33)), bad);
    assert.throws(() => makeCredential(kp.publicKey, AK_NAME, new Uint8Array(0)), bad);
    const ed = generateKeyPairSync('ed25519');
    assert.throws(() => makeCredential(ed.publicKey, AK_NAME, new Uint8Array(1)), bad);
  });
});

describe('activation record', () => {
  const ek = new X509Certificate(readFileSync(join(V, 'ek-cert.der')));
  const other = new X509Certificate(readFileSync(join(V, 'ca-issuer.pem')));
  const kp = generateKeyPairSync('ed25519');
  const pub = new Uint8Array(Buffer.from(kp.publicKey.export({ format: 'jwk' }).x as string, 'base64url'));
  const rec = signActivationRecord(kp.privateKey, {
    akName: AK_NAME,
    ekCert: ek,
    activatedAt: 1_700_000_000,
  });
  test('verifies for its AK, EK certificate and activator; survives encoding', () => {
    assert.equal(checkActivationRecord(rec, AK_NAME, ek, [pub]), null);
    const back = decodeActivationRecord(encodeActivationRecord(rec));
    assert.equal(checkActivationRecord(back, AK_NAME, ek, [pub]), null);
  });
  test('fails for another AK, another EK, an untrusted activator, a changed field', () => {
    const n = AK_NAME.slice();
    n[5] ^= 1;
    assert.match(checkActivationRecord(rec, n, ek, [pub]) ?? '', /not this AK/);
    assert.match(checkActivationRecord(rec, AK_NAME, other, [pub]) ?? '', /different EK/);
    assert.match(checkActivationRecord(rec, AK_NAME, ek, [new Uint8Array(32)]) ?? '', /not trusted/);
    assert.match(
      checkActivationRecord({ ...rec, activatedAt: 1 }, AK_NAME, ek, [pub]) ?? '',
      /does not verify/,
    );
    const sig = rec.signature.slice();
    sig[0] ^= 1;
    assert.match(
      checkActivationRecord({ ...rec, signature: sig }, AK_NAME, ek, [pub]) ?? '',
      /does not verify/,
    );
  });
  test('malformed encodings and bad keys are refused', () => {
    assert.throws(
      () => decodeActivationRecord(new Uint8Array([0xa0])),
      (e) => isFerryError(e, 'ATTESTATION_MALFORMED'),
    );
    assert.throws(
      () =>
        signActivationRecord(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, {
          akName: AK_NAME,
          ekCert: ek,
          activatedAt: 1,
        }),
      (e) => isFerryError(e, 'INVALID_ARGUMENT'),
    );
  });
});
