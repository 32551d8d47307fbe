// Whiteboard collaboration, Excalidraw's wire format: the room metadata value that opens a board,
// AES-GCM payload encryption, and a socket.io session against the relay at /socket.io/.
// The relay only sees ciphertext; the key travels in the room metadata (as Jitsi does), never to it.

import { io, type Socket } from "socket.io-client";

/** Room metadata key whose value opens the whiteboard for everyone; deleting it closes the board. */
export const WHITEBOARD_KEY = "whiteboard";

export interface CollabDetails {
  /** 20 hex characters, as Excalidraw generates. */
  roomId: string;
  /** A 128-bit AES-GCM key as the `k` of its JWK (22 base64url characters). */
  roomKey: string;
}

export interface WhiteboardMetadata {
  collabDetails: CollabDetails;
  collabServerUrl: string;
}

const ROOM_ID = /^[0-9a-f]{20}$/;
const ROOM_KEY = /^[A-Za-z0-9_-]{22}$/;

/** Reads the `whiteboard` metadata value; anything malformed means "no board". */
export function parseWhiteboardMetadata(value: unknown): WhiteboardMetadata | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as { collabDetails?: unknown; collabServerUrl?: unknown };
  const d = v.collabDetails as { roomId?: unknown; roomKey?: unknown } | undefined;
  if (typeof d !== "object" || d === null) return null;
  if (typeof d.roomId !== "string" || !ROOM_ID.test(d.roomId)) return null;
  if (typeof d.roomKey !== "string" || !ROOM_KEY.test(d.roomKey)) return null;
  const url = typeof v.collabServerUrl === "string" ? v.collabServerUrl : "";
  return { collabDetails: { roomId: d.roomId, roomKey: d.roomKey }, collabServerUrl: url };
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh room id and key, generated the way Excalidraw does. */
export async function generateCollabDetails(): Promise<CollabDetails> {
  const roomId = hex(crypto.getRandomValues(new Uint8Array(10)));
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, true, ["encrypt", "decrypt"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  if (!jwk.k) throw new Error("the browser exported an AES key without its `k`");
  return { roomId, roomKey: jwk.k };
}

export function importRoomKey(roomKey: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "jwk",
    { alg: "A128GCM", ext: true, k: roomKey, key_ops: ["encrypt", "decrypt"], kty: "oct" },
    { name: "AES-GCM", length: 128 },
    false,
    ["encrypt", "decrypt"],
  );
}

export const IV_LENGTH = 12;

export async function encryptPayload(key: CryptoKey, payload: unknown): Promise<{ data: ArrayBuffer; iv: Uint8Array }> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_LENGTH));
  const plain = new TextEncoder().encode(JSON.stringify(payload));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain);
  return { data, iv };
}

function toBytes(value: unknown): Uint8Array | null {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

/** Decrypts one broadcast; null when it is not ours to read (wrong key, tampered, not JSON). */
export async function decryptPayload(key: CryptoKey, data: unknown, iv: unknown): Promise<unknown | null> {
  const bytes = toBytes(data);
  const ivBytes = toBytes(iv);
  if (!bytes || !ivBytes || ivBytes.byteLength !== IV_LENGTH) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: ivBytes as Uint8Array<ArrayBuffer> },
      key,
      bytes as Uint8Array<ArrayBuffer>,
    );
    return JSON.parse(new TextDecoder().decode(plain));
  } catch {
    return null;
  }
}

/** Excalidraw's collab payload kinds (inside the ciphertext). */
export type CollabPayload =
  | { type: "SCENE_INIT"; payload: { elements: readonly unknown[] } }
  | { type: "SCENE_UPDATE"; payload: { elements: readonly unknown[] } }
  | {
      type: "MOUSE_LOCATION";
      payload: {
        socketId: string;
        pointer: { x: number; y: number; tool: "pointer" | "laser" };
        button: "down" | "up";
        selectedElementIds?: Record<string, true>;
        username: string;
      };
    }
  | { type: "IDLE_STATUS"; payload: { socketId: string; userState: string; username: string } }
  | { type: "USER_VISIBLE_SCENE_BOUNDS"; payload: { socketId: string; username: string; sceneBounds: unknown } };

export function isCollabPayload(value: unknown): value is CollabPayload {
  if (typeof value !== "object" || value === null) return false;
  const v = value as { type?: unknown; payload?: unknown };
  if (typeof v.payload !== "object" || v.payload === null) return false;
  switch (v.type) {
    case "SCENE_INIT":
    case "SCENE_UPDATE":
      return Array.isArray((v.payload as { elements?: unknown }).elements);
    case "MOUSE_LOCATION":
    case "IDLE_STATUS":
    case "USER_VISIBLE_SCENE_BOUNDS":
      return typeof (v.payload as { socketId?: unknown }).socketId === "string";
    default:
      return false;
  }
}

export interface CollabHandlers {
  /** Alone in the room: this client's scene is the board. */
  onFirstInRoom?: () => void;
  /** Someone joined: send them the whole scene. */
  onNewUser?: (socketId: string) => void;
  onPayload?: (payload: CollabPayload) => void;
  onUsers?: (socketIds: string[]) => void;
  onConnection?: (connected: boolean) => void;
}

/**
 * One client's socket.io session for one board, speaking the excalidraw-room protocol:
 * `init-room` → `join-room`, then `server-broadcast` / `client-broadcast` with encrypted payloads.
 */
export class CollabSession {
  private readonly socket: Socket;
  private key: CryptoKey | null = null;
  private readonly ready: Promise<void>;

  constructor(
    private readonly details: CollabDetails,
    serverUrl: string,
    private readonly handlers: CollabHandlers,
  ) {
    this.ready = importRoomKey(details.roomKey).then((k) => {
      this.key = k;
    });
    const options = { transports: ["websocket", "polling"], path: "/socket.io/" };
    this.socket = serverUrl ? io(serverUrl, options) : io(options);
    this.socket.on("init-room", () => this.socket.emit("join-room", details.roomId));
    this.socket.on("first-in-room", () => handlers.onFirstInRoom?.());
    this.socket.on("new-user", (id: unknown) => {
      if (typeof id === "string") handlers.onNewUser?.(id);
    });
    this.socket.on("room-user-change", (ids: unknown) => {
      if (Array.isArray(ids)) handlers.onUsers?.(ids.filter((x): x is string => typeof x === "string"));
    });
    this.socket.on("client-broadcast", (data: unknown, iv: unknown) => void this.receive(data, iv));
    this.socket.on("connect", () => handlers.onConnection?.(true));
    this.socket.on("disconnect", () => handlers.onConnection?.(false));
  }

  get id(): string | undefined {
    return this.socket.id;
  }

  /** Sends a payload to everyone else on the board; `volatile` may be dropped under load (pointers). */
  async broadcast(payload: CollabPayload, volatile = false): Promise<void> {
    await this.ready;
    if (!this.key || !this.socket.connected) return;
    const { data, iv } = await encryptPayload(this.key, payload);
    const event = volatile ? "server-volatile-broadcast" : "server-broadcast";
    (volatile ? this.socket.volatile : this.socket).emit(event, this.details.roomId, data, iv);
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }

  private async receive(data: unknown, iv: unknown): Promise<void> {
    await this.ready;
    if (!this.key) return;
    const payload = await decryptPayload(this.key, data, iv);
    if (isCollabPayload(payload)) this.handlers.onPayload?.(payload);
  }
}
