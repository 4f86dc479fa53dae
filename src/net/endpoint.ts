/**
 * Peer endpoints that come from the chain or from another party (docs/protocol.md §13.1):
 * parsed strictly and checked against the destinations a daemon may call, so that nobody can
 * point a daemon at a service behind its firewall (SSRF).
 *
 * An endpoint is `http://HOST[:PORT]` with an optional trailing `/` and nothing else: no
 * userinfo, no other path, no query, no fragment. Unless the daemon is configured for a local
 * network (`localNetwork`, set by the devnet), its destination must be a public unicast
 * address: loopback, unspecified, RFC 1918 and carrier-grade NAT, link-local, unique-local
 * IPv6, multicast, reserved and documentation ranges are refused, for IP literals here and for
 * names when they are resolved (`guardedLookup`): the check runs inside the lookup that the
 * connection then uses, so a name cannot resolve to one address for the check and another for
 * the connect (DNS rebinding).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { FerryError } from '../kernel/index.ts';

export type EndpointPolicy = {
  /** Allow loopback, private and link-local destinations (development networks). */
  localNetwork: boolean;
};

const NON_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

function embeddedIpv4(address: string): string | null {
  // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64); also in hex form.
  const m = /^(?:::ffff:|::|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(
    address,
  );
  if (!m) return null;
  if (m[1]) return m[1];
  const hi = Number.parseInt(m[2], 16);
  const lo = Number.parseInt(m[3], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an IP address (v4 or v6, no brackets) is a public unicast destination. */
export function isPublicAddress(address: string): boolean {
  const kind = isIP(address);
  if (kind === 4) return !NON_PUBLIC.check(address, 'ipv4');
  if (kind === 6) {
    const v4 = embeddedIpv4(address.toLowerCase());
    if (v4 !== null && isIP(v4) === 4) return !NON_PUBLIC.check(v4, 'ipv4');
    return !NON_PUBLIC.check(address, 'ipv6');
  }
  return false;
}

function refused(message: string, text: string, hint?: string): FerryError {
  return new FerryError('PEER_ENDPOINT_REFUSED', message, {
    hints: [`got: ${text.slice(0, 200)}`, ...(hint ? [hint] : [])],
  });
}

const LOCAL_HINT = 'a daemon on a local (development) network needs --local-network / FERRY_LOCAL_NETWORK=1';

/**
 * Parses a peer endpoint strictly and returns its origin (`http://host:port`, no trailing
 * slash). PEER_ENDPOINT_REFUSED for anything else, and, without `localNetwork`, for an IP
 * literal that is not a public destination (names are checked when resolved: guardedLookup).
 */
export function parseEndpoint(text: string, policy: EndpointPolicy): string {
  if (typeof text !== 'string' || text.length === 0 || text.length > 2048) {
    throw refused('endpoint is not a URL', String(text));
  }
  // Checked on the text: URL parsing drops an empty `?` or `#`.
  if (/[?#\\\s]/.test(text)) {
    throw refused('endpoint must be http://host[:port] (no query or fragment)', text);
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw refused('endpoint is not a URL', text);
  }
  if (u.protocol !== 'http:') throw refused('endpoint must use http://', text);
  if (u.username !== '' || u.password !== '' || /^http:\/\/[^/]*@/i.test(text)) {
    throw refused('endpoint must not carry user information', text);
  }
  if (u.pathname !== '/' && u.pathname !== '') {
    throw refused('endpoint must be http://host[:port] (no path)', text);
  }
  if (u.hostname === '') throw refused('endpoint has no host', text);
  if (!policy.localNetwork) {
    // IP literals here (URL parsing has normalised 2130706433, 0x7f000001, …); names when the
    // connection resolves them (guardedLookup).
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0 && !isPublicAddress(host)) {
      throw refused('endpoint is not a public address', text, LOCAL_HINT);
    }
  }
  return u.origin;
}

/** The error code a refused lookup carries on its way through node:http. */
export const REFUSED_LOOKUP = 'EFERRY_ENDPOINT_REFUSED';

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for node:http / node:net that resolves once, refuses (error code REFUSED_LOOKUP)
 * when any resolved address is not public (unless `localNetwork`), and hands exactly the
 * checked addresses to the connect.
 */
export function guardedLookup(policy: EndpointPolicy) {
  return (
    hostname: string,
    options: { family?: number; all?: boolean; hints?: number },
    cb: LookupCallback,
  ) => {
    dnsLookup(hostname, { family: options.family ?? 0, hints: options.hints, all: true }, (err, addrs) => {
      if (err) {
        cb(err, []);
        return;
      }
      const list = addrs as LookupAddress[];
      if (!policy.localNetwork && (list.length === 0 || list.some((a) => !isPublicAddress(a.address)))) {
        cb(
          Object.assign(new Error(`${hostname} resolves to a non-public address`), { code: REFUSED_LOOKUP }),
          [],
        );
        return;
      }
      if (options.all) cb(null, list);
      else cb(null, list[0].address, list[0].family);
    });
  };
}
