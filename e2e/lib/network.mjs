// Network helpers the transport tests share: a firewall rule in the test's network namespace, the ports
// the server logged, and what the page's ICE agent chose.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function nft(...args) {
  const out = spawnSync("nft", args, { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`nft ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/**
 * Adds a table `table` whose output-hook rule drops what `match` (nft rule words) selects; on loopback
 * every packet passes the output hook. The table's removal goes onto `cleanups`. Returns a function
 * reading how many packets the rule dropped.
 */
export function dropRule(table, match, cleanups) {
  nft("add", "table", "inet", table);
  cleanups.push(() => spawnSync("nft", ["delete", "table", "inet", table]));
  nft("add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }");
  nft("add", "rule", "inet", table, "out", ...match, "counter", "drop");
  return () => {
    const m = /counter packets (\d+)/.exec(nft("list", "chain", "inet", table, "out"));
    return m ? Number(m[1]) : 0;
  };
}

/** The port of the server's "`what` ... local=ADDR:PORT" log line (it takes free ports when HTTP is on port 0). */
export function listeningPort(server, what) {
  const m = new RegExp(`${what}.*?local=[^\\s:]+:(\\d+)`).exec(server.log());
  assert.ok(m, `no "${what}" line in the server log:\n${server.log()}`);
  return Number(m[1]);
}

/** The page's selected ICE candidate pair: state, and type, protocol and address of both ends. */
export async function selectedPair(page) {
  return page.evaluate(async () => {
    const stats = new Map();
    (await window.__convene.conference.media.pc.getStats()).forEach((s) => stats.set(s.id, s));
    const transport = [...stats.values()].find((s) => s.type === "transport" && s.selectedCandidatePairId);
    const pair = transport && stats.get(transport.selectedCandidatePairId);
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
      state: pair.state,
      local: {
        type: local?.candidateType,
        protocol: local?.protocol,
        tcpType: local?.tcpType,
        address: local?.address,
        relayProtocol: local?.relayProtocol,
      },
      remote: { type: remote?.candidateType, protocol: remote?.protocol, address: remote?.address, port: remote?.port },
    };
  });
}

/** Candidates, candidate pairs and RTP counters as the page sees them, for failure messages. */
export async function iceReport(page) {
  return page.evaluate(async () => {
    const pc = window.__convene.conference.media?.pc;
    if (!pc) return "no peer connection";
    const lines = [`ice ${pc.iceConnectionState}, gathering ${pc.iceGatheringState}, connection ${pc.connectionState}`];
    (await pc.getStats()).forEach((s) => {
      if (s.type === "local-candidate" || s.type === "remote-candidate") {
        lines.push(`${s.type} ${s.id} ${s.candidateType} ${s.protocol} ${s.tcpType ?? ""} ${s.address}:${s.port} ${s.url ?? ""}`);
      } else if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
        let line = `${s.type} ${s.kind} mid ${s.mid} packets ${s.packetsReceived ?? s.packetsSent} frames ${s.framesDecoded ?? s.framesEncoded ?? "-"} pli ${s.pliCount ?? "-"} nack ${s.nackCount ?? "-"}`;
        if (s.type === "inbound-rtp" && s.kind === "video") {
          // Why frames did not decode: never complete (received), waiting in the jitter buffer, or dropped.
          line += ` received ${s.framesReceived} keyframes ${s.keyFramesDecoded} dropped ${s.framesDropped} freezes ${s.freezeCount}`;
          line += ` size ${s.frameWidth}x${s.frameHeight} jitterbuffer ${s.jitterBufferEmittedCount ? Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount) : "-"} ms bytes ${s.bytesReceived}`;
        }
        if (s.type === "outbound-rtp" && s.rid) line += ` rid ${s.rid} active ${s.active} limited ${s.qualityLimitationReason}`;
        lines.push(line);
      } else if (s.type === "candidate-pair") {
        lines.push(`pair ${s.localCandidateId} -> ${s.remoteCandidateId} ${s.state} sent ${s.requestsSent} responses ${s.responsesReceived}`);
      }
    });
    return lines.join("\n");
  });
}
