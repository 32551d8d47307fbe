// Vite build of the Convene web app. The output in dist/ is embedded into the `convene` binary by
// crates/server/build.rs, so the app must be fully self-contained: no CDN, no external fonts.
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
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

// Text assets are gzipped at build time so the server sends them compressed without spending CPU
// per request (the binary embeds both forms and picks by Accept-Encoding).
function precompress(): Plugin {
  const compressible = /\.(js|mjs|css|html|json|svg|txt)$/;
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return {
    name: "convene-precompress",
    apply: "build",
    closeBundle: {
      order: "post",
      handler() {
        for (const path of walk(resolve(import.meta.dirname, outDir))) {
          if (!compressible.test(path)) continue;
          const body = readFileSync(path);
          if (body.length < 1024) continue;
          const gz = gzipSync(body, { level: 9 });
          if (gz.length < body.length * 0.9) writeFileSync(`${path}.gz`, gz);
        }
      },
    },
  };
}

const server = process.env.CONVENE_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react(), excalidrawFonts(), precompress()],
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
