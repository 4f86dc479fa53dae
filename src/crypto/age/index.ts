/**
 * age v1 (C2SP age spec): encryption at rest and of results in Ferry. Binary and armored
 * files, X25519 and scrypt stanzas, STREAM payload on native ChaCha20-Poly1305, whole-buffer
 * and constant-memory streaming APIs. See docs/protocol.md section 5.
 */
export { ARMOR_BEGIN, ARMOR_END, ArmorDecoder, ArmorEncoder, armor, dearmor } from './armor.ts';
export { bech32Decode, bech32Encode } from './bech32.ts';
export { createDecryptStream, Decryptor, decrypt, readFileKey } from './decrypt.ts';
export { ciphertextSize, createEncryptStream, type EncryptStreamOptions, encrypt } from './encrypt.ts';
export { encodeHeader, type Header, HeaderParser, parseHeader, type Stanza } from './format.ts';
export { HybridIdentity, HybridRecipient } from './hybrid.ts';
export { parseIdentity, parseIdentityFile, parseRecipient, parseRecipientsFile } from './keys.ts';
export {
  type ByteSink,
  type ByteSource,
  type DecryptParallelOptions,
  decryptParallel,
  type EncryptParallelOptions,
  encryptParallel,
  fileSource,
  iterableSource,
  type ParallelOptions,
} from './parallel.ts';
export { FILE_KEY_SIZE, FileKeyIdentity, type Identity, type Recipient } from './recipients.ts';
export {
  DEFAULT_SCRYPT_WORK_FACTOR,
  MAX_SCRYPT_WORK_FACTOR,
  ScryptIdentity,
  ScryptRecipient,
} from './scrypt.ts';
export { CHUNK_SIZE, PayloadDecryptor, PayloadEncryptor } from './stream.ts';
export { generateX25519Identity, X25519Identity, X25519Recipient } from './x25519.ts';
