// Three people in a room through the SFU: each one's RTCPeerConnection decodes video from both others and
// receives audio packets from both; when one closes the tab, the others see them go and stop receiving them.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitInPage } from "../lib/harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer("media");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Per remote stream of the page: kind, frames decoded (video) and packets received. */
async function inbound(page) {
  return page.evaluate(async () => {
    const out = [];
    (await window.__convene.conference.media.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp") out.push({ kind: s.kind, mid: s.mid, frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0 });
    });
    return out;
  });
}

/** Receiving transceivers that are not stopped and carry a live track. */
async function liveReceivers(page) {
  return page.evaluate(() =>
    window.__convene.conference.media.pc
      .getTransceivers()
      .filter((t) => !t.stopped && t.currentDirection !== "stopped" && t.direction === "recvonly" && t.receiver.track.readyState === "live").length,
  );
}

test("three participants receive audio and video from both others; a closed tab is gone for the rest", async () => {
  const names = ["Ada", "Bo", "Cy"];
  const pages = [];
  for (const name of names) {
    const page = await newParticipant(browser);
    await joinMeeting(page, server.url, "e2e-media", name);
    pages.push(page);
  }
  for (const [i, page] of pages.entries()) {
    await waitInPage(page, async () => {
      const stats = [];
      (await window.__convene.conference.media.pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp") stats.push(s);
      });
      const video = stats.filter((s) => s.kind === "video" && (s.framesDecoded ?? 0) > 10).length;
      const audio = stats.filter((s) => s.kind === "audio" && (s.packetsReceived ?? 0) > 20).length;
      return video >= 2 && audio >= 2;
    }, null, { what: `${names[i]}: video and audio from both others`, timeout: 20_000 });
    // Still flowing a second later: frames keep being decoded.
    const first = await inbound(page);
    await page.waitForTimeout(1000);
    const second = await inbound(page);
    for (const s of first.filter((s) => s.kind === "video")) {
      const later = second.find((x) => x.mid === s.mid);
      assert.ok(later.frames > s.frames, `${names[i]}: video on mid ${s.mid} advanced`);
    }
  }
  await screenshot(pages[0], "media-three");

  // Cy closes the tab.
  await pages[2].close();
  for (const page of pages.slice(0, 2)) {
    await waitInPage(page, () => document.querySelectorAll('[data-testid="tile"]').length === 2, null, { what: "two tiles left" });
    const until = Date.now() + 10_000;
    while ((await liveReceivers(page)) !== 2 && Date.now() < until) await page.waitForTimeout(100);
    assert.equal(await liveReceivers(page), 2, "only the other remaining participant's audio and video are received");
  }
  // The two who stayed still see each other.
  const before = (await inbound(pages[0])).filter((s) => s.kind === "video" && s.frames > 0);
  await pages[0].waitForTimeout(1000);
  const after = await inbound(pages[0]);
  assert.ok(before.some((s) => after.find((x) => x.mid === s.mid)?.frames > s.frames), "Ada still decodes Bo's video");
});
