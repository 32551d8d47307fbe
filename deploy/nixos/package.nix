# The `convene` binary with its web app embedded: `pkgs.callPackage ./deploy/nixos/package.nix { }`.
# Both lock files are read as they are (Cargo.lock, web/package-lock.json), so no hash needs updating
# when dependencies change.
{
  lib,
  rustPlatform,
  buildNpmPackage,
  importNpmLock,
  nodejs,
}:
let
  root = ../..;
  version = (lib.importTOML (root + "/Cargo.toml")).workspace.package.version;

  # The web app (TypeScript, Vite), built once and embedded by the server's build script.
  web = buildNpmPackage {
    pname = "convene-web";
    inherit version nodejs;
    src = lib.cleanSource (root + "/web");
    npmDeps = importNpmLock { npmRoot = root + "/web"; };
    npmConfigHook = importNpmLock.npmConfigHook;
    installPhase = ''
      runHook preInstall
      cp -r dist $out
      runHook postInstall
    '';
  };
in
rustPlatform.buildRustPackage {
  pname = "convene";
  inherit version;
  src = lib.cleanSourceWith {
    src = root;
    # The web app comes prebuilt from `web` above; node_modules and build output stay out.
    filter =
      path: _type:
      let
        rel = lib.removePrefix (toString root + "/") (toString path);
        under = dir: rel == dir || lib.hasPrefix "${dir}/" rel;
      in
      !(under "web" || under "target" || under "e2e");
  };
  cargoLock.lockFile = root + "/Cargo.lock";
  cargoBuildFlags = [
    "--package"
    "convene"
  ];
  # The server's build script embeds this directory instead of running npm.
  env.CONVENE_WEB_DIST = web;
  # The full suite needs nginx, Chromium and network namespaces; the unit tests run here.
  cargoTestFlags = [
    "--package"
    "convene"
    "--lib"
  ];

  passthru = { inherit web; };

  meta = {
    description = "Self-hosted meeting server in one binary";
    license = lib.licenses.agpl3Plus;
    mainProgram = "convene";
    platforms = lib.platforms.linux;
  };
}
