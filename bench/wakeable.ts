/** Resolves a pending sleep early; a wake with nobody sleeping is remembered once. */
export function wakeable() {
  let wake: (() => void) | undefined;
  let pending = false;
  return {
    sleep(ms: number) {
      if (pending) {
        pending = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
      });
    },
    wake() {
      if (wake) wake();
      else pending = true;
    },
  };
}
