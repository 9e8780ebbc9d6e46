# Building crates for the mustang target with nixpkgs' buildRustCrate and the
# Cargo.nix files crate2nix writes (nix/generate.sh). Used by flake.nix.
#
# rustc is a cross compiler already: only the standard library crates have to
# be compiled for the mustang target (nix/sysroot.nix), never the compiler.
{ lib }:

rec {
  # The mustang target as a nixpkgs platform, for `crossSystem`. nixpkgs'
  # triple parser knows no "mustang" vendor, so the triple stays the plain
  # x86_64 Linux one; what makes the platform different is its `rust`
  # attribute: rustc compiles for the target JSON file (the same file the cargo
  # build in `.ci/run` uses), and `platform` carries its fields so that
  # crate2nix's `cfg(...)` evaluation sees `target_vendor = "mustang"`.
  crossSystem = {
    config = "x86_64-unknown-linux-gnu";
    rust = {
      rustcTarget = "x86_64-mustang-linux-gnu";
      # The JSON file alone in a store directory: rustc names a JSON target
      # after the file's stem, which is then free of the store hash.
      rustcTargetSpec = "${targetSpecDir}/x86_64-mustang-linux-gnu.json";
      platform = lib.importJSON ./x86_64-mustang-linux-gnu.json;
    };
  };

  targetSpecDir = builtins.path {
    name = "mustang-target";
    path = ./.;
    filter = path: _type: baseNameOf path == "x86_64-mustang-linux-gnu.json";
  };

  vendorIsMustang = platform: ((platform.rust or { }).platform or { }).vendor or null == "mustang";

  # The package set to take a Rust toolchain from when building for `pkgs`.
  # crate2nix's Cargo.nix calls buildRustCrateForPkgs with `pkgs` for a crate
  # of the platform being built and with `pkgs.buildPackages` for build
  # scripts' dependencies and proc-macros. For a mustang crate,
  # `pkgs.buildPackages` runs on the build machine but still targets mustang,
  # and a nixpkgs rustc from there would be a cross compiler built from
  # source: go up one more stage, to a set whose compiler is an ordinary
  # native one. (The toolchains here are rust-overlay's prebuilt ones, which
  # never build rustc; going up keeps that true for any toolchain attribute.)
  toolchainPkgs = pkgs: if vendorIsMustang pkgs.stdenv.hostPlatform then pkgs.buildPackages.buildPackages else pkgs.buildPackages;

  # buildRustCrate with the toolchain `name` (an attribute of the
  # `snowfallRust` overlay in flake.nix: "stable" or "nightly").
  buildRustCrateWith =
    name: pkgs:
    let
      toolchain = (toolchainPkgs pkgs).snowfallRust.${name};
    in
    pkgs.buildRustCrate.override {
      rustc = toolchain;
      cargo = toolchain;
    };

  # Apply argument transformers `funs` (each `pkgs: args: args'`), last
  # first, and hand the result to the first, which is a buildRustCrate.
  # Cargo.nix accepts one `buildRustCrateForPkgs`; this makes one out of
  # several independent adjustments.
  combineWrappers =
    funs: pkgs: args:
    lib.foldr (f: a: f a) args (map (f: f pkgs) funs);

  # Extra rustc options for every crate of one build.
  withRustcOpts = opts: _pkgs: args: args // { extraRustcOpts = (args.extraRustcOpts or [ ]) ++ opts; };
}
