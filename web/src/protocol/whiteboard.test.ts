// Whiteboard collab crypto (Excalidraw's format, with the platform's WebCrypto) and metadata parsing.

import { describe, expect, it } from "vitest";
import {
  IV_LENGTH,
  decryptPayload,
  encryptPayload,
  generateCollabDetails,
  importRoomKey,
  isCollabPayload,
  parseWhiteboardMetadata,
} from "./whiteboard";

describe("collab details", () => {
  it("are generated in Excalidraw's format and parse back from metadata", async () => {
    const d = await generateCollabDetails();
    expect(d.roomId).toMatch(/^[0-9a-f]{20}$/);
    expect(d.roomKey).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const meta = { collabDetails: d, collabServerUrl: "http://127.0.0.1:8080/" };
    expect(parseWhiteboardMetadata(JSON.parse(JSON.stringify(meta)))).toEqual(meta);
  });

  it("malformed metadata means no board", () => {
    for (const bad of [null, 1, {}, { collabDetails: { roomId: "x", roomKey: "y" } }, { collabDetails: { roomId: "d3c1a9f0e2b4c6a8d0e2" } }]) {
      expect(parseWhiteboardMetadata(bad)).toBeNull();
    }
  });
});

describe("payload encryption", () => {
  it("round-trips a scene update with a fresh IV each time", async () => {
    const key = await importRoomKey((await generateCollabDetails()).roomKey);
    const payload = { type: "SCENE_UPDATE", payload: { elements: [{ id: "r1", type: "rectangle", version: 3 }] } };
    const a = await encryptPayload(key, payload);
    const b = await encryptPayload(key, payload);
    expect(a.iv).toHaveLength(IV_LENGTH);
    expect(Buffer.from(a.iv).equals(Buffer.from(b.iv))).toBe(false);
    const plain = await decryptPayload(key, a.data, a.iv);
    expect(plain).toEqual(payload);
    expect(isCollabPayload(plain)).toBe(true);
  });

  it("refuses the wrong key, a tampered ciphertext and a bad IV", async () => {
    const key = await importRoomKey((await generateCollabDetails()).roomKey);
    const other = await importRoomKey((await generateCollabDetails()).roomKey);
    const { data, iv } = await encryptPayload(key, { type: "SCENE_INIT", payload: { elements: [] } });
    expect(await decryptPayload(other, data, iv)).toBeNull();
    const tampered = new Uint8Array(data.slice(0));
    tampered[0] ^= 1;
    expect(await decryptPayload(key, tampered, iv)).toBeNull();
    expect(await decryptPayload(key, data, new Uint8Array(8))).toBeNull();
    expect(await decryptPayload(key, "text", iv)).toBeNull();
  });

  it("decrypts a payload encrypted the way Excalidraw does (JWK import of the room key)", async () => {
    // Independent of encryptPayload: the steps Excalidraw's client takes, spelled out.
    const { roomKey } = await generateCollabDetails();
    const excalidrawKey = await crypto.subtle.importKey(
      "jwk",
      { alg: "A128GCM", ext: true, k: roomKey, key_ops: ["encrypt", "decrypt"], kty: "oct" },
      { name: "AES-GCM", length: 128 },
      false,
      ["encrypt"],
    );
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      excalidrawKey,
      new TextEncoder().encode(JSON.stringify({ type: "MOUSE_LOCATION", payload: { socketId: "s", pointer: { x: 1, y: 2, tool: "pointer" }, button: "up", username: "A" } })),
    );
    const plain = await decryptPayload(await importRoomKey(roomKey), data, iv);
    expect(isCollabPayload(plain)).toBe(true);
  });

  it("recognises only Excalidraw payload kinds", () => {
    expect(isCollabPayload({ type: "SCENE_INIT", payload: { elements: "x" } })).toBe(false);
    expect(isCollabPayload({ type: "OTHER", payload: {} })).toBe(false);
    expect(isCollabPayload({ type: "IDLE_STATUS", payload: { socketId: "s", userState: "idle", username: "A" } })).toBe(true);
  });
});
