// Reading an RTCPeerConnection stats report: connection quality, per-mid audio levels and decoded
// frame counts. Pure functions over the report's entries. (The dominant speaker comes from the
// server, which hears every participant's audio level.)

export type Quality = "good" | "fair" | "poor" | "unknown";

/** The counters kept between two reports to compute rates. */
export interface StatsSample {
  at: number;
  packetsReceived: number;
  packetsLost: number;
  rttMs: number | null;
  /** mid → audio level 0..1 of inbound audio. */
  audioLevels: Record<string, number>;
  /** mid → frames decoded so far, inbound video. */
  framesDecoded: Record<string, number>;
}

type Entry = Record<string, unknown> & { type?: unknown };

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** Collects what we need from a report's entries (an RTCStatsReport's `.values()`). */
export function sample(entries: Iterable<Entry>, at: number): StatsSample {
  const out: StatsSample = { at, packetsReceived: 0, packetsLost: 0, rttMs: null, audioLevels: {}, framesDecoded: {} };
  for (const e of entries) {
    if (e.type === "inbound-rtp") {
      out.packetsReceived += num(e.packetsReceived) ?? 0;
      out.packetsLost += Math.max(0, num(e.packetsLost) ?? 0);
      const mid = typeof e.mid === "string" ? e.mid : null;
      if (mid !== null && e.kind === "audio" && num(e.audioLevel) !== null) out.audioLevels[mid] = num(e.audioLevel)!;
      if (mid !== null && e.kind === "video") out.framesDecoded[mid] = num(e.framesDecoded) ?? 0;
    } else if (e.type === "candidate-pair" && (e.nominated === true || e.state === "succeeded")) {
      const rtt = num(e.currentRoundTripTime);
      if (rtt !== null) out.rttMs = Math.round(rtt * 1000);
    }
  }
  return out;
}

/** Quality from round-trip time and packet loss since the previous sample. */
export function quality(prev: StatsSample | null, cur: StatsSample): Quality {
  if (cur.rttMs === null) return "unknown";
  let lossPct = 0;
  if (prev) {
    const received = cur.packetsReceived - prev.packetsReceived;
    const lost = cur.packetsLost - prev.packetsLost;
    if (received + lost > 0) lossPct = (100 * Math.max(0, lost)) / (received + lost);
  }
  if (cur.rttMs > 400 || lossPct > 10) return "poor";
  if (cur.rttMs > 150 || lossPct > 2) return "fair";
  return "good";
}
