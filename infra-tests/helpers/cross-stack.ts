/** Reads cross-stack references out of synthesised templates: the exports a stack declares and the ones it imports. */
import type { Template } from 'aws-cdk-lib/assertions';

export interface TemplateJson {
  Resources?: Record<string, { Type: string; Properties?: Record<string, unknown>; DependsOn?: string | string[] }>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
}

export const jsonOf = (template: Template): TemplateJson => template.toJSON() as TemplateJson;

/** Export name -> exported value, for every output that carries an Export. */
export function exportsOf(template: Template): Map<string, unknown> {
  const found = new Map<string, unknown>();
  for (const output of Object.values(jsonOf(template).Outputs ?? {})) {
    const name = output.Export?.Name;
    if (typeof name === 'string') found.set(name, output.Value);
  }
  return found;
}

/** Every `Fn::ImportValue` name anywhere in the template. */
export function importsOf(template: Template): Set<string> {
  const found = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) walk(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value)) {
      if (key === 'Fn::ImportValue') {
        if (typeof v !== 'string') throw new Error(`an import whose name is computed: ${JSON.stringify(v)}`);
        found.add(v);
      } else {
        walk(v);
      }
    }
  };
  walk(jsonOf(template).Resources);
  walk(jsonOf(template).Outputs);
  return found;
}
