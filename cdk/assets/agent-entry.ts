/**
 * Stand-in for the worker agent, bundled only while `agent/main.ts` does not exist. It imports nothing so
 * that a worker boots, proves the install path (Node, the asset download, systemd) and exits cleanly.
 */
console.log('kuroko agent stand-in: agent/main.ts is not built yet; nothing to run');
