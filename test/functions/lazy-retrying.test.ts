import { describe, expect, it } from 'vitest';
import { lazyRetrying } from '../../app/lazy-retrying';

describe('lazyRetrying', () => {
  it('builds once on first use and shares the result, also with calls made while it builds', async () => {
    let builds = 0;
    const ready = lazyRetrying(async () => ({ build: ++builds }));
    expect(builds).toBe(0);
    const [a, b] = await Promise.all([ready(), ready()]);
    expect(await ready()).toBe(a);
    expect(b).toBe(a);
    expect(builds).toBe(1);
  });

  it('forgets a failed build, so the next call builds again', async () => {
    let builds = 0;
    const ready = lazyRetrying(async () => {
      builds++;
      if (builds === 1) throw new Error('AccessDeniedException');
      return 'channels';
    });
    await expect(ready()).rejects.toThrow('AccessDeniedException');
    expect(await ready()).toBe('channels');
    expect(await ready()).toBe('channels');
    expect(builds).toBe(2);
  });
});
