/**
 * A failed worker boot leaves a trace: the user data's exit trap ships the tail of cloud-init's output to the boot
 * log group, one stream per instance, whether the script succeeded or stopped at a failing command. The trap is run
 * here by bash as rendered, with `aws` and `cloud-init` replaced by stubs that record what they were asked.
 *
 * - cloud-init writes the user data's output to /var/log/cloud-init-output.log
 *   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html: "The cloud-init output log file captures console output")
 * - one PutLogEvents event is at most 256 KB
 *   (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html)
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BOOT_LOG_TAIL_BYTES, CLOUD_INIT_OUTPUT } from '../cdk/constructs/worker-queue';
import { iamStatements } from './helpers/iam-statements';
import { jsonOf } from './helpers/cross-stack';
import { logicalId, synthKuroko } from './helpers/synth-app';

const run = promisify(execFile);
const built = synthKuroko();
const { workers } = built;
const resources = jsonOf(built.templates.workers).Resources ?? {};
const bootGroupId = logicalId(workers, workers.bootLogGroup);
const PUT_LOG_EVENT_MAX_BYTES = 256 * 1024;

/** The rendered user data with its tokens replaced: the boot log group's name and the region. */
function scriptOf(queueIndex: number): string {
  const data = resources[logicalId(workers, workers.queues[queueIndex]!.launchTemplate)]?.Properties?.['LaunchTemplateData'] as { UserData: { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } } };
  return data.UserData['Fn::Base64']['Fn::Join'][1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const json = JSON.stringify(part);
      if (json === JSON.stringify({ Ref: bootGroupId })) return 'kuroko-boot-logs';
      if (json === JSON.stringify({ Ref: 'AWS::Region' })) return 'us-east-1';
      return 'TOKEN';
    })
    .join('');
}

describe('worker boot log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-boot-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ships the tail of cloud-init output under the instance id when the user data fails, and keeps the failure', async () => {
    const script = scriptOf(0);
    // Everything up to the script proper, then a command that fails as `dnf install` would without a network.
    const header = script.slice(0, script.indexOf('set -euo pipefail\n'));
    const output = join(dir, 'cloud-init-output.log');
    const events = join(dir, 'events.json');
    writeFileSync(output, `${'x'.repeat(BOOT_LOG_TAIL_BYTES)}\nError: Failed to download metadata for repo 'amazonlinux'\n`);
    for (const [name, body] of [
      ['aws', `#!/bin/bash\necho "$*" >> ${join(dir, 'aws-calls')}\nfor a in "$@"; do case "$a" in file://*) cp "\${a#file://}" ${events};; esac; done\n`],
      ['cloud-init', '#!/bin/bash\necho i-0123456789abcdef0\n'],
    ] as const) {
      writeFileSync(join(dir, name), body);
      chmodSync(join(dir, name), 0o755);
    }
    const test = `${header.replaceAll(CLOUD_INIT_OUTPUT, output).replaceAll('/run/', `${dir}/`)}set -euo pipefail\nfalse\necho never\n`;
    writeFileSync(join(dir, 'user-data.sh'), test);
    const result = await run('bash', [join(dir, 'user-data.sh')], { env: { PATH: `${dir}:${process.env.PATH ?? ''}` } }).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => error,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('kuroko worker boot: user data exited with status 1');
    const calls = readFileSync(join(dir, 'aws-calls'), 'utf8');
    expect(calls).toContain('logs --region us-east-1 create-log-stream --log-group-name kuroko-boot-logs --log-stream-name i-0123456789abcdef0');
    expect(calls).toContain('logs --region us-east-1 put-log-events --log-group-name kuroko-boot-logs --log-stream-name i-0123456789abcdef0');
    const [event] = JSON.parse(readFileSync(events, 'utf8')) as { timestamp: number; message: string }[];
    expect(event!.message.endsWith("Error: Failed to download metadata for repo 'amazonlinux'\n")).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThan(PUT_LOG_EVENT_MAX_BYTES);
    expect(Math.abs(event!.timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('lets each worker role write only to the boot log group (and the execution log group)', () => {
    for (const queue of workers.queues) {
      const logs = iamStatements(built.templates.workers).filter((s) => s.roles.includes(logicalId(workers, queue.role)) && s.actions.includes('logs:PutLogEvents'));
      expect(logs.flatMap((s) => s.resources)).toContainEqual({ 'Fn::GetAtt': [bootGroupId, 'Arn'] });
      expect(logs).toHaveLength(2);
    }
    const group = resources[bootGroupId];
    expect(group?.Properties?.['RetentionInDays']).toBe(30);
  });
});
