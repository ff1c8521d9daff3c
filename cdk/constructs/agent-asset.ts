/**
 * The worker agent as one ES module file in the CDK asset bucket, bundled by the local esbuild (no Docker),
 * with an inline source map so stack traces on workers point at the TypeScript.
 */
import { dirname, join } from 'node:path';
import { AssetHashType, BundlingOutput, DockerImage, aws_s3_assets as s3assets } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import * as esbuild from 'esbuild';
import { agentEntry } from '../paths';

export const AGENT_BUNDLE_FILE = 'agent.mjs';

/** Workers reach Aurora through the Data API, so the SQLite addon is never loaded there. */
const AGENT_EXTERNAL_MODULES = ['better-sqlite3'];
const ESM_REQUIRE_SHIM = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

export class AgentAsset extends s3assets.Asset {
  constructor(scope: Construct, id: string, entry: string = agentEntry()) {
    super(scope, id, {
      path: dirname(entry),
      // Hash what is shipped, not the entry's folder: the bundle also contains core/, db/ and aws/.
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Only used if local bundling declines, which it never does: it either succeeds or throws.
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:22-alpine'),
        outputType: BundlingOutput.SINGLE_FILE,
        local: {
          tryBundle(outputDir: string): boolean {
            esbuild.buildSync({
              entryPoints: [entry],
              outfile: join(outputDir, AGENT_BUNDLE_FILE),
              bundle: true,
              platform: 'node',
              target: 'node22',
              format: 'esm',
              mainFields: ['module', 'main'],
              banner: { js: ESM_REQUIRE_SHIM },
              external: AGENT_EXTERNAL_MODULES,
              sourcemap: 'inline',
              logLevel: 'warning',
            });
            return true;
          },
        },
      },
    });
  }
}
