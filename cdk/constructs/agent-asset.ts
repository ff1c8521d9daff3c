/**
 * The worker agent as one ES module file in the CDK asset bucket, bundled by the local esbuild (no Docker) with
 * the options `npm run build:agent` uses (scripts/agent-bundle.ts): minified with names kept, and no inline
 * source map, which V8 would hold in memory for the agent's whole life.
 */
import { dirname, join } from 'node:path';
import { AssetHashType, BundlingOutput, DockerImage, aws_s3_assets as s3assets } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import * as esbuild from 'esbuild';
import { ec2AgentBuildOptions } from '../../scripts/agent-bundle';
import { agentEntry } from '../paths';

export const AGENT_BUNDLE_FILE = 'agent.mjs';

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
            esbuild.buildSync(ec2AgentBuildOptions(entry, join(outputDir, AGENT_BUNDLE_FILE)));
            return true;
          },
        },
      },
    });
  }
}
