// The meeting stage: the tile grid or the active-speaker view, with name labels, badges, the
// connection-quality dot and the moderator menu on each tile.
import { useEffect, useRef, useState } from "react";
import type { ParticipantInfo, TileSize } from "../protocol/messages";
import type { Quality } from "../protocol/stats";
import { Icon } from "./Icon";
import { t } from "./strings";

export interface TileModel {
  key: string;
  participant: ParticipantInfo;
  track: MediaStreamTrack | null;
  screen: boolean;
  self: boolean;
  /** The server does not forward this camera now (last-N): show the avatar, not a frozen frame. */
  paused: boolean;
  /** The receiving mid of a remote video, whose drawn size is reported to the server. */
  mid?: string;
}

/** Tells the server at what size a received video is drawn (null: no longer drawn). */
export type TileSizeReporter = (mid: string, size: TileSize | null) => void;

export interface ModeratorActions {
  mute: (p: ParticipantInfo, kind: "audio" | "video") => void;
  grant: (p: ParticipantInfo) => void;
  kick: (p: ParticipantInfo) => void;
}

interface StageProps {
  tiles: TileModel[];
  view: "tile" | "speaker";
  speaker: string | null;
  quality: Quality;
  showModeratorBadge: boolean;
  moderatorActions: ModeratorActions | null;
  reportSize?: TileSizeReporter;
}

/**
 * The size in device pixels the picture is drawn at: the element's box, scaled to the video's
 * aspect ratio the way object-fit draws it (cover overflows the box, contain fits inside it).
 */
function drawnSize(el: HTMLVideoElement): TileSize {
  const box = el.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = [box.width * dpr, box.height * dpr];
  const [vw, vh] = [el.videoWidth, el.videoHeight];
  if (w === 0 || h === 0 || vw === 0 || vh === 0) return { width: Math.round(w), height: Math.round(h) };
  const fit = getComputedStyle(el).objectFit;
  const scale = fit === "contain" ? Math.min(w / vw, h / vh) : Math.max(w / vw, h / vh);
  return { width: Math.round(vw * scale), height: Math.round(vh * scale) };
}

export function VideoView({
  track,
  mirrored,
  mid,
  reportSize,
}: {
  track: MediaStreamTrack | null;
  mirrored?: boolean;
  mid?: string;
  reportSize?: TileSizeReporter;
}) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.srcObject = track ? new MediaStream([track]) : null;
    if (track) void el.play().catch(() => {});
  }, [track]);
  useEffect(() => {
    const el = ref.current;
    if (!el || mid === undefined || !reportSize) return;
    const report = () => reportSize(mid, drawnSize(el));
    report();
    // The box changes with the layout; the video's own size arrives with its first frame.
    const observer = new ResizeObserver(report);
    observer.observe(el);
    el.addEventListener("resize", report);
    return () => {
      observer.disconnect();
      el.removeEventListener("resize", report);
      reportSize(mid, null);
    };
  }, [mid, reportSize, track]);
  return <video ref={ref} autoPlay playsInline muted className={mirrored ? "mirrored" : undefined} />;
}

function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]?.toUpperCase() ?? "")
    .join("");
}

function Tile({
  tile,
  big,
  speaking,
  quality,
  showModeratorBadge,
  moderatorActions,
  reportSize,
}: {
  tile: TileModel;
  big?: boolean;
  speaking: boolean;
  quality: Quality;
  showModeratorBadge: boolean;
  moderatorActions: ModeratorActions | null;
  reportSize?: TileSizeReporter;
}) {
  const p = tile.participant;
  const [menu, setMenu] = useState(false);
  const showVideo = tile.track !== null && !tile.paused && (tile.screen || !p.video_muted);
  return (
    <div
      className={`tile${big ? " big" : ""}${speaking ? " speaking" : ""}${tile.screen ? " screen" : ""}`}
      data-testid="tile"
      data-participant={p.id}
      data-name={p.name}
      data-self={tile.self ? "true" : "false"}
      data-paused={tile.paused ? "true" : "false"}
      data-speaking={speaking ? "true" : "false"}
    >
      {showVideo ? (
        <VideoView track={tile.track} mirrored={tile.self && !tile.screen} mid={tile.mid} reportSize={reportSize} />
      ) : (
        <div className="avatar" aria-hidden>
          {p.avatar ? <img src={p.avatar} alt="" /> : initials(p.name)}
        </div>
      )}
      <div className="tile-label">
        {!tile.screen && p.audio_muted && (
          <span className="badge muted" title={t.muted}>
            <Icon name="micOff" size={14} />
          </span>
        )}
        {!tile.screen && p.hand_raised_at != null && (
          <span className="badge hand" title={t.handRaised}>
            <Icon name="hand" size={14} />
          </span>
        )}
        {showModeratorBadge && !tile.screen && p.role === "moderator" && (
          <span className="badge moderator" title={t.moderator} data-testid="moderator-badge">
            <Icon name="star" size={14} />
          </span>
        )}
        <span className="tile-name" data-testid="tile-name">
          {tile.screen ? `${p.name} (screen)` : tile.self ? `${p.name} (${t.you})` : p.name}
        </span>
      </div>
      {tile.self && !tile.screen && <span className={`quality ${quality}`} title={t.quality[quality]} />}
      {moderatorActions && !tile.self && !tile.screen && (
        <div className="tile-menu">
          <button className="icon" aria-label={t.more} data-testid="tile-menu" onClick={() => setMenu((m) => !m)}>
            <Icon name="more" size={18} />
          </button>
          {menu && (
            <div className="menu" role="menu" onMouseLeave={() => setMenu(false)}>
              <button role="menuitem" onClick={() => moderatorActions.mute(p, "audio")}>
                {t.muteAudio}
              </button>
              <button role="menuitem" onClick={() => moderatorActions.mute(p, "video")}>
                {t.muteVideo}
              </button>
              {p.role !== "moderator" && (
                <button role="menuitem" onClick={() => moderatorActions.grant(p)}>
                  {t.makeModerator}
                </button>
              )}
              <button role="menuitem" className="danger" onClick={() => moderatorActions.kick(p)}>
                {t.kick}
              </button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}

export function Stage({ tiles, view, speaker, quality, showModeratorBadge, moderatorActions, reportSize }: StageProps) {
  const common = { quality, showModeratorBadge, moderatorActions, reportSize };
  if (view === "speaker" && tiles.length > 1) {
    // A shared screen wins the big spot; then the active speaker; then the first other person.
    const main =
      tiles.find((x) => x.screen) ??
      tiles.find((x) => x.participant.id === speaker && !x.self) ??
      tiles.find((x) => !x.self) ??
      tiles[0];
    return (
      <div className="stage speaker-view" data-testid="speaker-view" data-main={main.participant.id}>
        <div className="main-tile">
          <Tile tile={main} big speaking={main.participant.id === speaker && !main.screen} {...common} />
        </div>
        <div className="filmstrip">
          {tiles
            .filter((x) => x !== main)
            .map((x) => (
              <Tile key={x.key} tile={x} speaking={x.participant.id === speaker && !x.screen} {...common} />
            ))}
        </div>
      </div>
    );
  }
  const columns = Math.ceil(Math.sqrt(tiles.length));
  return (
    <div className="stage tile-view" style={{ ["--columns" as string]: columns }}>
      {tiles.map((x) => (
        <Tile key={x.key} tile={x} speaking={x.participant.id === speaker && !x.screen} {...common} />
      ))}
    </div>
  );
}
