/** An alarm on a function's errors that notifies the alert topic. */
import { Duration, aws_cloudwatch as cloudwatch, aws_cloudwatch_actions as cwActions, type aws_lambda as lambda, type aws_sns as sns } from 'aws-cdk-lib';
import { Construct } from 'constructs';

const ERROR_ALARM_PERIOD = Duration.minutes(5);

export interface FunctionAlarmsProps {
  readonly fn: lambda.IFunction;
  readonly topic: sns.ITopic;
}

export class FunctionAlarms extends Construct {
  readonly errors: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: FunctionAlarmsProps) {
    super(scope, id);
    // Any error counts: every function is either a once-a-minute tick or a request handler, and a single
    // failure of either is worth a look. No data means no invocations, which is not an error.
    this.errors = new cloudwatch.Alarm(this, 'Errors', {
      alarmDescription: `${props.fn.functionName} reported errors`,
      metric: props.fn.metricErrors({ period: ERROR_ALARM_PERIOD, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.errors.addAlarmAction(new cwActions.SnsAction(props.topic));
  }
}
