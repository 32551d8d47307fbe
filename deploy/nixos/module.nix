# NixOS module for Convene, a self-hosted meeting server in one binary.
#
#   imports = [ ./deploy/nixos/module.nix ];
#   services.convene = {
#     enable = true;
#     hostName = "meet.example.org";
#     openFirewall = true;
#     settings.tls.mode = "acme";
#     settings.tls.acme.contact = [ "mailto:admin@example.org" ];
#     secretFiles."auth.secret" = "/run/keys/convene-jwt-secret";
#   };
#
# `settings` is the TOML config file (docs/config.md); it is rendered into the Nix store, so secrets go
# in `secretFiles` and are filled in at start from systemd credentials. The unit mirrors
# deploy/systemd/convene.service.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.convene;
  settingsFormat = pkgs.formats.toml { };

  # Keys whose values are secrets: they must come from `secretFiles`, never from `settings`.
  secretKeys = [
    "auth.secret"
    "auth.admin_token"
    "turn.secret"
  ];

  keyPath = key: lib.splitString "." key;
  placeholder = key: "@secret:${key}@";
  settingAt = key: lib.attrByPath (keyPath key) null cfg.settings;

  # Each secret is a placeholder in the rendered file, replaced at start (secrets.sh).
  withPlaceholders = lib.foldl' (
    acc: key: lib.recursiveUpdate acc (lib.setAttrByPath (keyPath key) (placeholder key))
  ) cfg.settings (lib.attrNames cfg.secretFiles);

  # A certificate key given as a file (tls.mode = "files") is handed over as a credential too, so it
  # can stay readable by root only.
  tlsFiles = cfg.settings.tls.mode == "files";
  rendered = lib.recursiveUpdate withPlaceholders (
    lib.optionalAttrs tlsFiles {
      tls.cert_file = "/run/credentials/convene.service/tls-cert";
      tls.key_file = "/run/credentials/convene.service/tls-key";
    }
  );
  configTemplate = settingsFormat.generate "convene.toml" rendered;
  hasSecrets = cfg.secretFiles != { };
  configPath = if hasSecrets then "/run/convene/convene.toml" else configTemplate;

  secretsScript = pkgs.writeShellScript "convene-secrets" (builtins.readFile ./secrets.sh);

  credentials =
    lib.mapAttrsToList (key: file: "${key}:${file}") cfg.secretFiles
    ++ lib.optionals tlsFiles [
      "tls-cert:${cfg.settings.tls.cert_file}"
      "tls-key:${cfg.settings.tls.key_file}"
    ];

  # The ports `convene ports` lists for this config: what browsers and ACME must reach.
  portOf = address: lib.toInt (lib.last (lib.splitString ":" address));
  tcpPorts = [
    (portOf cfg.settings.server.listen)
  ]
  ++ lib.optional (
    cfg.settings.tls.mode != "off" && cfg.settings.tls.http_listen != null
  ) (portOf cfg.settings.tls.http_listen)
  # ICE-TCP (on unless media.tcp = false): on tcp_port, else the media port's number.
  ++ lib.optional (cfg.settings.media.tcp or true) (
    cfg.settings.media.tcp_port or cfg.settings.media.port
  )
  ++ lib.optional turnEmbedded turnPort;
  udpPorts = [ cfg.settings.media.port ] ++ lib.optional turnEmbedded turnPort;
  # The embedded TURN server listens on UDP and TCP and relays through a UDP port range.
  turnEmbedded = cfg.settings.turn.mode == "embedded";
  turnPort = portOf (cfg.settings.turn.listen or "0.0.0.0:3478");
  turnRelayPorts = {
    from = cfg.settings.turn.relay_min_port or 49152;
    to = cfg.settings.turn.relay_max_port or 65535;
  };

  inStore = path: lib.hasPrefix builtins.storeDir (toString path);
