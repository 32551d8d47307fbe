// Room state transitions: what the UI will show after each server message.

import { describe, expect, it } from "vitest";
import type { ChatMessage, ParticipantInfo, ServerMessage } from "./messages";
import { MAX_CHAT, initialRoomState, isModerator, isPaused, raisedHands, reduce, type RoomState } from "./room-state";

const room = { name: "standup", locked: false, lobby_enabled: false, created_at: 1 };

function person(id: string, extra: Partial<ParticipantInfo> = {}): ParticipantInfo {
  return {
    id,
    name: id.toUpperCase(),
    role: "participant",
    audio_muted: false,
    video_muted: false,
    screen_sharing: false,
    hand_raised_at: null,
    joined_at: 10,
    ...extra,
  };
}

function chat(id: number, text = `m${id}`): ChatMessage {
  return { id, from: "a", from_name: "A", to: null, text, sent_at: id };
}

function welcome(extra: Partial<Extract<ServerMessage, { type: "welcome" }>> = {}): ServerMessage {
  return {
    type: "welcome",
    protocol_version: 1,
    you: "a",
    resume_token: "t1",
    room,
    participants: [person("b", { joined_at: 20 }), person("a", { role: "moderator", joined_at: 5 })],
    metadata: {},
    chat_history: [chat(1)],
    knockers: [],
    ...extra,
  };
}

function run(...msgs: ServerMessage[]): RoomState {
  return msgs.reduce(reduce, initialRoomState);
}

describe("room state", () => {
  it("welcome admits and orders participants by join time", () => {
    const s = run(welcome());
    expect(s.phase).toBe("joined");
    expect(s.participants.map((p) => p.id)).toEqual(["a", "b"]);
    expect(isModerator(s)).toBe(true);
    expect(s.resumeToken).toBe("t1");
  });

  it("tracks joins, updates and leaves, and forgets the leaver's tracks", () => {
    const s = run(
      welcome(),
      { type: "participant_joined", participant: person("c") },
      { type: "participant_updated", participant: person("c", { audio_muted: true }) },
      { type: "tracks", tracks: [{ mid: "3", participant_id: "c", kind: "video", source: "camera" }] },
    );
    expect(s.participants.find((p) => p.id === "c")?.audio_muted).toBe(true);
    expect(s.tracks).toHaveLength(1);
    const after = reduce(s, { type: "participant_left", participant: "c", reason: "left" });
    expect(after.participants.map((p) => p.id)).toEqual(["a", "b"]);
    expect(after.tracks).toEqual([]);
  });

  it("follows the dominant speaker and the paused mids", () => {
    const s = run(
      welcome(),
      { type: "participant_joined", participant: person("c") },
      { type: "dominant_speaker", participant: "b" },
      { type: "paused_tracks", mids: ["3", "5"] },
    );
    expect(s.dominantSpeaker).toBe("b");
    expect(isPaused(s, "3")).toBe(true);
    expect(isPaused(s, "4")).toBe(false);
    const resumed = reduce(s, { type: "paused_tracks", mids: ["5"] });
    expect(isPaused(resumed, "3")).toBe(false);
    // The speaker leaving clears it until the server names the next one; others leaving do not.
    expect(reduce(s, { type: "participant_left", participant: "c", reason: "left" }).dominantSpeaker).toBe("b");
    const gone = reduce(s, { type: "participant_left", participant: "b", reason: "left" });
    expect(gone.dominantSpeaker).toBeNull();
    expect(reduce(gone, { type: "dominant_speaker", participant: "a" }).dominantSpeaker).toBe("a");
    expect(reduce(s, { type: "dominant_speaker", participant: null }).dominantSpeaker).toBeNull();
    // A new admission (resume) starts a new media session: nothing is paused until it says so.
    expect(reduce(s, welcome()).pausedMids).toEqual([]);
  });

  it("merges chat history after a resume without duplicates", () => {
    const s = run(welcome(), { type: "chat", message: chat(2) }, welcome({ chat_history: [chat(1), chat(2), chat(3)] }));
    expect(s.chat.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it("keeps at most MAX_CHAT messages", () => {
    let s = run(welcome({ chat_history: [] }));
    for (let i = 1; i <= MAX_CHAT + 5; i++) s = reduce(s, { type: "chat", message: chat(i) });
    expect(s.chat).toHaveLength(MAX_CHAT);
    expect(s.chat[0].id).toBe(6);
  });

  it("password flow: required, then wrong, then admitted", () => {
    let s = run({ type: "error", code: "password_required", message: "locked" });
    expect(s.phase).toBe("password");
    s = reduce(s, { type: "error", code: "wrong_password", message: "wrong password" });
    expect(s.phase).toBe("password");
    expect(s.passwordError).toBe("wrong password");
    s = reduce(s, welcome());
    expect(s.phase).toBe("joined");
    expect(s.passwordError).toBeNull();
  });

  it("lobby: waiting, then denied ends it", () => {
    const s = run({ type: "lobby_waiting" });
    expect(s.phase).toBe("lobby");
    expect(reduce(s, { type: "lobby_denied" }).ended).toEqual({ kind: "lobby_denied" });
  });

  it("knocks are listed until resolved", () => {
    const s = run(welcome(), { type: "knock", knocker: { id: "k", name: "K", knocked_at: 1 } });
    expect(s.knockers).toHaveLength(1);
    expect(reduce(s, { type: "knock_resolved", participant: "k", outcome: "admitted", by: "a" }).knockers).toEqual([]);
  });

  it("fatal join errors end the session, later errors do not", () => {
    expect(run({ type: "error", code: "room_full", message: "full" }).phase).toBe("ended");
    expect(run(welcome(), { type: "error", code: "forbidden", message: "no" }).phase).toBe("joined");
  });

  it("kick and meeting end say who did it", () => {
    expect(run(welcome(), { type: "kicked", by: "b", reason: "spam" }).ended).toEqual({ kind: "kicked", by: "b", reason: "spam" });
    expect(run(welcome(), { type: "meeting_ended" }).ended).toEqual({ kind: "meeting_ended", by: null });
  });

  it("orders raised hands by when they went up", () => {
    const s = run(
      welcome(),
      { type: "participant_updated", participant: person("b", { hand_raised_at: 50 }) },
      { type: "participant_updated", participant: person("a", { role: "moderator", hand_raised_at: 40 }) },
    );
    expect(raisedHands(s).map((p) => p.id)).toEqual(["a", "b"]);
  });
});
