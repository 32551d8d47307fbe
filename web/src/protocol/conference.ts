// A participant's whole connection to a meeting: the signaling transport, the room state it keeps,
// the join / resume / password flow, and the media session. DOM-free; the UI subscribes to it.

import {
  PROTOCOL_VERSION,
  type ClientMessage,
  type Knocker,
  type LeaveReason,
  type ParticipantId,
  type ParticipantInfo,
  type Reaction,
  type ServerMessage,
  type TrackKind,
  type ChatMessage,
  type ErrorCode,
  type IceServer,
} from "./messages";
import { MediaSession, type MediaSessionOptions } from "./media";
import { initialRoomState, leave, reduce, type RoomState } from "./room-state";
import { SignalingTransport, type SocketFactory, type TransportState } from "./signaling";

/** Things that happened, for notifications; the state itself is in the snapshot. */
export type ConferenceEvent =
  | { kind: "joined"; participant: ParticipantInfo }
  | { kind: "left"; participant: ParticipantInfo; reason: LeaveReason }
  | { kind: "chat"; message: ChatMessage; mine: boolean }
  | { kind: "reaction"; participant: ParticipantId; reaction: Reaction }
  | { kind: "muted"; trackKind: TrackKind; by: ParticipantId }
  | { kind: "knock"; knocker: Knocker }
  | { kind: "hand_raised"; participant: ParticipantInfo }
  | { kind: "role_changed"; participant: ParticipantInfo }
  | { kind: "error"; code: ErrorCode; message: string; request: string | null }
  | { kind: "media_error"; message: string };

export type MediaState = RTCPeerConnectionState | "off";

export interface ConferenceSnapshot {
  room: RoomState;
  transport: TransportState;
  /** Why the transport is reconnecting or failed. */
  transportDetail: string | null;
  media: MediaState;
}

export interface ConferenceOptions {
  url: string;
  displayName: string | null;
  createSocket?: SocketFactory;
  backoffMs?: readonly number[];
  /** For tests; browsers use `new RTCPeerConnection`. */
  media?: Pick<MediaSessionOptions, "createPeerConnection" | "answerTimeoutMs">;
}

export class Conference {
  private readonly transport: SignalingTransport;
  private snapshot: ConferenceSnapshot = {
    room: initialRoomState,
    transport: "connecting",
    transportDetail: null,
    media: "off",
  };
  private readonly listeners = new Set<() => void>();
  private readonly eventListeners = new Set<(e: ConferenceEvent) => void>();
  private displayName: string | null;
  private password: string | null = null;
  private mediaSession: MediaSession | null = null;
  /** From the last `welcome`: credentials expire, so every welcome replaces them. */
  private iceServers: IceServer[] = [];
  private localTracks: { microphone: MediaStreamTrack | null; camera: MediaStreamTrack | null } | null = null;
  private readonly remoteTrackListeners = new Set<() => void>();

  constructor(private readonly options: ConferenceOptions) {
    this.displayName = options.displayName;
    this.transport = new SignalingTransport({
      url: options.url,
      createSocket: options.createSocket,
      backoffMs: options.backoffMs,
    });
    this.transport.onOpen = (reconnect) => {
      const token = this.snapshot.room.resumeToken;
      if (reconnect && token && this.snapshot.room.phase === "joined") {
        this.transport.send({ type: "resume", protocol_version: PROTOCOL_VERSION, token });
      } else {
        this.sendJoin();
      }
    };
    this.transport.onState = (state, detail) => {
      this.update({ transport: state, transportDetail: detail ?? null });
    };
    this.transport.onMessage = (msg) => this.receive(msg);
  }