in
{
  options.services.convene = {
    enable = lib.mkEnableOption "Convene, a self-hosted meeting server";

    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The Convene package (the `convene` binary with its web app built in).";
    };

    hostName = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "meet.example.org";
      description = ''
        Public host name users open. It becomes the certificate name (`settings.tls.names`) when Convene
        terminates TLS itself, and the URL `convene doctor` checks.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Open every port Convene listens on for clients (`convene ports`): the HTTP(S) port, the plain
        HTTP port for ACME and redirects when set, the media UDP port, and with the embedded TURN
        server its UDP and TCP port and UDP relay range.
      '';
    };

    settings = lib.mkOption {
      default = { };
      description = ''
        Convene's config file as Nix values (docs/config.md); unset keys keep Convene's defaults.
        Do not put secrets here: the file is in the world-readable Nix store. Use `secretFiles`.
      '';
      example = lib.literalExpression ''
        {
          media.candidates = [ "203.0.113.10" ];
          auth.mode = "token";
          recording.compose = false;
        }
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          server.listen = lib.mkOption {
            type = lib.types.str;
            default = "[::]:8080";
            description = "Address of the HTTP(S) listener; 127.0.0.1:8080 behind a reverse proxy.";
          };
          media.port = lib.mkOption {
            type = lib.types.port;
            default = 10000;
            description = "UDP port that carries every participant's media (and, with ICE-TCP on, the TCP port's default number).";
          };
          tls.mode = lib.mkOption {
            type = lib.types.enum [
              "off"
              "files"
              "self_signed"
              "acme"
            ];
            default = "off";
            description = "Where the certificate comes from; `off` serves plain HTTP (behind a proxy).";
          };
          tls.names = lib.mkOption {
            type = lib.types.listOf lib.types.str;
            default = lib.optional (cfg.hostName != null) cfg.hostName;
            defaultText = lib.literalExpression "lib.optional (hostName != null) hostName";
            description = "Host names on the certificate (`acme`, `self_signed`).";
          };
          turn.mode = lib.mkOption {
            type = lib.types.enum [
              "off"
              "embedded"
              "external"
            ];
            default = "off";
            description = "TURN for clients behind restrictive firewalls: Convene's own server, or coturn.";
          };
          tls.http_listen = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = if cfg.settings.tls.mode == "acme" then "[::]:80" else null;
            defaultText = lib.literalExpression ''if tls.mode == "acme" then "[::]:80" else null'';
            description = "Plain-HTTP listener for ACME http-01 and redirects to HTTPS.";
          };
        };
      };
    };

    secretFiles = lib.mkOption {
      type = lib.types.attrsOf lib.types.path;
      default = { };
      example = {
        "auth.secret" = "/run/keys/convene-jwt-secret";
        "auth.admin_token" = "/run/keys/convene-admin-token";
      };
      description = ''
        Secrets as files outside the Nix store, by config key (${lib.concatStringsSep ", " secretKeys}).
        systemd reads them as root (LoadCredential) and the value is put into the config when the service
        starts; the file itself may stay readable by root only.
      '';
    };

    configFile = lib.mkOption {
      type = lib.types.path;
      readOnly = true;
      default = configTemplate;
      defaultText = lib.literalExpression "the rendered settings";
      description = ''
        The rendered config file, with a placeholder for each secret (filled in at start into
        /run/convene/convene.toml). Check it with `convene check-config`.
      '';
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      example = "/run/keys/convene.env";
      description = ''
        Environment file (systemd EnvironmentFile=) for the service, e.g. RUST_LOG, read as root.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions =
      map (key: {
        assertion = settingAt key == null || settingAt key == "";
        message = ''
          services.convene.settings.${key} would be world-readable in the Nix store:
          set services.convene.secretFiles."${key}" to a file outside the store instead.
        '';
      }) secretKeys
      ++ map (key: {
        assertion = lib.elem key secretKeys;
        message = "services.convene.secretFiles.\"${key}\": not a secret key; use one of ${lib.concatStringsSep ", " secretKeys}.";
      }) (lib.attrNames cfg.secretFiles)
      ++ map (key: {
        assertion = !(inStore cfg.secretFiles.${key});
        message = "services.convene.secretFiles.\"${key}\" is in the Nix store, where every user can read it.";
      }) (lib.attrNames cfg.secretFiles)
      ++ [
        {
          assertion = cfg.settings.turn.mode == "off" || cfg.secretFiles ? "turn.secret";
          message = "services.convene: turn.mode = \"${cfg.settings.turn.mode}\" needs the shared secret: set services.convene.secretFiles.\"turn.secret\".";
        }
        {
          assertion = cfg.settings.tls.mode != "acme" || cfg.settings.tls.names != [ ];
          message = "services.convene: tls.mode = \"acme\" needs a host name: set services.convene.hostName.";
        }
        {
          assertion =
            !tlsFiles
            || (
              (cfg.settings.tls.cert_file or "") != ""
              && (cfg.settings.tls.key_file or "") != ""
              && !(inStore cfg.settings.tls.key_file)
            );
          message = "services.convene: tls.mode = \"files\" needs tls.cert_file and tls.key_file, and the key must not be in the Nix store.";
        }
        {
          assertion =
            (cfg.settings.auth.mode or "open") == "open"
            || cfg.secretFiles ? "auth.secret"
            || (cfg.settings.auth.public_key_file or "") != "";
          message = "services.convene: auth.mode = \"${cfg.settings.auth.mode or "open"}\" needs a key to check tokens: secretFiles.\"auth.secret\" or settings.auth.public_key_file.";
        }
      ];

    networking.firewall = lib.mkIf cfg.openFirewall {
      allowedTCPPorts = tcpPorts;
      allowedUDPPorts = udpPorts;
      allowedUDPPortRanges = lib.optional turnEmbedded turnRelayPorts;
    };

    systemd.services.convene = {
      description = "Convene meeting server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      serviceConfig = {
        # READY=1 once every listener is bound; STOPPING=1 when the drain starts.
        Type = "notify";
        NotifyAccess = "main";
        ExecStartPre = lib.optional hasSecrets "${secretsScript} ${configTemplate} ${configPath} ${lib.concatStringsSep " " (lib.attrNames cfg.secretFiles)}";
        ExecStart = "${cfg.package}/bin/convene serve --config ${configPath}";
        LoadCredential = credentials;
        EnvironmentFile = lib.optional (cfg.environmentFile != null) cfg.environmentFile;
        TimeoutStopSec = "30s";
        Restart = "on-failure";
        RestartSec = "2s";

        DynamicUser = true;
        StateDirectory = "convene";
        StateDirectoryMode = "0750";
        RuntimeDirectory = "convene";
        RuntimeDirectoryMode = "0700";
        WorkingDirectory = "/var/lib/convene";
        UMask = "0077";
        LimitNOFILE = 65536;

        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateMounts = true;
        PrivateTmp = true;
        PrivateDevices = true;
        DevicePolicy = "closed";
        ProtectProc = "invisible";
        ProcSubset = "pid";
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectControlGroups = true;
        KeyringMode = "private";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
          "AF_NETLINK"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged @resources"
        ];
        SystemCallErrorNumber = "EPERM";
      };
    };
  };
}
