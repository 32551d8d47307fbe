# A small stand-in for nixpkgs' `pkgs`: TOML rendering (what pkgs.formats.toml does with remarshal),
# writeShellScript, and callPackage with builders that only compute store paths (`--store dummy://`).
{ lib }:
let
  inherit (builtins)
    attrNames
    concatStringsSep
    filter
    isAttrs
    isBool
    isList
    isString
    map
    toJSON
    ;

  # TOML basic strings take the same escapes as JSON strings.
  scalar =
    v:
    if isString v then
      toJSON v
    else if isBool v then
      (if v then "true" else "false")
    else if isList v then
      "[${concatStringsSep ", " (map scalar v)}]"
    else
      toString v;
  isTable = v: isAttrs v;
  key = k: if builtins.match "[A-Za-z0-9_-]+" k != null then k else toJSON k;
  table =
    path: attrs:
    let
      names = attrNames attrs;
      plain = filter (n: !isTable attrs.${n} && attrs.${n} != null) names;
      tables = filter (n: isTable attrs.${n}) names;
      header = if path == [ ] || plain == [ ] then "" else "[${concatStringsSep "." (map key path)}]\n";
      body = concatStringsSep "" (map (n: "${key n} = ${scalar attrs.${n}}\n") plain);
    in
    header + body + concatStringsSep "" (map (n: "\n" + table (path ++ [ n ]) attrs.${n}) tables);
  toTOML = attrs: table [ ] attrs;

  fakeDerivation =
    name: attrs:
    derivation (
      {
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
      }
      // attrs
    );
in
rec {
  formats.toml =
    { }:
    {
      type = lib.types.tomlValue;
      generate = name: value: {
        outPath = builtins.toFile name (toTOML value);
        text = toTOML value;
      };
    };

  writeShellScript = name: text: builtins.toFile name "#!/bin/bash\n${text}";

  nodejs = fakeDerivation "nodejs" { };
  importNpmLock = {
    __functor = _: { npmRoot }: fakeDerivation "npm-deps" { root = baseNameOf npmRoot; };
    npmConfigHook = fakeDerivation "npm-config-hook" { };
  };
  buildNpmPackage = args: fakeDerivation "${args.pname}-${args.version}" { };
  rustPlatform.buildRustPackage =
    args:
    fakeDerivation "${args.pname}-${args.version}" {
      CONVENE_WEB_DIST = args.env.CONVENE_WEB_DIST;
      cargoBuildFlags = args.cargoBuildFlags;
    }
    // {
      inherit (args) passthru meta;
    };

  callPackage =
    file: overrides:
    import file (
      {
        inherit
          lib
          rustPlatform
          buildNpmPackage
          importNpmLock
          nodejs
          ;
      }
      // overrides
    );
}
