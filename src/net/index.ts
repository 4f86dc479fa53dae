export {
  type PeerClientOptions,
  type CallOptions,
  createPeerClient,
  PeerClient,
  type StreamResponse,
  MIN_READ_RATE_BYTES_PER_S,
} from './client.ts';
export {
  type EndpointPolicy,
  guardedLookup,
  isPublicAddress,
  parseEndpoint,
  REFUSED_LOOKUP,
} from './endpoint.ts';
export { Ed25519Signer, type RequestSigner, verifyEd25519 } from './ed25519.ts';
export {
  authenticateRequest,
  DEFAULT_FRESHNESS_MS,
  envelopeBytes,
  HEADER_KEY,
  HEADER_NONCE,
  HEADER_SIGNATURE,
  HEADER_TIMESTAMP,
  NONCE_BYTES,
  REQUEST_TAG,
  type RequestEnvelope,
  ReplayCache,
  recordNonce,
  sha256,
  signRequest,
  type VerifiedCaller,
  type VerifyRequestOptions,
  verifyRequest,
} from './envelope.ts';
export { type RateLimit, RateLimiter } from './limits.ts';
export { type ByteRange, formatRange, parseContentRange, parseRange } from './range.ts';
export {
  createHttpServer,
  HTTP_LIMITS,
  type HttpMethod,
  HttpServer,
  type HttpServerOptions,
  parseJsonBody,
  type Route,
  type RouteRequest,
  type RouteResponse,
  startRemembering,
  statusForCode,
} from './server.ts';
