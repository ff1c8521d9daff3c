/**
 * The events the engine functions accept, validated with zod: EventBridge's scheduled event (the one-minute
 * tick), an asynchronous nudge (`{ "nudge": true }`), and the CloudFormation custom resource event the CDK
 * Provider framework hands its onEvent function.
 */
import { z } from 'zod';
import { MAX_FINISHED_HINTS } from '../../adapters/aws/lambda-nudger';
import { ValidationError } from '../../core/errors';

/** EventBridge's scheduled event, as far as the functions read it. */
const scheduledEventSchema = z.object({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
  time: z.string().optional(),
  id: z.string().optional(),
});

const nudgeEventSchema = z.object({ nudge: z.literal(true) });
/** A nudge from an agent names the commands it just finished (adapters/aws/lambda-nudger.ts): hints, never state. */
const finishedHintsSchema = z.object({ finished: z.array(z.number().int().positive()).max(MAX_FINISHED_HINTS) });

export const TICK_KIND = { scheduled: 'scheduled', nudge: 'nudge' } as const;
export type TickKind = (typeof TICK_KIND)[keyof typeof TICK_KIND];

/** Says which kind of tick started the invocation; ValidationError for any other event. */
export function parseTickEvent(event: unknown): TickKind {
  if (scheduledEventSchema.safeParse(event).success) return TICK_KIND.scheduled;
  if (nudgeEventSchema.safeParse(event).success) return TICK_KIND.nudge;
  throw new ValidationError('expected an EventBridge scheduled event or {"nudge": true}', [
    { field: 'event', message: `got ${JSON.stringify(event)?.slice(0, 200)}` },
  ]);
}

/** The finished commands a nudge names; none for any other event, or for hints that are not a short list of ids. */
export function finishedHintsOf(event: unknown): number[] {
  if (!nudgeEventSchema.safeParse(event).success) return [];
  const hints = finishedHintsSchema.safeParse(event);
  return hints.success ? hints.data.finished : [];
}

export const CUSTOM_RESOURCE_REQUEST = { create: 'Create', update: 'Update', delete: 'Delete' } as const;

/** The onEvent input of the Provider framework (a CloudFormation custom resource request). */
const customResourceEventSchema = z.object({
  RequestType: z.enum([CUSTOM_RESOURCE_REQUEST.create, CUSTOM_RESOURCE_REQUEST.update, CUSTOM_RESOURCE_REQUEST.delete]),
  StackId: z.string(),
  RequestId: z.string(),
  LogicalResourceId: z.string(),
  ResourceType: z.string(),
  ResourceProperties: z.record(z.string(), z.unknown()).optional(),
  OldResourceProperties: z.record(z.string(), z.unknown()).optional(),
  PhysicalResourceId: z.string().optional(),
});
export type CustomResourceEvent = z.infer<typeof customResourceEventSchema>;

/** What the Provider framework expects back from onEvent. */
export interface CustomResourceResponse {
  PhysicalResourceId: string;
  Data?: Record<string, string | number | boolean>;
}

/** Validates a custom resource event; ValidationError naming every problem. */
export function parseCustomResourceEvent(event: unknown): CustomResourceEvent {
  const result = customResourceEventSchema.safeParse(event);
  if (result.success) return result.data;
  throw new ValidationError(
    'not a CloudFormation custom resource event',
    result.error.issues.map((i) => ({ field: i.path.join('.') || 'event', message: i.message })),
  );
}
