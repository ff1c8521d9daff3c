/** The idle-sleep parameter's states: constants shared by the sleep gate and the CDK app that creates it. */
export const SLEEP_STATE = { asleep: 'asleep', awake: 'awake' } as const;

/** The parameter's value before the first sleep (the CDK app creates the parameter with it). */
export const INITIAL_SLEEP_VALUE = JSON.stringify({ state: SLEEP_STATE.awake });