  // --- subscription (shaped for React's useSyncExternalStore) ---

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): ConferenceSnapshot => this.snapshot;

  onEvent(listener: (e: ConferenceEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Fires when a remote track arrives (the snapshot's `tracks` says whose it is). */
  onRemoteTrack(listener: () => void): () => void {
    this.remoteTrackListeners.add(listener);
    return () => this.remoteTrackListeners.delete(listener);
  }

  get media(): MediaSession | null {
    return this.mediaSession;
  }

  // --- actions ---

  connect(): void {
    this.transport.connect();
  }

  /** Answers a `password_required` / `wrong_password`. */
  joinWithPassword(password: string): void {
    this.password = password;
    this.sendJoin();
  }

  send(msg: ClientMessage): boolean {
    return this.transport.send(msg);
  }

  /** Publishes local tracks (null = that device is absent or denied) once joined. */
  async startMedia(microphone: MediaStreamTrack | null, camera: MediaStreamTrack | null): Promise<void> {
    this.localTracks = { microphone, camera };
    if (this.snapshot.room.phase === "joined") await this.openMedia();
  }

  /** Changes what the microphone or camera sends (null: nothing), without renegotiation. */
  async setLocalTrack(source: "microphone" | "camera", track: MediaStreamTrack | null): Promise<void> {
    this.localTracks = { microphone: null, camera: null, ...this.localTracks, [source]: track };
    await this.mediaSession?.replaceTrack(source, track);
  }

  leave(): void {
    this.transport.send({ type: "leave" });
    this.shutdown();
    this.update({ room: leave(this.snapshot.room) });
  }

  /** Stops everything without telling the server (page unload). */
  shutdown(): void {
    this.transport.close();
    this.mediaSession?.close();
    this.mediaSession = null;
  }

  // --- internals ---

  private sendJoin(): void {
    this.transport.send({
      type: "join",
      protocol_version: PROTOCOL_VERSION,
      display_name: this.displayName,
      password: this.password,
    });
  }

  private async openMedia(): Promise<void> {
    if (this.mediaSession || !this.localTracks) return;
    const session = new MediaSession({
      ...this.options.media,
      iceServers: this.iceServers,
      send: (msg) => this.transport.send(msg),
      onRemoteTrack: () => this.remoteTrackListeners.forEach((l) => l()),
      onConnectionState: (state) => this.update({ media: state }),
      onError: (message) => this.emit({ kind: "media_error", message }),
    });
    this.mediaSession = session;
    this.update({ media: session.pc.connectionState });
    try {
      await session.start(this.localTracks.microphone, this.localTracks.camera);
    } catch (e) {
      // A session replaced meanwhile fails on purpose; only the current one's failure is news.
      if (this.mediaSession === session) {
        this.emit({ kind: "media_error", message: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** Replaces the media session with a new one that sends the same local tracks. */
  private restartMedia(): void {
    if (this.mediaSession) {
      // Keep the local tracks alive: close() would stop them.
      this.mediaSession.close({ keepTracks: true });
      this.mediaSession = null;
    }
    this.update({ media: "off" });
    void this.openMedia();
  }

  private receive(msg: ServerMessage): void {
    if (msg.type === "media_error" && msg.code === "media_closed") {
      // The server lost our media transport (ICE or DTLS failed) while signaling survived: start over.
      this.emit({ kind: "media_error", message: "media connection lost; reconnecting media" });
      this.restartMedia();
      return;
    }
    if (this.mediaSession?.handle(msg)) return;
    const before = this.snapshot.room;
    if (msg.type === "error" && msg.code === "resume_failed") {
      // Our place is gone: join afresh, and media starts over with it.
      this.mediaSession?.close({ keepTracks: true });
      this.mediaSession = null;
      this.update({ room: { ...initialRoomState, chat: before.chat }, media: "off" });
      this.sendJoin();
      return;
    }
    if (msg.type === "welcome") {
      this.iceServers = msg.ice_servers ?? [];
      // On a fresh join the session is replaced below with these; on a resume it keeps running.
      if (before.you === msg.you) this.mediaSession?.setIceServers(this.iceServers);
    }
    const room = reduce(before, msg);
    if (room !== before) this.update({ room });
    this.emitFor(msg, before, room);
    if (msg.type === "welcome" && before.you !== msg.you) {
      // A fresh join (not a resume) needs a fresh media session.
      this.restartMedia();
    }
    if (room.phase === "ended" && before.phase !== "ended") this.shutdown();
  }

  private emitFor(msg: ServerMessage, before: RoomState, after: RoomState): void {
    switch (msg.type) {
      case "participant_joined":
        if (msg.participant.id !== after.you) this.emit({ kind: "joined", participant: msg.participant });
        break;
      case "participant_updated": {
        const old = before.participants.find((p) => p.id === msg.participant.id);
        if (old && old.hand_raised_at == null && msg.participant.hand_raised_at != null) {
          this.emit({ kind: "hand_raised", participant: msg.participant });
        }
        if (old && old.role !== msg.participant.role) this.emit({ kind: "role_changed", participant: msg.participant });
        break;
      }
      case "participant_left": {
        const old = before.participants.find((p) => p.id === msg.participant);
        if (old) this.emit({ kind: "left", participant: old, reason: msg.reason });
        break;
      }
      case "chat":
        this.emit({ kind: "chat", message: msg.message, mine: msg.message.from === after.you });
        break;
      case "reaction":
        this.emit({ kind: "reaction", participant: msg.participant, reaction: msg.reaction });
        break;
      case "muted":
        this.emit({ kind: "muted", trackKind: msg.kind, by: msg.by });
        break;
      case "knock":
        this.emit({ kind: "knock", knocker: msg.knocker });
        break;
      case "error":
        this.emit({ kind: "error", code: msg.code, message: msg.message, request: msg.request ?? null });
        break;
      case "media_error":
        this.emit({ kind: "media_error", message: msg.message });
        break;
      default:
        break;
    }
  }

  private emit(e: ConferenceEvent): void {
    for (const l of this.eventListeners) l(e);
  }

  private update(patch: Partial<ConferenceSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of this.listeners) l();
  }
}
