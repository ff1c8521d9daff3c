/**
 * Issue 13 on EC2: job commands run as an unprivileged user that can read neither the agent's configuration nor its
 * credentials, and cannot reach the instance metadata service (so cannot take the worker role's credentials).
 *
 * These assertions read the launch template's user data. The firewall itself cannot run here (no EC2 metadata
 * service, and nftables would change this machine's own firewall): the user data checks it at boot instead, as the
 * job user, and stops before the agent starts if the metadata service still answers.
 *
 * The owner match is the EC2 guide's own recipe ("Limit access to the instance metadata service":
 * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html#instance-metadata-limiting-access,
 * iptables `--match owner --uid-owner ... --jump REJECT` to 169.254.169.254), written for nftables, which AL2023 uses,
 * and extended to the IPv6 endpoint fd00:ec2::254.
 */
import { describe, expect, it } from 'vitest';
import { JOB_USER, imdsFirewallRules } from '../cdk/constructs/worker-isolation';
import { TEST_EMAIL, joinedText, logicalId, synthKuroko } from './helpers/synth-app';

const built = synthKuroko({ alertEmail: TEST_EMAIL });
const resources = (built.templates.workers.toJSON() as { Resources: Record<string, { Properties: Record<string, unknown> }> }).Resources;
const queue = built.workers.queues[0]!;
const userData = (resources[logicalId(built.workers, queue.launchTemplate)]!.Properties['LaunchTemplateData'] as { UserData: unknown }).UserData;
const script = joinedText(userData);
const heredoc = (marker: string): string => {
  const start = script.indexOf(`<<'${marker}'\n`);
  if (start < 0) throw new Error(`no ${marker} here-document in the user data`);
  const body = script.slice(start + marker.length + 5);
  return body.slice(0, body.indexOf(`\n${marker}\n`));
};
const lineIndex = (text: string): number => {
  const i = script.indexOf(text);
  if (i < 0) throw new Error(`the user data lacks ${text}`);
  return i;
};

describe('worker isolation: the job user', () => {
  it('creates the unprivileged job user, and the agent starts each command as it', () => {
    expect(JOB_USER).toBe('kuroko-job');
    expect(script).toContain('id -u kuroko-job >/dev/null 2>&1 || useradd --create-home --user-group --shell /bin/bash kuroko-job');
    expect(heredoc('UNIT')).toMatch(/^ExecStart=\/usr\/bin\/node-22 .* \/opt\/kuroko\/agent\.mjs --run-as kuroko-job$/m);
    // The agent runs as root to switch users; it is the only process that may (no sudo rule for the job user).
    expect(heredoc('UNIT')).toContain('\nUser=root\n');
    expect(script).not.toMatch(/sudoers/);
  });
});

describe('worker isolation: the agent\'s configuration and code are root\'s alone', () => {
  it('writes the agent environment (its SSM parameter, region) to a 0600 file in a 0700 folder, not into the world-readable unit', () => {
    expect(lineIndex('umask 077')).toBeLessThan(lineIndex("cat > /etc/kuroko/agent.env <<'ENV'"));
    expect(script).toContain('install -d -m 0700 -o root -g root /etc/kuroko');
    expect(script).toContain('chmod 0600 /etc/kuroko/agent.env');
    expect(heredoc('ENV')).toMatch(/^KUROKO_AGENT_CONFIG_PARAMETER=<token>$/m);
    const unit = heredoc('UNIT');
    expect(unit).toContain('EnvironmentFile=/etc/kuroko/agent.env');
    expect(unit).not.toMatch(/^Environment=/m);
  });

  it('keeps the agent bundle and its state 0600/0700', () => {
    expect(script).toContain('install -d -m 0700 -o root -g root /opt/kuroko');
    expect(script).toContain('chmod 0600 /opt/kuroko/agent.mjs /opt/kuroko/agent-ec2.mjs');
    expect(heredoc('UNIT')).toContain('StateDirectoryMode=0700\nWorkingDirectory=/var/lib/kuroko');
  });
});

describe('worker isolation: no metadata service for the job user', () => {
  it('rejects the job user\'s packets to the IPv4 and IPv6 metadata addresses by socket owner', () => {
    const rules = heredoc('NFT');
    expect(rules).toBe(imdsFirewallRules().join('\n'));
    expect(rules).toContain('meta skuid "kuroko-job" ip daddr 169.254.169.254 reject');
    expect(rules).toContain('meta skuid "kuroko-job" ip6 daddr fd00:ec2::254 reject');
    expect(rules).toContain('type filter hook output priority 0; policy accept;');
    // Loading the file again (a restart of its unit) replaces the table instead of adding the rules twice.
    expect(rules.split('\n').slice(0, 2)).toEqual(['table inet kuroko_job', 'delete table inet kuroko_job']);
    expect(script).toContain('/etc/kuroko/job-imds-block.nft');
  });

  it('loads the rules at every boot before the agent, which does not start without them', () => {
    const firewall = heredoc('FIREWALL');
    expect(firewall).toContain('ExecStart=/usr/sbin/nft -f /etc/kuroko/job-imds-block.nft');
    expect(firewall).toContain('Type=oneshot\nRemainAfterExit=yes');
    expect(firewall).toContain('WantedBy=multi-user.target');
    const unit = heredoc('UNIT');
    expect(unit).toContain('Requires=kuroko-job-firewall.service');
    expect(unit).toMatch(/^After=.*kuroko-job-firewall\.service/m);
    expect(lineIndex('systemctl enable --now kuroko-job-firewall.service')).toBeLessThan(lineIndex('systemctl enable --now kuroko-agent.service'));
  });

  it('stops the boot before the agent starts if the job user still reaches the metadata service', () => {
    const probe = 'if runuser -u kuroko-job -- curl -s -m 3 -o /dev/null http://169.254.169.254/; then echo "kuroko-job can reach the instance metadata service" >&2; exit 1; fi';
    expect(script).toMatch(/^set -euo pipefail$/m);
    expect(lineIndex(probe)).toBeGreaterThan(lineIndex('systemctl enable --now kuroko-job-firewall.service'));
    expect(lineIndex(probe)).toBeLessThan(lineIndex('systemctl enable --now kuroko-agent.service'));
  });
});
