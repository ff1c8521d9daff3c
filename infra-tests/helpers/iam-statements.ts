/** Every identity-policy statement of a template, for least-privilege checks. */
import type { Template } from 'aws-cdk-lib/assertions';

export interface FoundStatement {
  /** The logical id of the policy or role that holds it. */
  readonly holder: string;
  /** The roles the policy is attached to (logical ids), or the role itself. */
  readonly roles: readonly string[];
  readonly effect: string;
  readonly actions: readonly string[];
  readonly resources: readonly unknown[];
  readonly condition: Record<string, unknown> | undefined;
}

interface RawStatement {
  Effect?: string;
  Action?: string | string[];
  Resource?: unknown;
  Condition?: Record<string, unknown>;
}
interface RawDocument {
  Statement?: RawStatement | RawStatement[];
}

const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const refOf = (v: unknown): string | undefined =>
  v !== null && typeof v === 'object' && 'Ref' in v ? String((v as { Ref: unknown }).Ref) : undefined;

/** Walks AWS::IAM::Policy, AWS::IAM::ManagedPolicy and the inline policies of AWS::IAM::Role. */
export function iamStatements(template: Template | { toJSON(): unknown }): FoundStatement[] {
  const json = template.toJSON() as { Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
  const found: FoundStatement[] = [];
  const add = (holder: string, roles: string[], doc: RawDocument | undefined) => {
    for (const s of asArray(doc?.Statement)) {
      found.push({
        holder,
        roles,
        effect: s.Effect ?? 'Allow',
        actions: asArray(s.Action),
        resources: asArray(s.Resource as unknown[] | unknown),
        condition: s.Condition,
      });
    }
  };
  for (const [id, resource] of Object.entries(json.Resources ?? {})) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::IAM::Policy' || resource.Type === 'AWS::IAM::ManagedPolicy') {
      const roles = asArray(props['Roles'] as unknown[]).map(refOf).filter((r): r is string => r !== undefined);
      add(id, roles, props['PolicyDocument'] as RawDocument);
    }
    if (resource.Type === 'AWS::IAM::Role') {
      for (const p of asArray(props['Policies'] as { PolicyDocument: RawDocument }[])) add(id, [id], p.PolicyDocument);
    }
  }
  return found;
}

/** Actions that have no resource-level permissions in IAM, so `Resource: *` is the only way to grant them. */
export const RESOURCE_STAR_ACTIONS: ReadonlySet<string> = new Set(['ec2:DescribeInstances', 'cloudwatch:PutMetricData']);

/** Problems with over-broad statements: wildcard actions, or `Resource: *` on actions that can be scoped. */
export function overBroad(statements: readonly FoundStatement[]): string[] {
  const problems: string[] = [];
  for (const s of statements.filter((st) => st.effect === 'Allow')) {
    for (const action of s.actions) {
      if (action === '*' || /^[a-z0-9-]+:\*$/i.test(action)) problems.push(`${s.holder}: action ${action}`);
    }
    if (s.resources.includes('*')) {
      for (const action of s.actions.filter((a) => !RESOURCE_STAR_ACTIONS.has(a))) {
        problems.push(`${s.holder}: ${action} on Resource *`);
      }
    }
  }
  return problems;
}
