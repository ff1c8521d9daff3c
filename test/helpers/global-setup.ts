/** Vitest global setup: nothing shared yet; database tests create their own databases. */
export default function setup(): void {}
