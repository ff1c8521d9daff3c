#!/usr/bin/env node
// The `kuroko` command. The Node.js version is checked before anything else loads (an old Node.js would fail
// inside tsx or a dependency with an obscure error). tsx is registered before the CLI is imported (a static
// import would be loaded first), so the TypeScript sources run as they are, without a build step.
import { nodeVersionProblem } from './node-version.js';

/** How long a failed command may take to close what it opened before it is made to exit. */
const EXIT_GRACE_MS = 2000;

const problem = nodeVersionProblem(process.version);
if (problem) {
  process.stderr.write(problem);
  process.exit(1);
}

import('tsx/esm/api')
  .then(function (tsx) {
    tsx.register();
    return import('../cli/main.ts');
  })
  .then(function (cli) {
    const argv = process.argv.slice(2);
    // An error thrown after start-up (outside any command's own handling) gets the same one-line treatment.
    const fatal = (error) => {
      cli.reportFatal(error, argv);
      process.exit(1);
    };
    process.on('uncaughtException', fatal);
    process.on('unhandledRejection', fatal);
    return cli.main(argv).then(function (code) {
      process.exitCode = code;
      // A command that failed has said why; whatever it left open (a pool, a timer) must not keep it running.
      if (code !== 0) globalThis.setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    });
  });
