# A small stand-in for nixpkgs' `lib`, enough to evaluate deploy/nixos/*.nix without nixpkgs: the
# functions they call, option declarations with type checks, `mkIf`, and a one-module evaluator with
# defaults, freeform submodules and unknown-option errors, like the module system's.
let
  inherit (builtins)
    all
    attrNames
    concatStringsSep
    elem
    filter
    foldl'
    head
    isAttrs
    isBool
    isInt
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    stringLength
    substring
    tail
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  removePrefix =
    prefix: s:
    if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;
  splitString =
    sep: s: filter isString (builtins.split (builtins.replaceStrings [ "." ] [ "\\." ] sep) s);
  last = list: builtins.elemAt list (length list - 1);
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: attrs: if cond then attrs else { };
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
  attrByPath =
    path: default: attrs:
    if path == [ ] then
      attrs
    else if isAttrs attrs && attrs ? ${head path} then
      attrByPath (tail path) default attrs.${head path}
    else
      default;
  setAttrByPath =
    path: value:
    if path == [ ] then value else { ${head path} = setAttrByPath (tail path) value; };
  recursiveUpdate =
    lhs: rhs:
    lhs
    // mapAttrs (
      name: value:
      if isAttrs value && lhs ? ${name} && isAttrs lhs.${name} && !(value ? outPath) then
        recursiveUpdate lhs.${name} value
      else
        value
    ) rhs;
  toInt =
    s:
    let
      n = builtins.fromJSON s;
    in
    if isInt n then n else throw "toInt: ${s} is not an integer";

  isOption = x: isAttrs x && x._type or null == "option";
  isIf = x: isAttrs x && x._type or null == "if";

  mkType = name: check: extra: { inherit name check; } // extra;
  types = rec {
    str = mkType "string" isString { };
    bool = mkType "boolean" isBool { };
    port = mkType "16 bit unsigned integer" (x: isInt x && x >= 0 && x <= 65535) { };
    path = mkType "path" (
      x: isPath x || (isString x && hasPrefix "/" x) || (isAttrs x && x ? outPath)
    ) { };
    package = mkType "package" (x: isAttrs x && x ? outPath) { };
    enum = values: mkType "one of ${concatStringsSep ", " values}" (x: elem x values) { };
    nullOr = t: mkType "null or ${t.name}" (x: x == null || t.check x) { };
    listOf = t: mkType "list of ${t.name}" (x: isList x && all t.check x) { };
    attrsOf = t: mkType "attribute set of ${t.name}" (x: isAttrs x && all t.check (builtins.attrValues x)) { };
    # What pkgs.formats.toml's type accepts: TOML values.
    tomlValue = mkType "TOML value" (
      x: isString x || isInt x || isBool x || builtins.isFloat x || isList x || isAttrs x
    ) { };
    submodule =
      module:
      mkType "submodule" isAttrs {
        submodule = if isAttrs module then module else module { };
      };
  };

  # Evaluates option declarations `opts` against user values `vals` at `loc`.
  fill =
    loc: freeform: opts: vals:
    let
      unknown = filter (name: !(opts ? ${name})) (attrNames vals);
      declared = mapAttrs (
        name: opt:
        let
          where = concatStringsSep "." (loc ++ [ name ]);
        in
        if isOption opt then
          checked where opt (if vals ? ${name} then vals.${name} else opt.default or (throw "${where} is used but not defined"))
        else
          fill (loc ++ [ name ]) freeform opt (vals.${name} or { })
      ) opts;
    in
    if unknown != [ ] && !freeform then
      throw "The option `${concatStringsSep "." (loc ++ [ (head unknown) ])}' does not exist."
    else
      declared // listToAttrs (map (name: { inherit name; value = vals.${name}; }) unknown);

  checked =
    where: opt: value:
    if opt.type ? submodule then
      let
        sub = opt.type.submodule;
      in
      recursiveUpdate value (fill [ where ] (sub ? freeformType) sub.options value)
    else if opt.type.check value then
      value
    else
      throw "The option `${where}' is not of type `${opt.type.name}': ${builtins.toJSON value}";

  resolve =
    x:
    if isIf x then
      (if x.condition then resolve x.content else { })
    else if isAttrs x && !(x ? outPath) then
      mapAttrs (_: resolve) x
    else
      x;
in
{
  inherit
    hasPrefix
    removePrefix
    splitString
    last
    optional
    optionals
    optionalAttrs
    mapAttrsToList
    attrByPath
    setAttrByPath
    recursiveUpdate
    toInt
    types
    concatStringsSep
    elem
    attrNames
    foldl'
    ;

  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption =
    what:
    {
      _type = "option";
      type = types.bool;
      default = false;
      description = "Whether to enable ${what}.";
    };
  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };
  importTOML = file: builtins.fromTOML (builtins.readFile file);
  cleanSource = src: src;
  cleanSourceWith = { src, ... }: src;
  licenses.agpl3Plus = {
    spdxId = "AGPL-3.0-or-later";
  };
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];

  # Evaluates one module with the user's `config`: option values (defaults filled in, types checked)
  # plus what the module defines, with `mkIf` resolved. Not the real module system: one module, no
  # priorities, no merging of one option defined twice.
  evalModule =
    {
      module,
      pkgs,
      config,
    }:
    let
      lib = import ./mock-lib.nix;
      evaluated = module {
        inherit lib pkgs;
        config = values;
      };
      values = fill [ ] false evaluated.options config;
    in
    recursiveUpdate values (resolve evaluated.config);
}
