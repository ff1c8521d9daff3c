/**
 * CloudWatch metrics from a Lambda through the Embedded Metric Format: one JSON line on stdout that CloudWatch
 * Logs turns into metric data points. No PutMetricData call, so no SDK client, no extra latency per invocation,
 * and a metric that cannot fail the invocation.
 */

/** The CloudWatch units the functions use. */
export const METRIC_UNIT = { count: 'Count', milliseconds: 'Milliseconds' } as const;
export type MetricUnit = (typeof METRIC_UNIT)[keyof typeof METRIC_UNIT];

export interface EmbeddedMetric {
  readonly name: string;
  readonly value: number;
  readonly unit?: MetricUnit;
}

export interface EmbeddedMetricsInput {
  readonly namespace: string;
  /** Dimension name -> value; every metric of the line carries all of them (one dimension set). */
  readonly dimensions: Readonly<Record<string, string>>;
  readonly metrics: readonly EmbeddedMetric[];
  /** When the values were measured (ms since the epoch). */
  readonly timestamp: number;
}

/** The EMF document for one set of values (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html). */
export function embeddedMetricsDocument(input: EmbeddedMetricsInput): Record<string, unknown> {
  const document: Record<string, unknown> = {
    _aws: {
      Timestamp: input.timestamp,
      CloudWatchMetrics: [
        {
          Namespace: input.namespace,
          Dimensions: [Object.keys(input.dimensions)],
          Metrics: input.metrics.map((m) => ({ Name: m.name, Unit: m.unit ?? METRIC_UNIT.count })),
        },
      ],
    },
    ...input.dimensions,
  };
  for (const metric of input.metrics) document[metric.name] = metric.value;
  return document;
}

/** Where the line goes: stdout, written directly so no runtime prefix (timestamp, request id) precedes the JSON. */
export type LineWriter = (line: string) => void;
const stdoutWriter: LineWriter = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Prints the EMF line for these values. */
export function writeEmbeddedMetrics(input: EmbeddedMetricsInput, write: LineWriter = stdoutWriter): void {
  write(JSON.stringify(embeddedMetricsDocument(input)));
}
