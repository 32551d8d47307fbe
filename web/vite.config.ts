// Vite build of the Convene web app. The output in dist/ is embedded into the `convene` binary by
// crates/server/build.rs, so the app must be fully self-contained: no CDN, no external fonts.
import { cpSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

const outDir = process.env.CONVENE_WEB_OUT_DIR ?? "dist";

// Excalidraw fetches its fonts at run time from `window.EXCALIDRAW_ASSET_PATH`; without a local copy
// it falls back to a public CDN, which a self-hosted server must not depend on. The CJK fallback
// font (Xiaolai, 13 MB) is left out to keep the binary small; without it CJK text renders in the
// browser's own font.
function excalidrawFonts(): Plugin {
  return {
    name: "convene-excalidraw-fonts",
    apply: "build",
    closeBundle() {
      const src = resolve(import.meta.dirname, "node_modules/@excalidraw/excalidraw/dist/prod/fonts");
      if (!existsSync(src)) throw new Error(`Excalidraw fonts not found at ${src}`);
      cpSync(src, join(resolve(import.meta.dirname, outDir), "excalidraw", "fonts"), {
        recursive: true,
        filter: (path) => !path.includes("Xiaolai"),
      });
    },
  };
}

const server = process.env.CONVENE_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), excalidrawFonts()],
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    sourcemap: false,
  },
  server: {
    proxy: {
      "/api": { target: server, ws: true },
      "/socket.io": { target: server, ws: true },
      "/config.json": { target: server },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
