// Side panels: chat (room and private messages) and the participants pane with the lobby and
// the moderator's room controls.
import { useEffect, useRef, useState } from "react";
import type { ChatMessage, Knocker, ParticipantId, ParticipantInfo, RoomInfo } from "../protocol/messages";
import type { ModeratorActions } from "./Stage";
import { Icon } from "./Icon";
import { t } from "./strings";

export function ChatPanel({
  messages,
  participants,
  you,
  onSend,
  onClose,
}: {
  messages: ChatMessage[];
  participants: ParticipantInfo[];
  you: ParticipantId | null;
  onSend: (text: string, to: ParticipantId | null) => void;
  onClose: () => void;
}) {
  const [text, setText] = useState("");
  const [to, setTo] = useState<ParticipantId | "">("");
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    list.current?.scrollTo({ top: list.current.scrollHeight });
  }, [messages.length]);
  const nameOf = (id: ParticipantId | null | undefined) => participants.find((p) => p.id === id)?.name ?? "?";
  const others = participants.filter((p) => p.id !== you);
  return (
    <aside className="panel chat" aria-label={t.chat} data-testid="chat-panel">
      <header>
        <h2>{t.chat}</h2>
        <button className="icon" aria-label="close" onClick={onClose}>
          ✕
        </button>
      </header>
      <ol className="messages" ref={list}>
        {messages.map((m) => (
          <li key={m.id} className={`${m.from === you ? "mine" : ""}${m.to ? " private" : ""}`} data-testid="chat-message">
            <div className="meta">
              <strong>{m.from === you ? t.you : m.from_name}</strong>
              {m.to && <em>{m.from === you ? t.privateTo(nameOf(m.to)) : t.privateFrom}</em>}
              <time>{new Date(m.sent_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</time>
            </div>
            <p className="text">{m.text}</p>
          </li>
        ))}
      </ol>
      <form
        className="compose"
        onSubmit={(e) => {
          e.preventDefault();
          const body = text.trim();
          if (!body) return;
          onSend(body, to || null);
          setText("");
        }}
      >
        {others.length > 0 && (
          <label className="to">
            {t.sendTo}
            <select value={to} onChange={(e) => setTo(e.target.value)} name="chat-to">
              <option value="">{t.everyone}</option>
              {others.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <div className="row">
          <input
            name="chat-text"
            value={text}
            maxLength={4096}
            placeholder={t.typeMessage}
            onChange={(e) => setText(e.target.value)}
            autoFocus
          />
          <button type="submit" className="primary">
            {t.send}
          </button>
        </div>
      </form>
    </aside>
  );
}

export interface RoomControls {
  muteAll: (kind: "audio" | "video") => void;
  setLobby: (enabled: boolean) => void;
  setPassword: (password: string | null) => void;
  admit: (id: ParticipantId) => void;
  deny: (id: ParticipantId) => void;
  endMeeting: () => void;
}

export function ParticipantsPanel({
  participants,
  knockers,
  room,
  you,
  showModeratorBadge,
  moderatorActions,
  controls,
  onClose,
}: {
  participants: ParticipantInfo[];
  knockers: Knocker[];
  room: RoomInfo | null;
  you: ParticipantId | null;
  showModeratorBadge: boolean;
  moderatorActions: ModeratorActions | null;
  controls: RoomControls | null;
  onClose: () => void;
}) {
  const [password, setPassword] = useState("");
  const ordered = participants
    .slice()
    .sort((a, b) => (a.hand_raised_at ?? Infinity) - (b.hand_raised_at ?? Infinity) || a.joined_at - b.joined_at);
  return (
    <aside className="panel participants" aria-label={t.participants} data-testid="participants-panel">
      <header>
        <h2>
          {t.participants} ({participants.length})
        </h2>
        <button className="icon" aria-label="close" onClick={onClose}>
          ✕
        </button>
      </header>
      {controls && knockers.length > 0 && (
        <section className="lobby-list">
          <h3>{t.lobby}</h3>
          <ul>
            {knockers.map((k) => (
              <li key={k.id}>
                <span>{k.name}</span>
                <button onClick={() => controls.admit(k.id)} data-testid="admit">
                  {t.admit}
                </button>
                <button onClick={() => controls.deny(k.id)}>{t.deny}</button>
              </li>
            ))}
          </ul>
        </section>
      )}
      <ul className="people">
        {ordered.map((p) => (
          <li key={p.id} data-testid="participant-row" data-participant={p.id}>
            <span className="name">
              {p.name}
              {p.id === you && ` (${t.you})`}
            </span>
            <span className="badges">
              {p.hand_raised_at != null && (
                <span title={t.handRaised}>
                  <Icon name="hand" size={14} />
                </span>
              )}
              {showModeratorBadge && p.role === "moderator" && (
                <span title={t.moderator} data-testid="moderator-badge">
                  <Icon name="star" size={14} />
                </span>
              )}
              {p.audio_muted && (
                <span title={t.muted}>
                  <Icon name="micOff" size={14} />
                </span>
              )}
            </span>
            {moderatorActions && p.id !== you && (
              <span className="row-actions">
                <button onClick={() => moderatorActions.mute(p, "audio")} data-testid="mute-participant">
                  {t.muteAudio}
                </button>
                {p.role !== "moderator" && (
                  <button onClick={() => moderatorActions.grant(p)} data-testid="grant-moderator">
                    {t.makeModerator}
                  </button>
                )}
                <button className="danger" onClick={() => moderatorActions.kick(p)} data-testid="kick-participant">
                  {t.kick}
                </button>
              </span>
            )}
          </li>
        ))}
      </ul>
      {controls && room && (
        <section className="room-controls" data-testid="room-controls">
          <button onClick={() => controls.muteAll("audio")}>{t.muteAll}</button>
          <label className="check">
            <input type="checkbox" checked={room.lobby_enabled} onChange={(e) => controls.setLobby(e.target.checked)} />
            {room.lobby_enabled ? t.lobbyOn : t.lobbyOff}
          </label>
          {room.locked ? (
            <button onClick={() => controls.setPassword(null)}>{t.unlock}</button>
          ) : (
            <form
              className="row"
              onSubmit={(e) => {
                e.preventDefault();
                if (password) controls.setPassword(password);
                setPassword("");
              }}
            >
              <input type="password" value={password} placeholder={t.password} onChange={(e) => setPassword(e.target.value)} />
              <button type="submit">{t.lock}</button>
            </form>
          )}
          <button className="danger" onClick={controls.endMeeting} data-testid="end-meeting">
            {t.endForAll}
          </button>
        </section>
      )}
    </aside>
  );
}
