// Keeps the TypeScript mirror honest: every example in crates/proto/fixtures/messages.json (written
// from the Rust types) must match the shapes declared in messages.ts, and the lists of types must agree.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLIENT_MESSAGE_TYPES,
  PROTOCOL_VERSION,
  SERVER_MESSAGE_TYPES,
  parseServerMessage,
  type ClientMessage,
  type ErrorCode,
  type ServerMessage,
} from "./messages";

interface Fixtures {
  protocol_version: number;
  client: Record<string, unknown>[];
  server: Record<string, unknown>[];
  error_codes: string[];
}

const fixtures: Fixtures = JSON.parse(
  readFileSync(resolve(import.meta.dirname, "../../../crates/proto/fixtures/messages.json"), "utf8"),
);

type Shape<M> = { required: (keyof M)[]; optional: (keyof M)[] };
type Shapes<U extends { type: string }> = { [T in U["type"]]: Shape<Extract<U, { type: T }>> };

// The key lists are checked against the TS types by the compiler (keyof), and against the fixtures below.
const serverShapes: Shapes<ServerMessage> = {
  welcome: {
    required: ["type", "protocol_version", "you", "resume_token", "room", "participants", "metadata", "chat_history", "knockers"],
    optional: ["ice_servers"],
  },
  participant_joined: { required: ["type", "participant"], optional: [] },
  participant_updated: { required: ["type", "participant"], optional: [] },
  participant_left: { required: ["type", "participant", "reason"], optional: [] },
  room_updated: { required: ["type", "room"], optional: [] },
  metadata: { required: ["type", "metadata"], optional: [] },
  chat: { required: ["type", "message"], optional: [] },
  reaction: { required: ["type", "participant", "reaction"], optional: [] },
  muted: { required: ["type", "kind", "by"], optional: [] },
  lobby_waiting: { required: ["type"], optional: [] },
  knock: { required: ["type", "knocker"], optional: [] },
  knock_resolved: { required: ["type", "participant", "outcome"], optional: ["by"] },
  lobby_denied: { required: ["type"], optional: [] },
  kicked: { required: ["type"], optional: ["by", "reason"] },
  meeting_ended: { required: ["type"], optional: ["by"] },
  error: { required: ["type", "code", "message"], optional: ["request"] },
  sdp_answer: { required: ["type", "sdp"], optional: [] },
  sdp_offer: { required: ["type", "sdp"], optional: [] },
  tracks: { required: ["type", "tracks"], optional: [] },
  media_error: { required: ["type", "code", "message"], optional: [] },
  dominant_speaker: { required: ["type", "participant"], optional: [] },
  paused_tracks: { required: ["type", "mids"], optional: [] },
};

const clientShapes: Shapes<ClientMessage> = {
  join: { required: ["type", "protocol_version"], optional: ["display_name", "password"] },
  resume: { required: ["type", "protocol_version", "token"], optional: [] },
  leave: { required: ["type"], optional: [] },
  set_display_name: { required: ["type", "name"], optional: [] },
  set_media_state: { required: ["type"], optional: ["audio_muted", "video_muted", "screen_sharing"] },
  raise_hand: { required: ["type", "raised"], optional: [] },
  reaction: { required: ["type", "reaction"], optional: [] },
  chat: { required: ["type", "text"], optional: ["to"] },
  grant_moderator: { required: ["type", "participant"], optional: [] },
  mute: { required: ["type", "participant", "kind"], optional: [] },
  mute_all: { required: ["type", "kind"], optional: [] },
  kick: { required: ["type", "participant"], optional: ["reason"] },
  end_meeting: { required: ["type"], optional: [] },
  set_password: { required: ["type"], optional: ["password"] },
  set_lobby: { required: ["type", "enabled"], optional: [] },
  admit: { required: ["type", "participant"], optional: [] },
  deny: { required: ["type", "participant"], optional: [] },
  set_metadata: { required: ["type", "key", "value"], optional: [] },
  start_recording: { required: ["type"], optional: [] },
  stop_recording: { required: ["type"], optional: [] },
  sdp_offer: { required: ["type", "sdp", "sources"], optional: [] },
  sdp_answer: { required: ["type", "sdp"], optional: [] },
  tile_sizes: { required: ["type", "tiles"], optional: [] },
  set_last_n: { required: ["type", "last_n"], optional: [] },
};

const participantKeys = ["id", "name", "role", "audio_muted", "video_muted", "screen_sharing", "hand_raised_at", "joined_at", "avatar", "email"];
const errorCodes: Record<ErrorCode, true> = {
  bad_json: true,
  unknown_type: true,
  bad_message: true,
  too_large: true,
  rate_limited: true,
  unsupported_version: true,
  not_joined: true,
  already_joined: true,
  invalid_room_name: true,
  invalid_value: true,
  forbidden: true,
  not_found: true,
  password_required: true,
  wrong_password: true,
  token_required: true,
  token_invalid: true,
  host_required: true,
  room_full: true,
  resume_failed: true,
  read_only_key: true,
  unavailable: true,
  internal: true,
};

function checkShape(msg: Record<string, unknown>, shape: Shape<unknown> | undefined) {
  expect(shape, `no shape for ${String(msg.type)}`).toBeDefined();
  const keys = Object.keys(msg);
  for (const key of shape!.required) expect(keys, `${String(msg.type)} lacks ${String(key)}`).toContain(key);
  const allowed = new Set<string>([...shape!.required, ...shape!.optional].map(String));
  for (const key of keys) expect(allowed.has(key), `${String(msg.type)} has unexpected ${key}`).toBe(true);
}

describe("shared protocol fixture", () => {
  it("has the same protocol version", () => {
    expect(fixtures.protocol_version).toBe(PROTOCOL_VERSION);
  });

  it("covers exactly the message types the client knows", () => {
    expect(new Set(fixtures.server.map((m) => m.type))).toEqual(new Set(SERVER_MESSAGE_TYPES));
    expect(new Set(fixtures.client.map((m) => m.type))).toEqual(new Set(CLIENT_MESSAGE_TYPES));
    expect(Object.keys(serverShapes).sort()).toEqual([...SERVER_MESSAGE_TYPES].sort());
    expect(Object.keys(clientShapes).sort()).toEqual([...CLIENT_MESSAGE_TYPES].sort());
  });

  it("server messages parse and match their declared shapes", () => {
    for (const msg of fixtures.server) {
      const parsed = parseServerMessage(JSON.stringify(msg));
      expect(parsed, JSON.stringify(msg)).not.toBeNull();
      checkShape(msg, serverShapes[msg.type as ServerMessage["type"]] as Shape<unknown>);
    }
  });

  it("client messages match their declared shapes", () => {
    for (const msg of fixtures.client) {
      checkShape(msg, clientShapes[msg.type as ClientMessage["type"]] as Shape<unknown>);
    }
  });

  it("participant records have the fields the UI reads", () => {
    const joined = fixtures.server.find((m) => m.type === "participant_joined")!;
    expect(Object.keys(joined.participant as object).sort()).toEqual([...participantKeys].sort());
  });

  it("error codes agree", () => {
    expect(new Set(fixtures.error_codes)).toEqual(new Set(Object.keys(errorCodes)));
  });

  it("ignores what is not a server message", () => {
    for (const frame of ["not json", "[1]", "null", '{"type":"teleport"}', '{"kind":"chat"}', "{\"type\":7}"]) {
      expect(parseServerMessage(frame)).toBeNull();
    }
  });
});
