import type { TokenContext } from '../model';

/** The environment of a command: the token's ENV plus Kuroko2's KUROKO2_* variables (section 5). */
export function buildCommandEnv(context: TokenContext): Record<string, string> {
  const { meta } = context;
  return {
    ...context.ENV,
    KUROKO2_LAUNCHED_TIME: meta.launched_time,
    KUROKO2_JOB_DEFINITION_ID: String(meta.job_definition_id),
    KUROKO2_JOB_DEFINITION_NAME: meta.job_definition_name,
    KUROKO2_JOB_INSTANCE_ID: String(meta.job_instance_id),
  };
}
