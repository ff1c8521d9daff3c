/**
 * cdk-nag (v3, a CDK policy-validation plugin) for the app, and the one way this project acknowledges a
 * finding: with a reason long enough to say why, recorded on the construct for review and for tests.
 */
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** A reason shorter than this cannot say why a finding does not apply. */
export const MIN_REASON_LENGTH = 40;

/** The validation-plugin namespace cdk-nag v3 reports AWS Solutions findings under. */
export const NAG_PACK = 'AwsSolutions';

/**
 * Acknowledges one cdk-nag finding on `scope` and the constructs below it, with the reason it is acceptable.
 * `finding` is a rule id (`AwsSolutions-SMG4`) or one granular finding (`AwsSolutions-IAM5[Action::s3:*]`);
 * prefer the granular form, so a new wildcard added later is still reported.
 */
export function acknowledge(scope: IConstruct, finding: string, reason: string): void {
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(`acknowledging ${finding} on ${scope.node.path} needs a reason that says why`);
  }
  Validations.of(scope).acknowledge({ id: `${NAG_PACK}::${finding}`, reason });
}

/** Runs the AWS Solutions rule pack over every stack of `scope` at synthesis. */
export function applyNag(scope: IConstruct): void {
  Validations.of(scope).addPlugins(new AwsSolutionsChecks(scope, { verbose: true }));
}
