// Media over ICE-TCP when UDP is blocked: a firewall rule in the test's network namespace drops every
// UDP packet to the media port, as a corporate firewall that allows only TCP would. Two participants
// must still decode each other's video, over a candidate pair whose protocol is TCP and whose remote
// end is the server's passive TCP candidate on the media port's number.
// Needs root in the namespace (nft) and Debian's nftables package (scripts/test installs it).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, afterEach, before, test } from "node:test";
import { joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitForVideo, waitInPage } from "../lib/harness.mjs";

const TABLE = "convene_e2e_tcp";

let browser;
const cleanups = [];

function nft(...args) {
  const out = spawnSync("nft", args, { encoding: "utf8" });
  if (out.status !== 0) throw new Error(`nft ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** Drops UDP to the media port (output hook: on loopback every packet passes it); returns a drop counter reader. */
function blockUdp(mediaPort) {
  nft("add", "table", "inet", TABLE);
  cleanups.push(() => spawnSync("nft", ["delete", "table", "inet", TABLE]));
  nft("add", "chain", "inet", TABLE, "out", "{ type filter hook output priority 0 ; }");
  nft("add", "rule", "inet", TABLE, "out", "udp", "dport", String(mediaPort), "counter", "drop");
  return () => {
    const m = /counter packets (\d+)/.exec(nft("list", "chain", "inet", TABLE, "out"));
    return m ? Number(m[1]) : 0;
  };
}

function listening(server, what) {
  const m = new RegExp(`${what}.*?local=[^\\s:]+:(\\d+)`).exec(server.log());
  assert.ok(m, `no "${what}" line in the server log:\n${server.log()}`);
  return Number(m[1]);
}

/** The selected candidate pair: protocol, types and the remote end. */
async function selectedPair(page) {
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
      local: { type: local?.candidateType, protocol: local?.protocol, tcpType: local?.tcpType },
      remote: { type: remote?.candidateType, protocol: remote?.protocol, address: remote?.address, port: remote?.port },
    };
  });
}

async function iceReport(page) {
  return page.evaluate(async () => {
    const pc = window.__convene.conference.media?.pc;
    if (!pc) return "no peer connection";
    const lines = [`ice ${pc.iceConnectionState}, connection ${pc.connectionState}`];
    (await pc.getStats()).forEach((s) => {
      if (s.type === "local-candidate" || s.type === "remote-candidate") {
        lines.push(`${s.type} ${s.id} ${s.candidateType} ${s.protocol} ${s.tcpType ?? ""} ${s.address}:${s.port}`);
      } else if (s.type === "candidate-pair") {
        lines.push(`pair ${s.localCandidateId} -> ${s.remoteCandidateId} ${s.state} sent ${s.requestsSent} responses ${s.responsesReceived}`);
      }
    });
    return lines.join("\n");
  });
}

before(async () => {
  if (spawnSync("sh", ["-c", "command -v nft"]).status !== 0) {
    throw new Error("nft is missing: apt-get install nftables (scripts/test does)");
  }
  browser = await launchBrowser();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

after(async () => {
  await browser?.close();
});

test("with UDP to the media port blocked, two participants decode each other's video over ICE-TCP", async () => {
  const server = await startServer("tcp");
  cleanups.push(() => server.stop());
  const udpPort = listening(server, "media listening");
  const tcpPort = listening(server, "media ICE-TCP listening");
  assert.equal(tcpPort, udpPort, "ICE-TCP takes the media port's number by default");
  const dropped = blockUdp(udpPort);

  const pages = [];
  for (const name of ["Ada", "Bo"]) {
    const page = await newParticipant(browser);
    await joinMeeting(page, server.url, "e2e-ice-tcp", name);
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    const who = ["Ada", "Bo"][i];
    try {
      await waitForVideo(page, { timeout: 30_000 });
    } catch (e) {
      e.message += `\n--- ${who}: ICE ---\n${await iceReport(page)}`;
      throw e;
    }
    await waitInPage(
      page,
      async () => {
        const stats = [];
        (await window.__convene.conference.media.pc.getStats()).forEach((s) => stats.push(s));
        return stats.some((s) => s.type === "transport" && s.selectedCandidatePairId);
      },
      null,
      { what: `${who}: a selected candidate pair` },
    );
    const pair = await selectedPair(page);
    const shown = `${who}: ${JSON.stringify(pair)}\n${await iceReport(page)}`;
    assert.equal(pair.state, "succeeded", shown);
    assert.equal(pair.local.protocol, "tcp", shown);
    assert.equal(pair.remote.protocol, "tcp", shown);
    assert.equal(pair.remote.type, "host", shown);
    assert.equal(pair.remote.address, "127.0.0.1", shown);
    assert.equal(pair.remote.port, tcpPort, shown);
  }
  // The block was real: the browsers' UDP checks to the media port were dropped.
  assert.ok(dropped() > 0, "the firewall rule dropped UDP packets to the media port");
  await screenshot(pages[0], "ice-tcp");
});
