// Media through TURN when the direct path is blocked: a firewall rule in the test's network namespace
// drops every packet to the media port that does not come from the TURN relay's address, so the
// browsers can reach the server's media only through the relay. Two participants must still decode
// each other's video, over a relay candidate pair, with the credentials the `welcome` message carried.
// Once with coturn as the external TURN server (shared-secret credentials), once with the embedded one.
// Needs root in the namespace (nft) and Debian's coturn and nftables packages (scripts/test installs them).

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { createSocket } from "node:dgram";
import { after, afterEach, before, test } from "node:test";
import { freeUdpPort, joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitForVideo, waitInPage } from "../lib/harness.mjs";
import { dropRule, iceReport, listeningPort, selectedPair } from "../lib/network.mjs";

/** The relay's address: the one source the media port still accepts. */
const RELAY_IP = "127.0.0.3";
const SECRET = "e2e-turn-secret";
const TABLE = "convene_e2e_turn";

let browser;
const cleanups = [];

function need(tool, pkg) {
  if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) {
    throw new Error(`${tool} is missing: apt-get install ${pkg} (scripts/test does)`);
  }
}

/**
 * Drops TCP and UDP to the media port from any source but the relay. Returns a function reading how many
 * packets the rule dropped.
 */
function blockDirectPath(mediaPort) {
  const match = ["meta", "l4proto", "{ tcp, udp }", "th", "dport", String(mediaPort), "ip", "saddr", "!=", RELAY_IP];
  return dropRule(TABLE, match, cleanups);
}

/** The media port the server really bound. */
const mediaPortOf = (server) => listeningPort(server, "media listening");

/** Starts coturn with nothing but what the shared-secret scheme and this loopback setup need. */
async function startCoturn(port) {
  need("turnserver", "coturn");
  const child = spawn(
    "turnserver",
    [
      "-n", // no config file
      `--listening-ip=${RELAY_IP}`,
      `--relay-ip=${RELAY_IP}`,
      `--listening-port=${port}`,
      "--use-auth-secret",
      `--static-auth-secret=${SECRET}`,
      "--realm=convene",
      // The server's media port is on 127.0.0.1, which coturn refuses as a peer unless told.
      "--allow-loopback-peers",
      "--no-cli",
      "--no-tls",
      "--no-dtls",
      "--log-file=stdout",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout.on("data", (c) => (log += c));
  child.stderr.on("data", (c) => (log += c));
  cleanups.push(() => child.kill("SIGKILL"));
  // Its log says "servers created" before its listeners answer; a STUN answer is the real sign.
  const until = Date.now() + 10_000;
  while (!(await stunAnswers(RELAY_IP, port))) {
    if (child.exitCode !== null || Date.now() > until) throw new Error(`coturn did not start:\n${log}`);
  }
  return { log: () => log };
}

/** Sends one STUN binding request; true if anything answers within 200 ms. */
async function stunAnswers(address, port) {
  const socket = createSocket("udp4");
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0); // binding request, no attributes
  request.writeUInt32BE(0x2112a442, 4); // magic cookie
  randomFillSync(request, 8, 12); // transaction id
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 200);
      socket.once("message", () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.once("error", () => {
        clearTimeout(timer);
        setTimeout(() => resolve(false), 100);
      });
      socket.send(request, port, address);
    });
  } finally {
    socket.close();
  }
}

/** The server's `convene_media_*` counters, for failure messages. */
async function mediaMetrics(server) {
  try {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return text.split("\n").filter((l) => l.startsWith("convene_media_")).join("\n");
  } catch (e) {
    return `metrics unavailable: ${e}`;
  }
}

/** Joins two participants and checks video, the relay pair and the credentials; returns the pages. */
async function twoThroughTheRelay(server, room, dropped) {
  const mediaPort = mediaPortOf(server);
  const pages = [];
  for (const name of ["Ada", "Bo"]) {
    const page = await newParticipant(browser);
    await joinMeeting(page, server.url, room, name);
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    const who = ["Ada", "Bo"][i];
    // The credentials came in `welcome` and went into the RTCPeerConnection.
    const ice = await page.evaluate(() => window.__convene.conference.media.pc.getConfiguration().iceServers);
    assert.equal(ice.length, 1, `${who}: one TURN server configured: ${JSON.stringify(ice)}`);
    const [expiry, id] = String(ice[0].username).split(":");
    assert.ok(Number(expiry) > Date.now() / 1000 && id, `${who}: shared-secret username <expiry>:<id>: ${ice[0].username}`);
    try {
      await waitForVideo(page, { timeout: 30_000 });
    } catch (e) {
      e.message += `\n--- ${who}: ICE ---\n${await iceReport(page)}`;
      e.message += `\n--- server media metrics ---\n${await mediaMetrics(server)}`;
      e.message += `\n--- server media log ---\n${server.log().split("\n").filter((l) => /convene_media|media/.test(l)).slice(-60).join("\n")}`;
      throw e;
    }
    const pair = await waitInPage(
      page,
      async () => {
        const stats = new Map();
        (await window.__convene.conference.media.pc.getStats()).forEach((s) => stats.set(s.id, s));
        const transport = [...stats.values()].find((s) => s.type === "transport" && s.selectedCandidatePairId);
        return transport ? transport.selectedCandidatePairId : null;
      },
      null,
      { what: `${who}: a selected candidate pair` },
    );
    assert.ok(pair);
    const selected = await selectedPair(page);
    assert.equal(selected.state, "succeeded", `${who}: ${JSON.stringify(selected)}`);
    assert.equal(selected.local.type, "relay", `${who}: media goes through the relay: ${JSON.stringify(selected)}`);
    assert.equal(selected.local.address, RELAY_IP, `${who}: ${JSON.stringify(selected)}`);
    assert.equal(selected.remote.port, mediaPort, `${who}: the pair ends at the server's media port`);
  }
  // The block was real: the browsers' direct checks to the media port were dropped.
  assert.ok(dropped() > 0, "the firewall rule dropped direct packets to the media port");
  return pages;
}

before(async () => {
  need("nft", "nftables");
  browser = await launchBrowser();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

after(async () => {
  await browser?.close();
});

test("coturn as the external TURN: with the direct path blocked, two participants decode each other's video through the relay", async () => {
  const turnPort = await freeUdpPort(RELAY_IP);
  const coturn = await startCoturn(turnPort);
  const server = await startServer(
    "turn-coturn",
    `[turn]
mode = "external"
secret = "${SECRET}"
urls = ["turn:${RELAY_IP}:${turnPort}?transport=udp"]
probe_interval = "1s"
`,
  );
  cleanups.push(() => server.stop());
  const dropped = blockDirectPath(mediaPortOf(server));
  try {
    const pages = await twoThroughTheRelay(server, "e2e-turn-coturn", dropped);
    await screenshot(pages[0], "turn-coturn");
  } catch (e) {
    e.message += `\n--- coturn ---\n${coturn.log().slice(-3000)}`;
    throw e;
  }
});

test("embedded TURN: with the direct path blocked, two participants decode each other's video through the relay", async () => {
  const turnPort = await freeUdpPort(RELAY_IP);
  const server = await startServer(
    "turn-embedded",
    `[turn]
mode = "embedded"
secret = "${SECRET}"
listen = "${RELAY_IP}:${turnPort}"
urls = ["turn:${RELAY_IP}:${turnPort}?transport=udp"]
`,
  );
  cleanups.push(() => server.stop());
  const dropped = blockDirectPath(mediaPortOf(server));
  const pages = await twoThroughTheRelay(server, "e2e-turn-embedded", dropped);
  await screenshot(pages[0], "turn-embedded");
});
