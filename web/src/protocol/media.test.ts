// The media session's simulcast side: the camera goes out as three encodings, and tile sizes reach
// the server as one debounced, clamped, full map per change.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CAMERA_ENCODINGS, MediaSession } from "./media";
import type { ClientMessage } from "./messages";

interface Added {
  kind: unknown;
  init: RTCRtpTransceiverInit;
}

function session(options: { simulcast?: boolean } = {}) {
  const added: Added[] = [];
  const sent: ClientMessage[] = [];
  const pc = {
    addTransceiver(kind: unknown, init: RTCRtpTransceiverInit) {
      added.push({ kind, init });
      return { mid: null, direction: init.direction, sender: { replaceTrack: async () => {}, track: null } };
    },
    // Negotiation is not under test here: the offer never completes.
    createOffer: () => new Promise(() => {}),
    close() {},
    connectionState: "new",
  };
  const media = new MediaSession({
    send: (msg) => {
      sent.push(msg);
      return true;
    },
    createPeerConnection: () => pc as unknown as RTCPeerConnection,
    tileSizeDebounceMs: 100,
    ...options,
  });
  return { media, added, sent };
}

describe("simulcast publishing", () => {
  it("sends the camera as three encodings, lowest first, and the microphone as one", () => {
    const { media, added } = session();
    void media.start(null, null);
    expect(added.map((a) => a.kind)).toEqual(["audio", "video"]);
    expect(added[0].init.sendEncodings).toBeUndefined();
    const encodings = added[1].init.sendEncodings ?? [];
    expect(encodings.map((e) => e.rid)).toEqual(["q", "h", "f"]);
    expect(encodings.map((e) => e.scaleResolutionDownBy)).toEqual([4, 2, 1]);
    expect(encodings).toEqual(CAMERA_ENCODINGS);
    media.close();
  });

  it("can be turned off", () => {
    const { media, added } = session({ simulcast: false });
    void media.start(null, null);
    expect(added[1].init.sendEncodings).toBeUndefined();
    media.close();
  });
});

describe("tile sizes", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends the full map once sizes settle, clamped, and nothing when unchanged", () => {
    const { media, sent } = session();
    media.setTileSize("3", { width: 100, height: 50 });
    media.setTileSize("3", { width: 640.4, height: 359.6 });
    media.setTileSize("5", { width: 99999, height: -3 });
    vi.advanceTimersByTime(99);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([
      { type: "tile_sizes", tiles: { "3": { width: 640, height: 360 }, "5": { width: 16384, height: 0 } } },
    ]);
    // The same sizes again: nothing new to say.
    media.setTileSize("3", { width: 640, height: 360 });
    vi.advanceTimersByTime(200);
    expect(sent.length).toBe(1);
    // A tile that goes away leaves the map.
    media.setTileSize("5", null);
    vi.advanceTimersByTime(100);
    expect(sent[1]).toEqual({ type: "tile_sizes", tiles: { "3": { width: 640, height: 360 } } });
    media.close();
    media.setTileSize("3", { width: 1, height: 1 });
    vi.advanceTimersByTime(1000);
    expect(sent.length).toBe(2);
  });

  it("never sends more entries than the server accepts", () => {
    const { media, sent } = session();
    for (let i = 0; i < 70; i++) media.setTileSize(String(i), { width: 10, height: 10 });
    vi.advanceTimersByTime(100);
    const msg = sent[0];
    expect(msg.type === "tile_sizes" && Object.keys(msg.tiles).length).toBe(64);
    media.close();
  });
});
