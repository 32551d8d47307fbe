// Top-level routing: `/` is the welcome page, `/<room>` the prejoin page then the meeting.
import { useState } from "react";
import type { ClientConfig } from "../protocol/config";
import { nameFromToken, normalizeRoomName } from "../protocol/config";
import { Meeting, type JoinChoices } from "./Meeting";
import { Prejoin } from "./Prejoin";
import { Welcome } from "./Welcome";
import { prefs } from "./devices";

export function App({ config }: { config: ClientConfig }) {
  const path = decodeURIComponent(window.location.pathname.replace(/^\/+/, "").split("/")[0] ?? "");
  if (!path) return <Welcome config={config} />;
  return <Room config={config} room={normalizeRoomName(path) || path} />;
}

function Room({ config, room }: { config: ClientConfig; room: string }) {
  const params = new URLSearchParams(window.location.search);
  const jwt = params.get("jwt") || null;
  // Name precedence as on the server: the URL's ?name=, then the token's, then the last one used.
  const urlName = params.get("name")?.trim() || nameFromToken(jwt);
  const [choices, setChoices] = useState<JoinChoices | null>(() =>
    config.prejoin
      ? null
      : { name: urlName ?? (prefs.name() || null), microphone: "open", camera: "open", jwt },
  );
  if (!choices) {
    return (
      <Prejoin
        config={config}
        room={room}
        initialName={urlName ?? prefs.name()}
        onJoin={(c) => {
          if (c.name) prefs.setName(c.name);
          setChoices({ ...c, jwt });
        }}
      />
    );
  }
  return <Meeting config={config} room={room} choices={choices} />;
}
