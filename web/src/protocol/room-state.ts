// The conference state a client holds, and the pure function that applies one server message to it.
// Kept free of IO so every transition is unit-tested; the UI renders whatever this produces.

import type {
  ChatMessage,
  Knocker,
  LeaveReason,
  Metadata,
  ParticipantId,
  ParticipantInfo,
  RoomInfo,
  ServerMessage,
  TrackInfo,
} from "./messages";

export type Phase =
  /** Socket not yet open or `join` not yet answered. */
  | "joining"
  /** The room is locked: ask for a password and `join` again. */
  | "password"
  /** Waiting in the lobby for a moderator. */
  | "lobby"
  /** In the meeting. */
  | "joined"
  /** Over for this client; `ended` says why. */
  | "ended";

export type EndReason =
  | { kind: "left" }
  | { kind: "kicked"; by: ParticipantId | null; reason: string | null }
  | { kind: "meeting_ended"; by: ParticipantId | null }
  | { kind: "lobby_denied" }
  | { kind: "error"; code: string; message: string };

export interface RoomState {
  phase: Phase;
  you: ParticipantId | null;
  resumeToken: string | null;
  room: RoomInfo | null;
  /** In join order. */
  participants: ParticipantInfo[];
  metadata: Metadata;
  chat: ChatMessage[];
  knockers: Knocker[];
  /** What each receiving mid carries. */
  tracks: TrackInfo[];
  /** Who holds the floor, as the server hears it (RFC 6464 audio levels). */
  dominantSpeaker: ParticipantId | null;
  /** Receiving video mids that last-N does not forward now: show the avatar, not a frozen frame. */
  pausedMids: string[];
  /** The last password error, shown on the password form. */
  passwordError: string | null;
  ended: EndReason | null;
}

export const initialRoomState: RoomState = {
  phase: "joining",
  you: null,
  resumeToken: null,
  room: null,
  participants: [],
  metadata: {},
  chat: [],
  knockers: [],
  tracks: [],
  dominantSpeaker: null,
  pausedMids: [],
  passwordError: null,
  ended: null,
};

/** Longest chat history kept in memory. */
export const MAX_CHAT = 500;

function upsert(list: ParticipantInfo[], p: ParticipantInfo): ParticipantInfo[] {
  const i = list.findIndex((x) => x.id === p.id);
  if (i < 0) return [...list, p];
  const next = list.slice();
  next[i] = p;
  return next;
}

function mergeChat(existing: ChatMessage[], incoming: ChatMessage[]): ChatMessage[] {
  // After a resume the server sends its history again; ids let us drop what we already have.
  const seen = new Set(existing.map((m) => m.id));
  const merged = existing.concat(incoming.filter((m) => !seen.has(m.id)));
  merged.sort((a, b) => a.id - b.id);
  return merged.length > MAX_CHAT ? merged.slice(merged.length - MAX_CHAT) : merged;
}

/** Applies one server message. Messages that do not change the room state return `state` itself. */
export function reduce(state: RoomState, msg: ServerMessage): RoomState {
  switch (msg.type) {
    case "welcome":
      return {
        ...state,
        phase: "joined",
        you: msg.you,
        resumeToken: msg.resume_token,
        room: msg.room,
        participants: msg.participants.slice().sort((a, b) => a.joined_at - b.joined_at),
        metadata: msg.metadata,
        chat: mergeChat(state.chat, msg.chat_history),
        knockers: msg.knockers,
        // A (re)admission opens a new media session, which sends its own list.
        pausedMids: [],
        passwordError: null,
        ended: null,
      };
    case "participant_joined":
    case "participant_updated":
      return { ...state, participants: upsert(state.participants, msg.participant) };
    case "participant_left":
      return {
        ...state,
        participants: state.participants.filter((p) => p.id !== msg.participant),
        tracks: state.tracks.filter((t) => t.participant_id !== msg.participant),
        // The server names the next speaker; until then nobody is shown as speaking.
        dominantSpeaker: state.dominantSpeaker === msg.participant ? null : state.dominantSpeaker,
      };
    case "room_updated":
      return { ...state, room: msg.room };
    case "metadata":
      return { ...state, metadata: msg.metadata };
    case "chat":
      return { ...state, chat: mergeChat(state.chat, [msg.message]) };
    case "lobby_waiting":
      return { ...state, phase: "lobby" };
    case "knock":
      return {
        ...state,
        knockers: [...state.knockers.filter((k) => k.id !== msg.knocker.id), msg.knocker],
      };
    case "knock_resolved":
      return { ...state, knockers: state.knockers.filter((k) => k.id !== msg.participant) };
    case "lobby_denied":
      return { ...state, phase: "ended", ended: { kind: "lobby_denied" } };
    case "kicked":
      return { ...state, phase: "ended", ended: { kind: "kicked", by: msg.by ?? null, reason: msg.reason ?? null } };
    case "meeting_ended":
      return { ...state, phase: "ended", ended: { kind: "meeting_ended", by: msg.by ?? null } };
    case "tracks":
      return { ...state, tracks: msg.tracks };
    case "dominant_speaker":
      return { ...state, dominantSpeaker: msg.participant };
    case "paused_tracks":
      return { ...state, pausedMids: msg.mids };
    case "error":
      return reduceError(state, msg.code, msg.message);
    default:
      return state;
  }
}

/** Errors that decide the join flow change the phase; others are for toasts only. */
function reduceError(state: RoomState, code: string, message: string): RoomState {
  if (state.phase === "joined") return state;
  switch (code) {
    case "password_required":
      return { ...state, phase: "password", passwordError: null };
    case "wrong_password":
      return { ...state, phase: "password", passwordError: message };
    case "unsupported_version":
    case "token_required":
    case "token_invalid":
    case "host_required":
    case "room_full":
    case "invalid_room_name":
    case "unavailable":
      return { ...state, phase: "ended", ended: { kind: "error", code, message } };
    default:
      return state;
  }
}

/** Marks the state as left on purpose. */
export function leave(state: RoomState): RoomState {
  return { ...state, phase: "ended", ended: { kind: "left" } };
}

export function participant(state: RoomState, id: ParticipantId | null): ParticipantInfo | undefined {
  return id === null ? undefined : state.participants.find((p) => p.id === id);
}

export function isModerator(state: RoomState): boolean {
  return participant(state, state.you)?.role === "moderator";
}

/** Participants with a raised hand, earliest first. */
export function raisedHands(state: RoomState): ParticipantInfo[] {
  return state.participants
    .filter((p) => p.hand_raised_at != null)
    .sort((a, b) => (a.hand_raised_at ?? 0) - (b.hand_raised_at ?? 0));
}

/** Human text for why someone left, for toasts. */
export function leaveText(reason: LeaveReason): string {
  switch (reason) {
    case "left":
      return "left";
    case "kicked":
      return "was removed";
    case "timeout":
      return "lost connection";
    case "media_failed":
      return "lost media connection";
  }
}

/** Whether the video on `mid` is paused by last-N. */
export function isPaused(state: RoomState, mid: string): boolean {
  return state.pausedMids.includes(mid);
}
