/**
 * The worker agent in the CDK asset bucket, bundled by the local esbuild (no Docker) with the options
 * `npm run build:agent` uses (scripts/agent-bundle.ts): minified with names kept, and no inline source map, which
 * V8 would hold in memory for the agent's whole life. Two single-file assets, installed side by side: the agent
 * (`agent.mjs`, this asset) and the EC2 client it loads only to terminate its instance (`agent-ec2.mjs`,
 * `ec2FleetAsset`), kept out of the agent's file so that its code does not sit in the agent's memory.
 */
import { dirname, join } from 'node:path';
import { AssetHashType, BundlingOutput, DockerImage, aws_s3_assets as s3assets } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import * as esbuild from 'esbuild';
import { EC2_FLEET_FILE, ec2AgentBuildOptions, ec2FleetBuildOptions } from '../../scripts/agent-bundle';
import { agentEntry } from '../paths';

export const AGENT_BUNDLE_FILE = 'agent.mjs';

/** One file, `file`, built by esbuild into the asset bucket. */
function bundledFileProps(sourceDir: string, file: string, options: (outfile: string) => esbuild.BuildOptions): s3assets.AssetProps {
  return {
    path: sourceDir,
    // Hash what is shipped, not the entry's folder: the bundle also contains core/, db/ and aws/.
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Only used if local bundling declines, which it never does: it either succeeds or throws.
      image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:22-alpine'),
      outputType: BundlingOutput.SINGLE_FILE,
      // Also tells the two assets apart: the CDK reuses what it staged for the same source folder and bundling
      // options, in which the bundling function does not show.
      environment: { KUROKO_BUNDLE_FILE: file },
      local: {
        tryBundle(outputDir: string): boolean {
          esbuild.buildSync(options(join(outputDir, file)));
          return true;
        },
      },
    },
  };
}

export class AgentAsset extends s3assets.Asset {
  /** `agent-ec2.mjs`, which the agent imports from its own folder to terminate its instance. */
  readonly ec2FleetAsset: s3assets.Asset;

  constructor(scope: Construct, id: string, entry: string = agentEntry()) {
    super(scope, id, bundledFileProps(dirname(entry), AGENT_BUNDLE_FILE, (outfile) => ec2AgentBuildOptions(entry, outfile)));
    this.ec2FleetAsset = new s3assets.Asset(this, 'Ec2Fleet', bundledFileProps(dirname(entry), EC2_FLEET_FILE, ec2FleetBuildOptions));
  }
}
