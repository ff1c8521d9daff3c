/** The operator commands' help, arguments and connection settings, without a server. */
import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import { connect, describeApiError, UsageError } from '../../cli/ops/ops-client';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

describe('operator commands without a server', () => {
  it('each has help, listed by kuroko --help', async () => {
    const list = await run(['--help']);
    for (const name of ['launch', 'instances', 'logs', 'retry', 'skip', 'cancel', 'definitions']) {
      expect(list.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
      const help = await run([name, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^usage: kuroko ${name} `));
      expect(help.stdout).toContain('--url URL');
    }
  });

  it('refuses bad arguments with exit 2 before asking anything', async () => {
    const env = { url: 'http://127.0.0.1:1', client: 'a:b' };
    expect(await run(['launch'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^kuroko launch: give one job definition/) });
    expect(await run(['launch', 'x', '--bogus', '--url', env.url])).toMatchObject({ code: 2, stderr: expect.stringMatching(/unknown option --bogus/) });
    expect(await run(['instances', '--status', 'done'])).toMatchObject({ code: 2 });
    expect(await run(['retry', '12', 'abc', '--url', env.url, '--client', env.client])).toMatchObject({ code: 2, stderr: expect.stringMatching(/TOKEN must be a token id/) });
    expect(await run(['cancel', 'latest', '--url', env.url, '--client', env.client])).toMatchObject({ code: 2, stderr: expect.stringMatching(/INSTANCE must be an instance id/) });
    expect(await run(['definitions', 'sync', 'dir'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/give export DIR or apply DIR/) });
    expect(await run(['definitions', 'export', 'dir', '--prune'])).toMatchObject({ code: 2 });
  });

  it('takes the connection from options first, then KUROKO_URL and KUROKO_CLIENT', () => {
    const env = { KUROKO_URL: 'http://env:3000/', KUROKO_CLIENT: 'env-client:env:secret' };
    expect(connect({ url: undefined, client: undefined }, env)).toMatchObject({ url: 'http://env:3000', clientName: 'env-client' });
    expect(connect({ url: 'https://opt', client: 'opt:s' }, env)).toMatchObject({ url: 'https://opt', clientName: 'opt' });
    expect(() => connect({ url: undefined, client: undefined }, {})).toThrow(UsageError);
    expect(() => connect({ url: 'ftp://x', client: 'a:b' }, {})).toThrow(/not an http\(s\) URL/);
    expect(() => connect({ url: 'http://x', client: 'nosecret' }, {})).toThrow(/NAME:SECRET/);
  });

  it('describes every error body: status, code, message, each problem with its place', () => {
    expect(
      describeApiError(
        422,
        {
          status_code: 422,
          error_code: 'unprocessable_entity',
          message: 'two problems',
          errors: [
            { field: 'script', line: 3, column: 5, message: 'bogus: unknown node' },
            { field: 'cron', message: 'bad' },
          ],
        },
        'creating x',
      ),
    ).toBe('creating x: 422 unprocessable_entity: two problems\n  script:3:5: bogus: unknown node\n  cron: bad');
    expect(describeApiError(502, '<html>bad gateway</html>', 'listing definitions')).toBe('listing definitions: HTTP 502: <html>bad gateway</html>');
  });
});
