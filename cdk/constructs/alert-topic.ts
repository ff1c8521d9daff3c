/**
 * The alert topic: the notifier's alerts and every CloudWatch alarm of the deployment publish to it.
 *
 * Encryption at rest is opt-in (`alerts.kmsKey` in the deploy config). CloudWatch alarms cannot publish to a topic
 * encrypted with the AWS managed aws/sns key, whose policy cannot admit cloudwatch.amazonaws.com, so encrypting
 * needs a customer managed key: 1 USD a month, 2 after its first yearly rotation and 3 from the second
 * (https://aws.amazon.com/kms/pricing/), the largest always-on line of an idle deployment. Without it nothing is
 * less protected in practice: SNS holds a message only until it is delivered, publishing and subscribing still
 * require TLS (enforceSSL) and IAM, the key never gated who may subscribe, and the alerts (job names, instance ids,
 * alarm states; no command output) go out as email anyway.
 */
import { ArnFormat, RemovalPolicy, Stack, aws_iam as iam, aws_kms as kms, aws_sns as sns } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { DeployConfig } from '../deploy-config';

/** The service principal CloudWatch alarms act as when they publish to SNS. */
export const CLOUDWATCH_SERVICE = 'cloudwatch.amazonaws.com';

/** Creates the topic (and its key when asked) in `scope`, under the ids they always had. */
export function createAlertTopic(scope: Construct, config: DeployConfig): sns.Topic {
  const stack = Stack.of(scope);
  const stage = config.stageName;
  // Only alarms of this account and region may publish, or use the key (confused deputy).
  const fromOurAlarms = {
    StringEquals: { 'aws:SourceAccount': stack.account },
    ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
  };
  let masterKey: kms.Key | undefined;
  if (config.alerts.kmsKey) {
    masterKey = new kms.Key(scope, 'AlertTopicKey', {
      description: `Kuroko ${stage}: encrypts the alert topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    masterKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsUseKey',
        principals: [new iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromOurAlarms,
      }),
    );
  }
  const topic = new sns.Topic(scope, 'AlertTopic', {
    displayName: `Kuroko ${stage} alerts`,
    ...(masterKey ? { masterKey } : {}),
    enforceSSL: true,
  });
  // enforceSSL makes CDK write a topic policy, and a topic policy replaces SNS's default one, which is what let
  // CloudWatch alarms publish: without this statement every alarm action fails.
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: fromOurAlarms,
    }),
  );
  return topic;
}
