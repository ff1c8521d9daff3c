/**
 * The EC2 instance's own id, from the instance metadata service (IMDSv2: a session token first, then the read;
 * the launch template requires v2 and a hop limit of 1).
 */
import { ExternalServiceError, errorMessage } from '../core/errors';

export const IMDS_ENDPOINT = 'http://169.254.169.254';
const TOKEN_TTL_SECONDS = 60;
const DEFAULT_TIMEOUT_MS = 2_000;

export interface InstanceMetadataOptions {
  endpoint?: string;
  timeoutMs?: number;
}

/** Reads the instance id; ExternalServiceError when not on EC2 or the service does not answer. */
export async function fetchInstanceId(options: InstanceMetadataOptions = {}): Promise<string> {
  const endpoint = options.endpoint ?? IMDS_ENDPOINT;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const tokenResponse = await fetch(`${endpoint}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!tokenResponse.ok) throw new Error(`token request answered ${tokenResponse.status}`);
    const token = await tokenResponse.text();
    const idResponse = await fetch(`${endpoint}/latest/meta-data/instance-id`, {
      headers: { 'X-aws-ec2-metadata-token': token },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!idResponse.ok) throw new Error(`instance-id request answered ${idResponse.status}`);
    return (await idResponse.text()).trim();
  } catch (error) {
    throw new ExternalServiceError('imds', `cannot read the instance id: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
