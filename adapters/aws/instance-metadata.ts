/**
 * The EC2 instance's own id, from the instance metadata service (IMDSv2: a session token first, then the read;
 * the launch template requires v2 and a hop limit of 1).
 *
 * Over node:http, which the AWS SDK loads anyway, not fetch: the agent's one fetch would load undici and compile
 * its WebAssembly HTTP parser, which stays in the agent's memory for its whole life.
 */
import { request, type OutgoingHttpHeaders } from 'node:http';
import { ExternalServiceError, errorMessage } from '../../core/errors';

export const IMDS_ENDPOINT = 'http://169.254.169.254';
const TOKEN_TTL_SECONDS = 60;
const DEFAULT_TIMEOUT_MS = 2_000;
const HTTP_OK_MIN = 200;
const HTTP_OK_MAX = 299;

export interface InstanceMetadataOptions {
  endpoint?: string;
  timeoutMs?: number;
}

/** One request to the metadata service: the body text of a 2xx answer, within `timeoutMs` in all. */
function imdsRequest(url: string, method: 'GET' | 'PUT', headers: OutgoingHttpHeaders, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // agent: false: a connection of its own, closed after the answer, so no socket outlives the read.
    const req = request(url, { method, headers, agent: false, signal: AbortSignal.timeout(timeoutMs) }, (response) => {
      const status = response.statusCode ?? 0;
      if (status < HTTP_OK_MIN || status > HTTP_OK_MAX) {
        response.resume();
        reject(new Error(`${what} request answered ${status}`));
        return;
      }
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Reads the instance id; ExternalServiceError when not on EC2 or the service does not answer. */
export async function fetchInstanceId(options: InstanceMetadataOptions = {}): Promise<string> {
  const endpoint = options.endpoint ?? IMDS_ENDPOINT;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const token = await imdsRequest(`${endpoint}/latest/api/token`, 'PUT', { 'X-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) }, timeoutMs, 'token');
    const id = await imdsRequest(`${endpoint}/latest/meta-data/instance-id`, 'GET', { 'X-aws-ec2-metadata-token': token }, timeoutMs, 'instance-id');
    return id.trim();
  } catch (error) {
    throw new ExternalServiceError('imds', `cannot read the instance id: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
