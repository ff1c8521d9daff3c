/** Builds the Kuroko app for assertions: cdk.json's context, no bundling, the app's own migration trigger. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { parseDeployConfig, type DeployConfig } from '../../cdk/deploy-config';
import { buildKurokoApp, type KurokoStacks } from '../../cdk/kuroko-app';
import { PROJECT_ROOT } from '../../cdk/paths';

export const TEST_EMAIL = 'ops@example.com';
/** A console with OIDC sign-in; the client secret is named, as an operator who created it by name would. */
export const TEST_CONSOLE = {
  oidcIssuer: 'https://accounts.google.com',
  oidcClientId: 'kuroko-console.apps.example.com',
  oidcClientSecretArn: 'kuroko/dev/oidc-client',
  allowedDomains: ['example.com'],
  admins: ['ops@example.com', 'lead@example.com'],
} as const;

/** The feature flags `cdk synth` uses, so tests see the templates a deploy would. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

export interface Synthesised extends KurokoStacks {
  readonly app: App;
  readonly config: DeployConfig;
  readonly templates: { readonly data: Template; readonly engine: Template; readonly workers: Template };
}

/** Builds and synthesises every stack of `input` (a deploy config object, defaults filled in). */
export function synthKuroko(input: Record<string, unknown> = { alertEmail: TEST_EMAIL }, options: { nag?: boolean; outdir?: string } = {}): Synthesised {
  const app = new App({
    outdir: options.outdir,
    // No stack is bundled: assertions read templates, and esbuild runs in `npm run synth`.
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
  });
  const config = parseDeployConfig(input, 'test config');
  const stacks = buildKurokoApp(app, config, { nag: options.nag ?? false });
  return {
    app,
    config,
    ...stacks,
    templates: {
      data: Template.fromStack(stacks.data),
      engine: Template.fromStack(stacks.engine),
      workers: Template.fromStack(stacks.workers),
    },
  };
}

/** The logical id of the resource created by a construct (its default child). */
export function logicalId(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as Parameters<Stack['getLogicalId']>[0]);
}

/** The text of a `Fn::Join` (user data, JSON values), with every non-string part replaced by `<token>`. */
export function joinedText(value: unknown): string {
  const unwrap = (v: unknown): unknown => (v !== null && typeof v === 'object' && 'Fn::Base64' in v ? (v as Record<string, unknown>)['Fn::Base64'] : v);
  const inner = unwrap(value);
  if (typeof inner === 'string') return inner;
  const join = (inner as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) throw new Error(`not a Fn::Join: ${JSON.stringify(inner).slice(0, 200)}`);
  return join[1].map((part) => (typeof part === 'string' ? part : '<token>')).join(join[0]);
}
