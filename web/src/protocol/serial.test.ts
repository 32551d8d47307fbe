// The serial queue never runs two jobs at once and survives failing jobs.

import { describe, expect, it } from "vitest";
import { SerialQueue } from "./serial";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("SerialQueue", () => {
  it("runs jobs one at a time in order, even when one fails", async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    let running = 0;
    const job = (name: string, fail = false) => async () => {
      running += 1;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      running -= 1;
      if (fail) throw new Error(name);
      return name;
    };
    const a = q.run(job("a"));
    const b = q.run(job("b", true));
    const c = q.run(job("c"));
    expect(q.size).toBe(3);
    await expect(a).resolves.toBe("a");
    await expect(b).rejects.toThrow("b");
    await expect(c).resolves.toBe("c");
    expect(log).toEqual(["start a", "end a", "start b", "end b", "start c", "end c"]);
    await tick();
    expect(q.size).toBe(0);
  });
});
