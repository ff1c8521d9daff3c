// The Node.js check bin/kuroko.js runs before it loads anything else. Plain JavaScript in the oldest syntax
// still in use (no optional chaining, no top-level await), so an old Node.js reaches this check and prints
// its answer instead of failing to parse the CLI.

/** The oldest Node.js major version kuroko supports (package.json's engines.node). */
export const MINIMUM_NODE_MAJOR = 20;

/**
 * Returns the two lines to print when `version` (like process.version, 'v18.19.0') is older than the supported
 * version, or undefined when it is supported.
 */
export function nodeVersionProblem(version) {
  const match = /^v?(\d+)\./.exec(String(version));
  const major = match ? Number(match[1]) : NaN;
  if (major >= MINIMUM_NODE_MAJOR) return undefined;
  return (
    'kuroko: Node.js ' + version + ' is too old: kuroko needs Node.js ' + MINIMUM_NODE_MAJOR + ' or later.\n' +
    '  fix: install Node.js ' + MINIMUM_NODE_MAJOR + ' or later (https://nodejs.org/, or your version manager: nvm install ' + MINIMUM_NODE_MAJOR + '), then run kuroko again\n'
  );
}
