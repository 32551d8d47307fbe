// The client configuration the server publishes at /config.json (the `[ui]` section of its config).

export interface ClientConfig {
  app_name: string;
  /** URL of the logo image, or empty for the built-in mark. */
  logo_url: string;
  /** CSS colour of buttons and highlights. */
  accent_color: string;
  /** Show the logo watermark over the meeting. */
  watermark: boolean;
  /** Show the welcome page at `/`; when off, `/` asks for nothing and shows only the app name. */
  welcome_page: boolean;
  /** Show the prejoin page (name, devices) before entering a meeting. */
  prejoin: boolean;
  /** Show the moderator badge on tiles and in the participants pane. */
  moderator_indicator: boolean;
}

export const DEFAULT_CLIENT_CONFIG: ClientConfig = {
  app_name: "Convene",
  logo_url: "",
  accent_color: "#2f80ed",
  watermark: true,
  welcome_page: true,
  prejoin: true,
  moderator_indicator: true,
};

/** Merges a fetched config over the defaults, ignoring fields of the wrong type. */
export function parseClientConfig(value: unknown): ClientConfig {
  const out: ClientConfig = { ...DEFAULT_CLIENT_CONFIG };
  if (typeof value !== "object" || value === null) return out;
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(DEFAULT_CLIENT_CONFIG) as (keyof ClientConfig)[]) {
    const expected = typeof DEFAULT_CLIENT_CONFIG[key];
    if (typeof v[key] === expected) (out as unknown as Record<string, unknown>)[key] = v[key];
  }
  return out;
}

/** Longest room name the server accepts by default. */
export const MAX_ROOM_NAME = 64;

/**
 * Turns what someone typed into a room name the server accepts (docs/protocol.md): lower-case
 * letters, digits, `-`, `_` and `.`, not starting with `.`, at most 64 characters.
 */
export function normalizeRoomName(input: string): string {
  return input
    .trim()
    .toLowerCase()
    .replace(/\s+/g, "-")
    .replace(/[^a-z0-9._-]/g, "")
    .replace(/^\.+/, "")
    .slice(0, MAX_ROOM_NAME);
}

const ADJECTIVES = ["brave", "calm", "bright", "quiet", "swift", "gentle", "bold", "lucky", "merry", "wise"];
const NOUNS = ["otters", "falcons", "maples", "rivers", "comets", "lanterns", "harbors", "meadows", "pines", "tides"];
const VERBS = ["meet", "plan", "sketch", "gather", "build", "chat", "sync", "review", "dream", "talk"];

/** A readable random room name such as "brave-otters-sketch-42". */
export function suggestRoomName(random: () => number = Math.random): string {
  const pick = (list: string[]) => list[Math.floor(random() * list.length) % list.length];
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${pick(VERBS)}-${Math.floor(random() * 100)}`;
}

/**
 * The display name inside a Jitsi-style token (`context.user.name`), read without verifying it: it
 * only pre-fills the name field; the server verifies the token and decides.
 */
export function nameFromToken(jwt: string | null): string | null {
  if (!jwt) return null;
  const part = jwt.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as { context?: { user?: { name?: unknown } } };
    const name = claims.context?.user?.name;
    return typeof name === "string" && name.trim() ? name.trim() : null;
  } catch {
    return null;
  }
}
