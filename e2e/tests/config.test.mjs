// Options from the server's [ui] config reach the browser: no prejoin page (name from the URL),
// branding, and a hidden moderator badge.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitInPage } from "../lib/harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer(
    "config",
    `[ui]
app_name = "Acme Meet"
accent_color = "#c2410c"
prejoin = false
moderator_indicator = false
`,
  );
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("with prejoin off the meeting opens at once, named from ?name=", async () => {
  const page = await newParticipant(browser);
  await page.goto(`${server.url}/config-room?name=Carol%20Q`);
  await page.getByTestId("meeting").waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('input[name="display-name"]').count(), 0, "prejoin page was shown");
  await waitInPage(page, () => document.querySelector('[data-testid="tile"][data-self="true"]')?.dataset.name === "Carol Q", null, { what: "own name from the URL" });
  assert.equal(await page.title(), "Acme Meet");
  const accent = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--accent").trim());
  assert.equal(accent, "#c2410c");
  // Carol is the moderator (first in), yet no badge is shown anywhere.
  assert.equal(await page.getByTestId("meeting").getAttribute("data-moderator"), "true");
  assert.equal(await page.getByTestId("moderator-badge").count(), 0);

  const other = await newParticipant(browser);
  await joinMeeting(other, server.url, "config-room", "Dan", { prejoin: false });
  await waitInPage(page, () => document.querySelectorAll('[data-testid="tile"]').length === 2, null, { what: "Dan's tile" });
  assert.equal(await page.getByTestId("moderator-badge").count(), 0);
  await screenshot(page, "10-config-no-prejoin");
});
