#!/usr/bin/env node
// The `kuroko` command. tsx is registered before the CLI is imported (a static import would be loaded
// first), so the TypeScript sources run as they are, without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
