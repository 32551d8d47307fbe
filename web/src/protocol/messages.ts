// Signaling wire types: a TypeScript mirror of crates/proto (see docs/protocol.md).
// Every message is a JSON object tagged by `type`; one union per direction. The Vitest suite checks
// these against crates/proto/fixtures/messages.json so both sides stay in step.

/** Bumped on every incompatible change; sent in `join`, received in `welcome`. */
export const PROTOCOL_VERSION = 1;

export type ParticipantId = string;
/** Milliseconds since the Unix epoch, on the server's clock. */
export type Timestamp = number;
export type Metadata = Record<string, unknown>;

export type Role = "moderator" | "participant" | "guest";
export type MediaSource = "microphone" | "camera" | "screen";
export type TrackKind = "audio" | "video";
export type KnockOutcome = "admitted" | "denied" | "left";
export type LeaveReason = "left" | "kicked" | "timeout" | "media_failed";
export const REACTIONS = ["like", "love", "clap", "laugh", "surprised", "boo", "silence"] as const;
export type Reaction = (typeof REACTIONS)[number];

export type ErrorCode =
  | "bad_json"
  | "unknown_type"
  | "bad_message"
  | "too_large"
  | "rate_limited"
  | "unsupported_version"
  | "not_joined"
  | "already_joined"
  | "invalid_room_name"
  | "invalid_value"
  | "forbidden"
  | "not_found"
  | "password_required"
  | "wrong_password"
  | "token_required"
  | "token_invalid"
  | "host_required"
  | "room_full"
  | "resume_failed"
  | "read_only_key"
  | "unavailable"
  | "internal";

export interface ParticipantInfo {
  id: ParticipantId;
  name: string;
  role: Role;
  audio_muted: boolean;
  video_muted: boolean;
  screen_sharing: boolean;
  hand_raised_at?: Timestamp | null;
  joined_at: Timestamp;
  avatar?: string | null;
  email?: string | null;
}

/** A TURN server with credentials minted for this participant: `RTCIceServer`'s shape, passed as is. */
export interface IceServer {
  urls: string[];
  username: string;
  credential: string;
}

export interface RoomInfo {
  name: string;
  locked: boolean;
  lobby_enabled: boolean;
  created_at: Timestamp;
}

export interface ChatMessage {
  id: number;
  from: ParticipantId;
  from_name: string;
  to?: ParticipantId | null;
  text: string;
  sent_at: Timestamp;
}

export interface Knocker {
  id: ParticipantId;
  name: string;
  knocked_at: Timestamp;
}

/** The size in device pixels at which a received video is shown (0 x 0: hidden). */
export interface TileSize {
  width: number;
  height: number;
}

export interface TrackInfo {
  mid: string;
  participant_id: ParticipantId;
  kind: TrackKind;
  source: MediaSource;
}

/** A message from the client to the server. */
export type ClientMessage =
  | { type: "join"; protocol_version: number; display_name?: string | null; password?: string | null }
  | { type: "resume"; protocol_version: number; token: string }
  | { type: "leave" }
  | { type: "set_display_name"; name: string }
  | { type: "set_media_state"; audio_muted?: boolean | null; video_muted?: boolean | null; screen_sharing?: boolean | null }
  | { type: "raise_hand"; raised: boolean }
  | { type: "reaction"; reaction: Reaction }
  | { type: "chat"; text: string; to?: ParticipantId | null }
  | { type: "grant_moderator"; participant: ParticipantId }
  | { type: "mute"; participant: ParticipantId; kind: TrackKind }
  | { type: "mute_all"; kind: TrackKind }
  | { type: "kick"; participant: ParticipantId; reason?: string | null }
  | { type: "end_meeting" }
  | { type: "set_password"; password?: string | null }
  | { type: "set_lobby"; enabled: boolean }
  | { type: "admit"; participant: ParticipantId }
  | { type: "deny"; participant: ParticipantId }
  | { type: "set_metadata"; key: string; value: unknown }
  | { type: "start_recording" }
  | { type: "stop_recording" }
  | { type: "sdp_offer"; sdp: string; sources: Record<string, MediaSource> }
  | { type: "sdp_answer"; sdp: string }
  | { type: "tile_sizes"; tiles: Record<string, TileSize> }
  /** Last-N: camera video of at most `last_n` others (the most recent speakers); 0 = as many as the server sends. */
  | { type: "set_last_n"; last_n: number };

