// Client config parsing and room names.

import { describe, expect, it } from "vitest";
import { DEFAULT_CLIENT_CONFIG, nameFromToken, normalizeRoomName, parseClientConfig, suggestRoomName } from "./config";

describe("client config", () => {
  it("merges known fields of the right type over the defaults", () => {
    const c = parseClientConfig({ app_name: "Acme", prejoin: false, watermark: "no", extra: 1 });
    expect(c).toEqual({ ...DEFAULT_CLIENT_CONFIG, app_name: "Acme", prejoin: false });
    expect(parseClientConfig(null)).toEqual(DEFAULT_CLIENT_CONFIG);
  });
});

describe("room names", () => {
  it("are lower-cased URL segments the server accepts", () => {
    expect(normalizeRoomName("  Weekly Standup! ")).toBe("weekly-standup");
    expect(normalizeRoomName("..hidden.room")).toBe("hidden.room");
    expect(normalizeRoomName("Team_Sync.v2")).toBe("team_sync.v2");
    expect(normalizeRoomName("x".repeat(80))).toHaveLength(64);
  });

  it("suggestions are valid room names", () => {
    for (let i = 0; i < 50; i++) {
      const name = suggestRoomName();
      expect(normalizeRoomName(name)).toBe(name);
      expect(name).toMatch(/^[a-z]+-[a-z]+-[a-z]+-\d+$/);
    }
  });
});

describe("name from token", () => {
  const encode = (claims: object) =>
    `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;

  it("reads context.user.name, UTF-8 included", () => {
    expect(nameFromToken(encode({ context: { user: { name: "Zoë Ångström" } } }))).toBe("Zoë Ångström");
  });

  it("is null for anything else", () => {
    expect(nameFromToken(null)).toBeNull();
    expect(nameFromToken("garbage")).toBeNull();
    expect(nameFromToken("a.!!!.c")).toBeNull();
    expect(nameFromToken(encode({ sub: "x" }))).toBeNull();
  });
});
