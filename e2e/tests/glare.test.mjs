// Three people entering the same room at the same instant: the server's renegotiation offers cross
// the clients' first offers (glare). Every one of them must still decode video from the others.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newParticipant, startServer, waitForVideo, waitInPage } from "../lib/harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer("glare");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("simultaneous joins all end with video from everyone", async (t) => {
  const names = ["Ann", "Ben", "Cat"];
  const pages = await Promise.all(names.map(() => newParticipant(browser)));
  // Everyone waits on the prejoin page, then all click "Join" at once.
  for (const [i, page] of pages.entries()) {
    await page.goto(`${server.url}/e2e-glare`);
    await page.locator('input[name="display-name"]').fill(names[i]);
  }
  await Promise.all(pages.map((page) => page.getByTestId("join").click()));
  await Promise.all(pages.map((page) => page.getByTestId("meeting").waitFor()));
  await Promise.all(pages.map((page) => waitForVideo(page)));
  for (const page of pages) {
    // Each page ends up with two remote video tracks that both decode.
    await waitInPage(page, async () => {
      const pc = window.__convene.conference.media.pc;
      const counts = [];
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video" && (s.framesDecoded ?? 0) > 0) counts.push(s.framesDecoded);
      });
      return counts.length >= 2;
    }, null, { what: "video from both others", timeout: 20_000 });
    const playing = await page.evaluate(() =>
      [...document.querySelectorAll('[data-testid="tile"][data-self="false"] video')].filter((v) => v.videoWidth > 0).length,
    );
    assert.equal(playing, 2);
  }
  const dropped = await Promise.all(pages.map((p) => p.evaluate(() => window.__convene.conference.media.droppedServerOffers)));
  t.diagnostic(`server offers dropped for crossing a client offer: ${dropped.join(", ")}`);
});