/** A message from the server to the client. */
export type ServerMessage =
  | {
      type: "welcome";
      protocol_version: number;
      you: ParticipantId;
      resume_token: string;
      room: RoomInfo;
      participants: ParticipantInfo[];
      metadata: Metadata;
      chat_history: ChatMessage[];
      knockers: Knocker[];
      /** Empty when TURN is off or unreachable; absent from older servers. Fresh in every welcome. */
      ice_servers?: IceServer[];
    }
  | { type: "participant_joined"; participant: ParticipantInfo }
  | { type: "participant_updated"; participant: ParticipantInfo }
  | { type: "participant_left"; participant: ParticipantId; reason: LeaveReason }
  | { type: "room_updated"; room: RoomInfo }
  | { type: "metadata"; metadata: Metadata }
  | { type: "chat"; message: ChatMessage }
  | { type: "reaction"; participant: ParticipantId; reaction: Reaction }
  | { type: "muted"; kind: TrackKind; by: ParticipantId }
  | { type: "lobby_waiting" }
  | { type: "knock"; knocker: Knocker }
  | { type: "knock_resolved"; participant: ParticipantId; outcome: KnockOutcome; by?: ParticipantId | null }
  | { type: "lobby_denied" }
  | { type: "kicked"; by?: ParticipantId | null; reason?: string | null }
  | { type: "meeting_ended"; by?: ParticipantId | null }
  | { type: "error"; code: ErrorCode; message: string; request?: string | null }
  | { type: "sdp_answer"; sdp: string }
  | { type: "sdp_offer"; sdp: string }
  | { type: "tracks"; tracks: TrackInfo[] }
  | { type: "media_error"; code: string; message: string }
  /** Who holds the floor; null when nobody has spoken yet. */
  | { type: "dominant_speaker"; participant: ParticipantId | null }
  /** Receiving video mids that last-N does not forward right now (show the avatar). */
  | { type: "paused_tracks"; mids: string[] };

export type ServerMessageType = ServerMessage["type"];
export type ClientMessageType = ClientMessage["type"];
/** The member of `ServerMessage` with tag `T`. */
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

export const SERVER_MESSAGE_TYPES: readonly ServerMessageType[] = [
  "welcome",
  "participant_joined",
  "participant_updated",
  "participant_left",
  "room_updated",
  "metadata",
  "chat",
  "reaction",
  "muted",
  "lobby_waiting",
  "knock",
  "knock_resolved",
  "lobby_denied",
  "kicked",
  "meeting_ended",
  "error",
  "sdp_answer",
  "sdp_offer",
  "tracks",
  "media_error",
  "dominant_speaker",
  "paused_tracks",
];

export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = [
  "join",
  "resume",
  "leave",
  "set_display_name",
  "set_media_state",
  "raise_hand",
  "reaction",
  "chat",
  "grant_moderator",
  "mute",
  "mute_all",
  "kick",
  "end_meeting",
  "set_password",
  "set_lobby",
  "admit",
  "deny",
  "set_metadata",
  "start_recording",
  "stop_recording",
  "sdp_offer",
  "sdp_answer",
  "tile_sizes",
  "set_last_n",
];

/**
 * Parses one server text frame. Returns null for anything that is not a known server message, so a
 * newer server's extra message types are ignored rather than breaking the client.
 */
export function parseServerMessage(text: string): ServerMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !(SERVER_MESSAGE_TYPES as readonly string[]).includes(type)) return null;
  return value as ServerMessage;
}
