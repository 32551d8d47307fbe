// The welcome page: app name and logo, a meeting name field with a random suggestion, recent meetings.
import { useMemo, useState } from "react";
import { normalizeRoomName, suggestRoomName, type ClientConfig } from "../protocol/config";
import { prefs } from "./devices";
import { Logo } from "./Logo";
import { t } from "./strings";

export function Welcome({ config }: { config: ClientConfig }) {
  const suggestion = useMemo(() => suggestRoomName(), []);
  const [name, setName] = useState("");
  const recent = useMemo(() => prefs.recentRooms(), []);
  if (!config.welcome_page) {
    return (
      <main className="welcome">
        <header className="brand">
          <Logo config={config} size={56} />
          <h1>{config.app_name}</h1>
        </header>
        <p className="lead">{t.noWelcome}</p>
      </main>
    );
  }
  const go = (room: string) => {
    const normalized = normalizeRoomName(room) || suggestion;
    window.location.assign(`/${encodeURIComponent(normalized)}`);
  };
  return (
    <main className="welcome">
      <header className="brand">
        <Logo config={config} size={56} />
        <h1>{config.app_name}</h1>
      </header>
      <h2>{t.welcomeTitle}</h2>
      <p className="lead">{t.welcomeLead}</p>
      <form
        className="start"
        onSubmit={(e) => {
          e.preventDefault();
          go(name);
        }}
      >
        <label htmlFor="room-name" className="visually-hidden">
          {t.roomLabel}
        </label>
        <input
          id="room-name"
          name="room"
          autoFocus
          value={name}
          placeholder={suggestion}
          onChange={(e) => setName(e.target.value)}
          autoComplete="off"
        />
        <button type="submit" className="primary">
          {t.start}
        </button>
      </form>
      {recent.length > 0 && (
        <section className="recent">
          <h3>{t.recentRooms}</h3>
          <ul>
            {recent.map((r) => (
              <li key={r}>
                <a href={`/${encodeURIComponent(r)}`}>{r}</a>
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
