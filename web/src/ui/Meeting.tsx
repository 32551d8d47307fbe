// The meeting: connects to the room, publishes local media, and lays out the stage, side panels,
// toolbar, notifications and the join / lobby / password / ended screens.
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { ClientConfig } from "../protocol/config";
import { Conference, type ConferenceEvent } from "../protocol/conference";
import { REACTIONS, type ParticipantInfo, type Reaction } from "../protocol/messages";
import { isModerator, isPaused, leaveText, participant } from "../protocol/room-state";
import { signalingUrl } from "../protocol/signaling";
import { quality as rateQuality, sample, type Quality, type StatsSample } from "../protocol/stats";
import { generateCollabDetails, parseWhiteboardMetadata, WHITEBOARD_KEY } from "../protocol/whiteboard";
import { openCamera, openMicrophone, prefs } from "./devices";
import { Icon, type IconName } from "./Icon";
import { Logo } from "./Logo";
import { ChatPanel, ParticipantsPanel, type RoomControls } from "./Panels";
import { Stage, type ModeratorActions, type TileModel, type TileSizeReporter } from "./Stage";
import { t } from "./strings";

const Whiteboard = lazy(() => import("./Whiteboard"));

export interface JoinChoices {
  name: string | null;
  jwt: string | null;
  /** Tracks opened on the prejoin page, or "open" to open the devices on entry. */
  microphone: MediaStreamTrack | null | "open";
  camera: MediaStreamTrack | null | "open";
  audioMuted?: boolean;
  videoMuted?: boolean;
  deviceErrors?: { microphone: string | null; camera: string | null };
}

interface Toast {
  id: number;
  text: string;
  kind: "info" | "error";
  action?: { label: string; run: () => void };
}

const REACTION_EMOJI: Record<Reaction, string> = {
  like: "👍",
  love: "❤️",
  clap: "👏",
  laugh: "😂",
  surprised: "😮",
  boo: "👎",
  silence: "🤫",
};

let nextToastId = 1;

/** Last-N choices offered: all videos, or the most recent speakers' only. */
const LAST_N_CHOICES = [0, 1, 2, 4, 9];

