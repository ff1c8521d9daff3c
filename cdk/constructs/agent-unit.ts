/**
 * What the EC2 agent's systemd unit (worker-queue.ts) does that the chaos harness imitates, in a module without
 * aws-cdk-lib so that bench/chaos/ can import it without loading the CDK.
 */

/** `RestartSec=` of the agent's unit, which has `Restart=on-failure`: an agent that fails comes back after this. */
export const AGENT_RESTART_SECONDS = 5;
