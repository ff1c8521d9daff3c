/**
 * Invariant: a change of deploy config never removes or changes an export that another stack imports. CloudFormation
 * updates the exporting stack first, and refuses to delete or modify an export while another stack imports it
 * ("Export ... cannot be deleted as it is in use by ..."), so such a change fails the deploy, then rolls back.
 *
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/outputs-section-structure.html#outputs-section-cross-stack-references
 * ("You can't delete a stack if another stack references one of its outputs"; "You can't modify or remove an
 * output value that is referenced by another stack.")
 *
 * Every config below is synthesised, and for every ordered pair (deployed, next) every import of every stack of
 * `deployed` must still be exported, with the same value, by the stacks of `next`.
 */
import type { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { exportsOf, importsOf } from './helpers/cross-stack';
import { TEST_CONSOLE, TEST_EMAIL, synthKuroko } from './helpers/synth-app';

const SETTINGS = {
  idleSleep: [{ enabled: true }, { enabled: false }],
  console: [{}, TEST_CONSOLE],
  workerQueues: [[{ name: '@default' }], [{ name: '@default' }, { name: 'build', instanceType: 'c7i.large', architecture: 'x86_64' }, { name: 'nightly' }]],
} as const;

type Stacks = Readonly<Record<string, Template>>;

/** Imports of `deployed` that `next` no longer exports, or exports with another value. */
export function brokenImports(deployed: Stacks, next: Stacks): string[] {
  const nextExports = new Map<string, unknown>();
  for (const template of Object.values(next)) for (const [name, value] of exportsOf(template)) nextExports.set(name, value);
  const deployedExports = new Map<string, unknown>();
  for (const template of Object.values(deployed)) for (const [name, value] of exportsOf(template)) deployedExports.set(name, value);
  const problems: string[] = [];
  for (const [stack, template] of Object.entries(deployed)) {
    for (const name of importsOf(template)) {
      if (!deployedExports.has(name)) problems.push(`${stack} imports ${name}, which no stack exports`);
      else if (!nextExports.has(name)) problems.push(`${stack} imports ${name}, which the next config removes`);
      else if (JSON.stringify(nextExports.get(name)) !== JSON.stringify(deployedExports.get(name))) problems.push(`${stack} imports ${name}, whose value the next config changes`);
    }
  }
  return problems;
}

describe('invariant: exports in use survive every change of deploy config', () => {
  const configs: { label: string; stacks: Stacks }[] = [];
  for (const idleSleep of SETTINGS.idleSleep) {
    for (const console of SETTINGS.console) {
      for (const workerQueues of SETTINGS.workerQueues) {
        const { templates } = synthKuroko({ alertEmail: TEST_EMAIL, idleSleep, console, workerQueues });
        const label = `sleep ${idleSleep.enabled ? 'on' : 'off'}, console ${'oidcIssuer' in console ? 'on' : 'off'}, ${workerQueues.length} queue(s)`;
        configs.push({ label, stacks: { ...templates } });
      }
    }
  }

  it('imports something across stacks in every config (the check has something to check)', () => {
    for (const { stacks } of configs) expect(importsOf(stacks['workers']!).size).toBeGreaterThan(3);
  });

  it.each(configs.flatMap((from) => configs.filter((to) => to !== from).map((to) => [from.label, to.label, from, to] as const)))(
    'from %s to %s',
    (_from, _to, from, to) => {
      expect(brokenImports(from.stacks, to.stacks)).toEqual([]);
    },
  );
});
