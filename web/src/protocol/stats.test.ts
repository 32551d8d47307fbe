// Stats reading: quality thresholds, speaker choice, and which report entries count.

import { describe, expect, it } from "vitest";
import { quality, sample } from "./stats";

const report = (lost: number, received: number, rtt = 0.02) => [
  { type: "inbound-rtp", kind: "audio", mid: "3", packetsReceived: received, packetsLost: lost, audioLevel: 0.3 },
  { type: "inbound-rtp", kind: "video", mid: "4", packetsReceived: 0, packetsLost: 0, framesDecoded: 42 },
  { type: "candidate-pair", nominated: true, currentRoundTripTime: rtt },
  { type: "candidate-pair", nominated: false, currentRoundTripTime: 9 },
  { type: "outbound-rtp", kind: "video", packetsSent: 1000 },
];

describe("stats", () => {
  it("reads levels, frames and the nominated pair's round trip", () => {
    const s = sample(report(0, 100), 0);
    expect(s.audioLevels).toEqual({ "3": 0.3 });
    expect(s.framesDecoded).toEqual({ "4": 42 });
    expect(s.rttMs).toBe(20);
  });

  it("rates quality by loss since the last sample and by round trip", () => {
    const a = sample(report(0, 100), 0);
    expect(quality(a, sample(report(0, 200), 1))).toBe("good");
    expect(quality(a, sample(report(5, 195), 1))).toBe("fair");
    expect(quality(a, sample(report(20, 180), 1))).toBe("poor");
    expect(quality(a, sample(report(0, 200, 0.5), 1))).toBe("poor");
    expect(quality(null, sample([], 1))).toBe("unknown");
  });
});
