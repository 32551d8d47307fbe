// Media over ICE-TCP when UDP is blocked: a firewall rule in the test's network namespace drops every
// UDP packet to the media port, as a corporate firewall that allows only TCP would. Two participants
// must still decode each other's video, over a candidate pair whose protocol is TCP and whose remote
// end is the server's passive TCP candidate on the media port's number.
// Needs root in the namespace (nft) and Debian's nftables package (scripts/test installs it).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, afterEach, before, test } from "node:test";
import { joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitForVideo, waitInPage } from "../lib/harness.mjs";
import { dropRule, iceReport, listeningPort, selectedPair } from "../lib/network.mjs";

const TABLE = "convene_e2e_tcp";

let browser;
const cleanups = [];

/** Drops UDP to the media port; returns a drop counter reader. */
function blockUdp(mediaPort) {
  return dropRule(TABLE, ["udp", "dport", String(mediaPort)], cleanups);
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
  const udpPort = listeningPort(server, "media listening");
  const tcpPort = listeningPort(server, "media ICE-TCP listening");
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
