// A promise queue: runs async jobs one at a time, in order, whatever each one's outcome.
// WebRTC negotiation steps must never interleave (see docs/protocol.md, glare).

export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  /** Runs `job` after every job enqueued before it has settled; resolves or rejects with its result. */
  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending += 1;
    const result = this.tail.then(job, job);
    this.tail = result.then(
      () => {
        this.pending -= 1;
      },
      () => {
        this.pending -= 1;
      },
    );
    return result;
  }

  /** Jobs enqueued and not yet settled, the running one included. */
  get size(): number {
    return this.pending;
  }
}
