/**
 * Where a definition's webhook may post. The URL is chosen by whoever edits the definition, and the notifier runs
 * next to credentials: on EC2 and in Lambda the instance metadata service (169.254.169.254, fd00:ec2::254) and
 * other link-local addresses hand them out. So the host is resolved and every address it resolves to is checked
 * before the request; link-local, metadata and unspecified addresses are refused unless the deployment allows them
 * (KUROKO_WEBHOOK_ALLOW_LINK_LOCAL=true). Loopback and private addresses stay allowed: internal receivers are the
 * common case. Open: a DNS answer that changes between this check and the connection (docs/security.md).
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Link-local, cloud metadata and "this host" addresses (IPv4-mapped IPv6 forms match the IPv4 rules). */
function refusedAddresses(): BlockList {
  const list = new BlockList();
  list.addSubnet('169.254.0.0', 16, 'ipv4'); // IPv4 link-local, EC2/ECS/GCP/Azure metadata at 169.254.169.254
  list.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network": 0.0.0.0 reaches the local host
  list.addAddress('100.100.100.200', 'ipv4'); // Alibaba Cloud metadata
  list.addSubnet('fe80::', 10, 'ipv6'); // IPv6 link-local
  list.addAddress('fd00:ec2::254', 'ipv6'); // EC2 metadata over IPv6
  list.addAddress('::', 'ipv6');
  return list;
}

const REFUSED = refusedAddresses();

/** The addresses a host name resolves to; injectable so tests can point a name anywhere. */
export type HostResolver = (host: string) => Promise<string[]>;

const systemResolver: HostResolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** True when `address` is link-local, a metadata service or unspecified. */
export function isRefusedWebhookAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return REFUSED.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/** Throws unless every address of the URL's host may receive a webhook. */
export async function assertWebhookTarget(url: string, resolve: HostResolver = systemResolver): Promise<void> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the webhook URL is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`the webhook URL must be http(s), not ${parsed.protocol}`);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = isIP(host) ? [host] : await resolve(host);
  const refused = addresses.filter(isRefusedWebhookAddress);
  if (addresses.length === 0 || refused.length > 0) {
    throw new Error(`the webhook host ${parsed.hostname} resolves to ${refused.join(', ') || 'nothing'}: link-local and metadata addresses are refused (KUROKO_WEBHOOK_ALLOW_LINK_LOCAL allows them)`);
  }
}
