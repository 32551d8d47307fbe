# Evaluates deploy/nixos/module.nix with the mock lib and one of the sample cases below, and returns
# what the checks need: failed assertions, the rendered TOML, the unit file as NixOS would write it,
# the firewall ports, and the package's store path.
#   nix-instantiate --eval --strict --json --store dummy:// deploy/tests/nix/eval.nix --argstr case acme
{
  case ? "acme",
}:
let
  lib = import ./mock-lib.nix;
  pkgs = import ./mock-pkgs.nix { inherit lib; };

  cases = {
    # Convene terminates TLS itself with ACME; tokens required; secrets from files.
    acme = {
      enable = true;
      hostName = "meet.example.org";
      openFirewall = true;
      settings = {
        server.listen = "[::]:443";
        tls.mode = "acme";
        tls.acme.contact = [ "mailto:admin@example.org" ];
        media.candidates = [ "203.0.113.10" ];
        auth.mode = "token";
        auth.issuer = "convene";
        log.format = "json";
        recording.compose = false;
      };
      secretFiles = {
        "auth.secret" = "/run/keys/convene-jwt-secret";
        "auth.admin_token" = "/run/keys/convene-admin-token";
      };
      environmentFile = "/run/keys/convene.env";
    };
    # With the embedded TURN server.
    turn = {
      enable = true;
      openFirewall = true;
      settings = {
        media.port = 10500;
        turn.mode = "embedded";
        turn.relay_min_port = 50000;
        turn.relay_max_port = 50100;
      };
      secretFiles."turn.secret" = "/run/keys/convene-turn-secret";
    };
    turnWithoutSecret = {
      enable = true;
      settings.turn.mode = "external";
      settings.turn.urls = [ "turn:turn.example.org:3478" ];
    };
    # Behind a reverse proxy: plain HTTP on loopback, nothing secret.
    proxy = {
      enable = true;
      hostName = "meet.example.org";
      settings = {
        server.listen = "127.0.0.1:8080";
        tls.behind_proxy = true;
        media.port = 10500;
      };
    };
    # Certificate files from elsewhere (e.g. security.acme), handed over as credentials.
    files = {
      enable = true;
      openFirewall = true;
      settings = {
        tls.mode = "files";
        tls.cert_file = "/var/lib/acme/meet.example.org/fullchain.pem";
        tls.key_file = "/var/lib/acme/meet.example.org/key.pem";
      };
    };
    # Mistakes the assertions must catch.
    inlineSecret = {
      enable = true;
      settings.auth.secret = "hunter2";
      settings.auth.mode = "token";
    };
    acmeWithoutName = {
      enable = true;
      settings.tls.mode = "acme";
    };
    tokenWithoutKey = {
      enable = true;
      settings.auth.mode = "token";
    };
    unknownSecret = {
      enable = true;
      secretFiles."server.listen" = "/run/keys/x";
    };
    secretInStore = {
      enable = true;
      secretFiles."auth.admin_token" = builtins.toFile "token" "x";
    };
  };

  config = lib.evalModule {
    module = import ../../nixos/module.nix;
    inherit pkgs;
    config.services.convene = cases.${case};
  };

  # The unit file as NixOS's systemd module renders it: one line per value, lists repeated.
  value =
    v:
    if builtins.isBool v then
      (if v then "true" else "false")
    else
      toString v;
  lines =
    attrs:
    builtins.concatStringsSep "" (
      lib.mapAttrsToList (
        name: v:
        if builtins.isList v then
          builtins.concatStringsSep "" (map (x: "${name}=${value x}\n") v)
        else
          "${name}=${value v}\n"
      ) attrs
    );
  service = config.systemd.services.convene;
  unit = ''
    [Unit]
    Description=${service.description}
    ${lines {
      After = service.after;
      Wants = service.wants;
    }}
    [Service]
    ${lines service.serviceConfig}
    [Install]
    ${lines { WantedBy = service.wantedBy; }}'';
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
in
{
  inherit failed;
}
// lib.optionalAttrs (failed == [ ]) {
  toml = config.services.convene.configFile.text;
  inherit unit;
  secrets = lib.attrNames config.services.convene.secretFiles;
  inherit (config.services.convene) openFirewall;
  tcp = config.networking.firewall.allowedTCPPorts or [ ];
  udp = config.networking.firewall.allowedUDPPorts or [ ];
  udpRanges = map (r: "${toString r.from}-${toString r.to}") (
    config.networking.firewall.allowedUDPPortRanges or [ ]
  );
  package = config.services.convene.package.outPath;
  webDist = config.services.convene.package.CONVENE_WEB_DIST;
}
