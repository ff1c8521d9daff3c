/**
 * What keeps a job command on a worker from holding the agent's privileges (issue 13, invariant 7): commands run as
 * JOB_USER (the agent, root, starts them with `--run-as`), which
 * - cannot read the agent's configuration, code or state (root-owned, 0600 files in 0700 folders), and
 * - cannot reach the instance metadata service, so it cannot take the worker role's credentials: an nftables rule
 *   by socket owner rejects its packets to 169.254.169.254 and fd00:ec2::254. IMDSv2 and a hop limit of 1 stop
 *   containers and forwarded requests, not a local process; this rule does (the EC2 guide's "limit access to the
 *   instance metadata service" uses the same owner match with iptables).
 * The rule is loaded by its own unit, which the agent's unit requires: no agent runs while the rule is missing, after
 * a reboot too. User data checks once, as the job user, that the metadata service does not answer.
 */
export const JOB_USER = 'kuroko-job';
export const AGENT_CONFIG_DIR = '/etc/kuroko';
export const AGENT_ENV_FILE = `${AGENT_CONFIG_DIR}/agent.env`;
export const IMDS_FIREWALL_FILE = `${AGENT_CONFIG_DIR}/job-imds-block.nft`;
export const IMDS_FIREWALL_SERVICE = 'kuroko-job-firewall.service';
/** The instance metadata service's IPv4 and IPv6 (Nitro) addresses. */
export const IMDS_ADDRESSES = { ipv4: '169.254.169.254', ipv6: 'fd00:ec2::254' } as const;
const NFT_TABLE = 'inet kuroko_job';
const IMDS_PROBE_SECONDS = 3;

/**
 * The ruleset: one table in the inet family (IPv4 and IPv6 alike). Declaring, deleting, then defining the table
 * makes loading it twice harmless (nft applies a file atomically).
 */
export function imdsFirewallRules(): string[] {
  return [
    `table ${NFT_TABLE}`,
    `delete table ${NFT_TABLE}`,
    `table ${NFT_TABLE} {`,
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    `    meta skuid "${JOB_USER}" ip daddr ${IMDS_ADDRESSES.ipv4} reject`,
    `    meta skuid "${JOB_USER}" ip6 daddr ${IMDS_ADDRESSES.ipv6} reject`,
    '  }',
    '}',
  ];
}

/** The oneshot unit that loads the ruleset at every boot, before the agent (which requires it). */
function firewallUnit(): string[] {
  return [
    '[Unit]',
    `Description=Kuroko: keep ${JOB_USER} away from the instance metadata service`,
    'Before=network-pre.target kuroko-agent.service',
    'Wants=network-pre.target',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=/usr/sbin/nft -f ${IMDS_FIREWALL_FILE}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}

/**
 * User-data commands, run as root before the agent is installed: the job user, the firewall (loaded, enabled and
 * checked), and the agent's private configuration folder. `umask 077` makes every file written after it 0600.
 */
export function workerIsolationCommands(): string[] {
  return [
    `id -u ${JOB_USER} >/dev/null 2>&1 || useradd --create-home --user-group --shell /bin/bash ${JOB_USER}`,
    'umask 077',
    `install -d -m 0700 -o root -g root ${AGENT_CONFIG_DIR}`,
    `cat > ${IMDS_FIREWALL_FILE} <<'NFT'`,
    ...imdsFirewallRules(),
    'NFT',
    `cat > /etc/systemd/system/${IMDS_FIREWALL_SERVICE} <<'FIREWALL'`,
    ...firewallUnit(),
    'FIREWALL',
    `chmod 0644 /etc/systemd/system/${IMDS_FIREWALL_SERVICE}`,
    'systemctl daemon-reload',
    `systemctl enable --now ${IMDS_FIREWALL_SERVICE}`,
    // Fail closed: if the job user still reaches the metadata service, stop here and never start the agent.
    `if runuser -u ${JOB_USER} -- curl -s -m ${IMDS_PROBE_SECONDS} -o /dev/null http://${IMDS_ADDRESSES.ipv4}/; then echo "${JOB_USER} can reach the instance metadata service" >&2; exit 1; fi`,
  ];
}