export function Meeting({ config, room, choices }: { config: ClientConfig; room: string; choices: JoinChoices }) {
  const conference = useMemo(
    () =>
      new Conference({
        url: signalingUrl(window.location.origin, room, { name: choices.name ?? undefined, jwt: choices.jwt ?? undefined }),
        displayName: choices.name,
      }),
    [room, choices],
  );
  const snap = useSyncExternalStore(conference.subscribe, conference.getSnapshot);
  // Stable, so video tiles report their size once per change rather than on every render.
  const reportSize = useCallback<TileSizeReporter>((mid, size) => conference.media?.setTileSize(mid, size), [conference]);
  const state = snap.room;
  const [, setTrackTick] = useState(0);
  const [mic, setMic] = useState<MediaStreamTrack | null>(null);
  const [cam, setCam] = useState<MediaStreamTrack | null>(null);
  const [screen, setScreen] = useState<MediaStreamTrack | null>(null);
  const [audioMuted, setAudioMuted] = useState(!!choices.audioMuted);
  const [videoMuted, setVideoMuted] = useState(!!choices.videoMuted);
  const [panel, setPanel] = useState<"chat" | "participants" | null>(null);
  const [view, setView] = useState<"tile" | "speaker">("tile");
  const [unread, setUnread] = useState(0);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [floating, setFloating] = useState<{ id: number; emoji: string; name: string }[]>([]);
  const [reactionsOpen, setReactionsOpen] = useState(false);
  /** Last-N: camera videos wanted from the server, 0 for all. */
  const [lastN, setLastN] = useState(0);
  const sentLastN = useRef<{ you: string | null; n: number }>({ you: null, n: 0 });
  const [quality, setQuality] = useState<Quality>("unknown");
  const panelRef = useRef(panel);
  panelRef.current = panel;

  const toast = useCallback((text: string, kind: Toast["kind"] = "info", action?: Toast["action"]) => {
    const id = nextToastId++;
    setToasts((list) => [...list.slice(-4), { id, text, kind, action }]);
    setTimeout(() => setToasts((list) => list.filter((x) => x.id !== id)), kind === "error" ? 8000 : 4000);
  }, []);

  // Connect, publish local media, and leave when the page goes away.
  useEffect(() => {
    let micTrack: MediaStreamTrack | null = null;
    let camTrack: MediaStreamTrack | null = null;
    let stopped = false;
    prefs.addRecentRoom(room);
    const debug = window as unknown as { __convene?: Record<string, unknown> };
    debug.__convene = { conference };
    conference.connect();
    void (async () => {
      const errors: string[] = [];
      if (choices.microphone === "open") {
        const r = await openMicrophone(prefs.microphone());
        micTrack = r.track;
        if (r.error) errors.push(`${t.microphone}: ${r.error}`);
      } else {
        micTrack = choices.microphone;
        if (choices.deviceErrors?.microphone) errors.push(`${t.microphone}: ${choices.deviceErrors.microphone}`);
      }
      if (choices.camera === "open" && !choices.videoMuted) {
        const r = await openCamera(prefs.camera());
        camTrack = r.track;
        if (r.error) errors.push(`${t.camera}: ${r.error}`);
      } else if (choices.camera !== "open") {
        camTrack = choices.camera;
        if (choices.deviceErrors?.camera) errors.push(`${t.camera}: ${choices.deviceErrors.camera}`);
      }
      if (stopped) {
        micTrack?.stop();
        camTrack?.stop();
        return;
      }
      if (micTrack && choices.audioMuted) micTrack.enabled = false;
      setMic(micTrack);
      setCam(camTrack);
      if (!micTrack) setAudioMuted(true);
      if (!camTrack) setVideoMuted(true);
      for (const e of errors) toast(e, "error");
      await conference.startMedia(micTrack, camTrack);
    })();
    const offEvents = conference.onEvent((e) => onEvent(e));
    const offTracks = conference.onRemoteTrack(() => setTrackTick((n) => n + 1));
    const unload = () => conference.leave();
    window.addEventListener("pagehide", unload);
    return () => {
      stopped = true;
      offEvents();
      offTracks();
      window.removeEventListener("pagehide", unload);
      conference.leave();
      micTrack?.stop();
      camTrack?.stop();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [conference]);

  // Tell everyone our mute state once admitted (and again after a fresh join).
  useEffect(() => {
    if (state.phase !== "joined") return;
    conference.send({ type: "set_media_state", audio_muted: audioMuted, video_muted: videoMuted });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.phase, state.you]);

  // Last-N lasts for one media session: ask again after every admission, and on every change.
  // Nothing is sent while "all" was never changed (the server's default).
  useEffect(() => {
    if (state.phase !== "joined") return;
    const prev = sentLastN.current;
    const fresh = prev.you !== state.you;
    if ((fresh && lastN === 0) || (!fresh && prev.n === lastN)) {
      sentLastN.current = { you: state.you, n: lastN };
      return;
    }
    conference.send({ type: "set_last_n", last_n: lastN });
    sentLastN.current = { you: state.you, n: lastN };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [state.phase, state.you, lastN]);

  const nameOf = (id: string | null | undefined) =>
    participant(conference.getSnapshot().room, id ?? null)?.name ?? "Someone";

  const onEvent = (e: ConferenceEvent) => {
    switch (e.kind) {
      case "joined":
        toast(t.joinedToast(e.participant.name));
        break;
      case "left":
        toast(t.leftToast(e.participant.name, leaveText(e.reason)));
        break;
      case "chat":
        if (!e.mine && panelRef.current !== "chat") {
          setUnread((n) => n + 1);
          toast(`${e.message.from_name}: ${e.message.text.slice(0, 80)}`);
        }
        break;
      case "reaction": {
        const id = nextToastId++;
        setFloating((list) => [...list.slice(-9), { id, emoji: REACTION_EMOJI[e.reaction], name: nameOf(e.participant) }]);
        setTimeout(() => setFloating((list) => list.filter((x) => x.id !== id)), 3000);
        break;
      }
      case "muted":
        applyForcedMute(e.trackKind);
        toast(t.mutedBy(e.trackKind === "audio" ? t.microphone.toLowerCase() : t.camera.toLowerCase(), nameOf(e.by)));
        break;
      case "knock":
        toast(t.knocking(e.knocker.name), "info", {
          label: t.admit,
          run: () => conference.send({ type: "admit", participant: e.knocker.id }),
        });
        break;
      case "hand_raised":
        toast(t.handToast(e.participant.name));
        break;
      case "role_changed":
        toast(t.becameModerator(e.participant.name));
        break;
      case "error":
        toast(e.message, "error");
        break;
      case "media_error":
        toast(`${t.mediaFailed} ${e.message}`, "error");
        break;
    }
  };

  // --- local media controls ---

  const micRef = useRef(mic);
  micRef.current = mic;
  const camRef = useRef(cam);
  camRef.current = cam;

  function applyForcedMute(kind: "audio" | "video") {
    if (kind === "audio") {
      if (micRef.current) micRef.current.enabled = false;
      setAudioMuted(true);
    } else {
      camRef.current?.stop();
      setCam(null);
      void conference.setLocalTrack("camera", null);
      setVideoMuted(true);
    }
  }

  const toggleMic = async () => {
    if (!mic) {
      const r = await openMicrophone(prefs.microphone());
      if (!r.track) return toast(`${t.microphone}: ${r.error}`, "error");
      setMic(r.track);
      await conference.setLocalTrack("microphone", r.track);
      setAudioMuted(false);
      conference.send({ type: "set_media_state", audio_muted: false });
      return;
    }
    const muted = !audioMuted;
    mic.enabled = !muted;
    setAudioMuted(muted);
    conference.send({ type: "set_media_state", audio_muted: muted });
  };

  const toggleCamera = async () => {
    if (videoMuted) {
      const r = await openCamera(prefs.camera());
      if (!r.track) return toast(`${t.camera}: ${r.error}`, "error");
      setCam(r.track);
      await conference.setLocalTrack("camera", r.track);
      setVideoMuted(false);
      conference.send({ type: "set_media_state", video_muted: false });
    } else {
      // Stopping the track turns the camera light off; the sender keeps its slot for a later unmute.
      cam?.stop();
      setCam(null);
      await conference.setLocalTrack("camera", null);
      setVideoMuted(true);
      conference.send({ type: "set_media_state", video_muted: true });
    }
  };

  const toggleScreen = async () => {
    const media = conference.media;
    if (!media) return;
    if (screen) {
      screen.stop();
      setScreen(null);
      await media.setScreen(null);
      conference.send({ type: "set_media_state", screen_sharing: false });
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      const track = stream.getVideoTracks()[0];
      track.onended = () => {
        setScreen(null);
        void media.setScreen(null);
        conference.send({ type: "set_media_state", screen_sharing: false });
      };
      setScreen(track);
      await media.setScreen(track);
      conference.send({ type: "set_media_state", screen_sharing: true });
    } catch (e) {
      toast(`${t.shareScreen}: ${e instanceof Error ? e.message : String(e)}`, "error");
    }
  };

  const me = participant(state, state.you);
  const moderator = isModerator(state);
  const board = parseWhiteboardMetadata(state.metadata[WHITEBOARD_KEY]);
  const recording = !!(state.metadata.recording as { active?: boolean } | undefined)?.active;

  const toggleHand = () => conference.send({ type: "raise_hand", raised: me?.hand_raised_at == null });

  const toggleWhiteboard = async () => {
    if (!moderator) return toast(t.whiteboardModeratorOnly, "error");
    if (board) {
      conference.send({ type: "set_metadata", key: WHITEBOARD_KEY, value: null });
    } else {
      const collabDetails = await generateCollabDetails();
      conference.send({
        type: "set_metadata",
        key: WHITEBOARD_KEY,
        value: { collabDetails, collabServerUrl: `${window.location.origin}/` },
      });
    }
  };

  // The server owns the `recording` key: it starts the recorder and then tells everyone through it.
  const toggleRecording = () => {
    if (!moderator) return toast(t.recordModeratorOnly, "error");
    conference.send({ type: recording ? "stop_recording" : "start_recording" });
  };

  const togglePanel = (which: "chat" | "participants") => {
    setPanel((p) => (p === which ? null : which));
    if (which === "chat") setUnread(0);
  };

  // Keyboard shortcuts; typing in a field or drawing on the whiteboard takes precedence.
  const shortcuts = useRef<Record<string, () => void>>({});
  shortcuts.current = {
    m: () => void toggleMic(),
    v: () => void toggleCamera(),
    c: () => togglePanel("chat"),
    r: toggleHand,
    w: () => void toggleWhiteboard(),
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
      const target = e.target as HTMLElement | null;
      if (target?.closest("input, textarea, select, [contenteditable], .excalidraw")) return;
      const action = shortcuts.current[e.key.toLowerCase()];
      if (action) {
        e.preventDefault();
        action();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // Stats: connection quality, once a second. The speaker comes from the server.
  useEffect(() => {
    let prev: StatsSample | null = null;
    const timer = setInterval(async () => {
      const pc = conference.media?.pc;
      if (!pc) return;
      try {
        const report = await pc.getStats();
        const cur = sample(report.values() as Iterable<Record<string, unknown>>, Date.now());
        setQuality(rateQuality(prev, cur));
        prev = cur;
      } catch {
        // A closed connection has no stats; the next session will.
      }
    }, 1000);
    return () => clearInterval(timer);
  }, [conference]);

  // --- rendering ---

  if (state.phase === "ended") return <Ended config={config} state={state} nameOf={nameOf} />;
  if (state.phase === "password") return <PasswordForm error={state.passwordError} onSubmit={(p) => conference.joinWithPassword(p)} />;
  if (state.phase === "lobby") return <Waiting text={t.lobbyWaiting} />;
  if (snap.transport === "failed") {
    return <Failure title={t.failed} help={t.failedHelp} detail={snap.transportDetail} />;
  }
  if (state.phase === "joining") return <Waiting text={t.connecting} />;

  const media = conference.media;
  const infoFor = (pid: string, source: "camera" | "screen") =>
    state.tracks.find((x) => x.participant_id === pid && x.source === source);
  const trackFor = (pid: string, source: "camera" | "screen") => {
    const info = infoFor(pid, source);
    return info && media ? (media.remoteTrack(info.mid) ?? null) : null;
  };
  const cameraPaused = (pid: string) => {
    const info = infoFor(pid, "camera");
    return !!info && isPaused(state, info.mid);
  };
  const tiles: TileModel[] = [];
  for (const p of state.participants) {
    const self = p.id === state.you;
    const shown: ParticipantInfo = self ? { ...p, audio_muted: audioMuted, video_muted: videoMuted } : p;
    const paused = !self && cameraPaused(p.id);
    const camMid = self ? undefined : infoFor(p.id, "camera")?.mid;
    tiles.push({ key: p.id, participant: shown, track: self ? cam : trackFor(p.id, "camera"), screen: false, self, paused, mid: camMid });
    const screenTrack = self ? screen : p.screen_sharing ? trackFor(p.id, "screen") : null;
    const screenMid = self ? undefined : infoFor(p.id, "screen")?.mid;
    if (screenTrack) {
      tiles.push({ key: `${p.id}:screen`, participant: shown, track: screenTrack, screen: true, self, paused: false, mid: screenMid });
    }
  }
  const speakerId = state.dominantSpeaker;
  const audioTracks = state.tracks
    .filter((x) => x.kind === "audio")
    .map((x) => ({ mid: x.mid, track: media?.remoteTrack(x.mid) ?? null }));

  const moderatorActions: ModeratorActions | null = moderator
    ? {
        mute: (p, kind) => conference.send({ type: "mute", participant: p.id, kind }),
        grant: (p) => conference.send({ type: "grant_moderator", participant: p.id }),
        kick: (p) => conference.send({ type: "kick", participant: p.id }),
      }
    : null;
  const controls: RoomControls | null = moderator
    ? {
        muteAll: (kind) => conference.send({ type: "mute_all", kind }),
        setLobby: (enabled) => conference.send({ type: "set_lobby", enabled }),
        setPassword: (password) => conference.send({ type: "set_password", password }),
        admit: (id) => conference.send({ type: "admit", participant: id }),
        deny: (id) => conference.send({ type: "deny", participant: id }),
        endMeeting: () => conference.send({ type: "end_meeting" }),
      }
    : null;

  return (
    <div className={`meeting${panel ? " with-panel" : ""}`} data-testid="meeting" data-moderator={moderator ? "true" : "false"}>
      {snap.transport === "reconnecting" && (
        <div className="banner warning" role="status" data-testid="reconnecting">
          {t.reconnecting}
        </div>
      )}
      {snap.media === "failed" && (
        <div className="banner error" role="alert">
          {t.mediaFailed} {t.mediaFailedHelp}
        </div>
      )}
      <div className="topbar">
        <span className="room-name">{state.room?.name ?? room}</span>
        {recording && (
          <span className="rec" data-testid="recording-indicator">
            ● {t.recording}
          </span>
        )}
        {state.room?.locked && (
          <span title={t.passwordTitle}>
            <Icon name="lock" size={16} />
          </span>
        )}
        <label className="last-n" title={t.lastNTitle}>
          {t.lastN}{" "}
          <select data-testid="last-n" value={lastN} onChange={(e) => setLastN(Number(e.target.value))}>
            {LAST_N_CHOICES.map((n) => (
              <option key={n} value={n}>
                {n === 0 ? t.lastNAll : n}
              </option>
            ))}
          </select>
        </label>
        <span className="count">
          <Icon name="people" size={16} /> {state.participants.length}
        </span>
      </div>
      <div className="content">
        {board ? (
          <Suspense fallback={<div className="stage loading">{t.connecting}</div>}>
            <Whiteboard board={board} username={me?.name ?? ""} />
          </Suspense>
        ) : (
          <Stage
            tiles={tiles}
            view={view}
            speaker={speakerId}
            quality={quality}
            showModeratorBadge={config.moderator_indicator}
            moderatorActions={moderatorActions}
            reportSize={reportSize}
          />
        )}
        {panel === "chat" && (
          <ChatPanel
            messages={state.chat}
            participants={state.participants}
            you={state.you}
            onSend={(text, to) => conference.send({ type: "chat", text, to })}
            onClose={() => setPanel(null)}
          />
        )}
        {panel === "participants" && (
          <ParticipantsPanel
            participants={state.participants}
            knockers={state.knockers}
            room={state.room}
            you={state.you}
            showModeratorBadge={config.moderator_indicator}
            moderatorActions={moderatorActions}
            controls={controls}
            onClose={() => setPanel(null)}
          />
        )}
      </div>
      {state.participants.length === 1 && !board && (
        <div className="alone">
          <p>{t.nobodyElse}</p>
          <button
            onClick={() => {
              void navigator.clipboard?.writeText(window.location.href.split("?")[0]).then(() => toast(t.copied));
            }}
          >
            {t.copyLink}
          </button>
        </div>
      )}
      {config.watermark && (
        <div className="watermark" aria-hidden>
          <Logo config={config} size={28} />
        </div>
      )}
      <div className="floating-reactions" aria-live="polite">
        {floating.map((r) => (
          <span key={r.id} className="float" title={r.name}>
            {r.emoji}
          </span>
        ))}
      </div>
      <div className="toasts" aria-live="polite">
        {toasts.map((x) => (
          <div key={x.id} className={`toast ${x.kind}`} data-testid="toast">
            <span>{x.text}</span>
            {x.action && <button onClick={x.action.run}>{x.action.label}</button>}
          </div>
        ))}
      </div>
      {audioTracks.map((a) => (
        <RemoteAudio key={a.mid} track={a.track} />
      ))}
      <nav className="toolbar" aria-label="meeting controls" title={t.shortcuts}>
        <ToolButton testid="toggle-mic" active={!audioMuted} label={t.toggleMic} icon={audioMuted ? "micOff" : "mic"} onClick={() => void toggleMic()} />
        <ToolButton testid="toggle-camera" active={!videoMuted} label={t.toggleCamera} icon={videoMuted ? "cameraOff" : "camera"} onClick={() => void toggleCamera()} />
        {typeof navigator.mediaDevices?.getDisplayMedia === "function" && (
          <ToolButton testid="toggle-screen" active={!!screen} label={screen ? t.stopShare : t.shareScreen} icon="screen" onClick={() => void toggleScreen()} />
        )}
        <ToolButton testid="toggle-chat" active={panel === "chat"} label={t.toggleChat} icon="chat" badge={unread} onClick={() => togglePanel("chat")} />
        <ToolButton
          testid="toggle-participants"
          active={panel === "participants"}
          label={t.toggleParticipants}
          icon="people"
          badge={moderator ? state.knockers.length : 0}
          onClick={() => togglePanel("participants")}
        />
        <ToolButton testid="raise-hand" active={me?.hand_raised_at != null} label={me?.hand_raised_at != null ? t.lowerHand : t.raiseHand} icon="hand" onClick={toggleHand} />
        <div className="reactions-wrap">
          <ToolButton testid="reactions" active={reactionsOpen} label={t.reactions} icon="smile" onClick={() => setReactionsOpen((o) => !o)} />
          {reactionsOpen && (
            <div className="reactions-menu" role="menu">
              {REACTIONS.map((r) => (
                <button
                  key={r}
                  role="menuitem"
                  aria-label={r}
                  onClick={() => {
                    conference.send({ type: "reaction", reaction: r });
                    setReactionsOpen(false);
                  }}
                >
                  {REACTION_EMOJI[r]}
                </button>
              ))}
            </div>
          )}
        </div>
        <ToolButton testid="toggle-view" active={view === "speaker"} label={view === "tile" ? t.speakerView : t.tileView} icon={view === "tile" ? "speaker" : "grid"} onClick={() => setView((v) => (v === "tile" ? "speaker" : "tile"))} />
        {moderator && (
          <ToolButton testid="toggle-whiteboard" active={!!board} label={board ? t.closeWhiteboard : t.whiteboard} icon="pen" onClick={() => void toggleWhiteboard()} />
        )}
        {moderator && (
          <ToolButton testid="toggle-record" active={recording} label={recording ? t.stopRecord : t.record} icon="record" onClick={toggleRecording} />
        )}
        <button
          className="tool leave"
          data-testid="leave"
          onClick={() => {
            conference.leave();
          }}
        >
          {t.leave}
        </button>
      </nav>
    </div>
  );
}

function ToolButton(props: { testid: string; active: boolean; label: string; icon: IconName; badge?: number; onClick: () => void }) {
  return (
    <button
      className={`tool${props.active ? " active" : ""}`}
      data-testid={props.testid}
      aria-pressed={props.active}
      aria-label={props.label}
      title={props.label}
      onClick={props.onClick}
    >
      <Icon name={props.icon} />
      {!!props.badge && (
        <span className="count-badge" data-testid={`${props.testid}-badge`}>
          {props.badge}
        </span>
      )}
    </button>
  );
}

function RemoteAudio({ track }: { track: MediaStreamTrack | null }) {
  const ref = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    ref.current.srcObject = track ? new MediaStream([track]) : null;
    if (track) void ref.current.play().catch(() => {});
  }, [track]);
  return <audio ref={ref} autoPlay />;
}

function Waiting({ text }: { text: string }) {
  return (
    <main className="center-screen" data-testid="waiting">
      <div className="spinner" aria-hidden />
      <p>{text}</p>
    </main>
  );
}

function Failure({ title, help, detail }: { title: string; help: string; detail: string | null }) {
  return (
    <main className="center-screen" data-testid="failure" role="alert">
      <h1>{title}</h1>
      <p>{help}</p>
      {detail && <p className="detail">{detail}</p>}
      <button className="primary" onClick={() => window.location.reload()}>
        {t.retry}
      </button>
    </main>
  );
}

function PasswordForm({ error, onSubmit }: { error: string | null; onSubmit: (password: string) => void }) {
  const [password, setPassword] = useState("");
  return (
    <main className="center-screen">
      <h1>{t.passwordTitle}</h1>
      <form
        className="password-form"
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(password);
        }}
      >
        <input type="password" name="password" autoFocus placeholder={t.password} value={password} onChange={(e) => setPassword(e.target.value)} />
        <button type="submit" className="primary">
          {t.submit}
        </button>
      </form>
      {error && (
        <p className="warning" role="alert">
          {error}
        </p>
      )}
    </main>
  );
}

function Ended({
  config,
  state,
  nameOf,
}: {
  config: ClientConfig;
  state: ReturnType<Conference["getSnapshot"]>["room"];
  nameOf: (id: string | null) => string;
}) {
  const e = state.ended;
  let text: string = t.left;
  if (e?.kind === "kicked") text = t.kicked(e.by ? nameOf(e.by) : null);
  else if (e?.kind === "meeting_ended") text = t.meetingEnded;
  else if (e?.kind === "lobby_denied") text = t.lobbyDenied;
  else if (e?.kind === "error") text = e.message;
  return (
    <main className="center-screen" data-testid="ended">
      <Logo config={config} size={48} />
      <h1>{text}</h1>
      <div className="row">
        <button className="primary" onClick={() => window.location.reload()}>
          {t.rejoin}
        </button>
        <a className="button" href="/">
          {t.home}
        </a>
      </div>
    </main>
  );
}
