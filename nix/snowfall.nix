# The `snowfall` binary built crate by crate from nix/Cargo.nix (crate2nix;
# nix/generate.sh regenerates it).
#
# With `sysroot = null`, `pkgs` is the native package set and the stable
# toolchain of rust-toolchain.toml builds against its prebuilt standard
# library (the host build). With a sysroot, `pkgs` is the mustang package set
# and every crate built for mustang gets the sysroot's crates as its standard
# library; build scripts are built natively and keep the prebuilt one.
{
  pkgs,
  snowfallLib,
  sysroot ? null,
  toolchain ? "stable",
}:

let
  mustangDeps =
    pkgs: args:
    if sysroot != null && snowfallLib.vendorIsMustang pkgs.stdenv.hostPlatform then
      args // { dependencies = sysroot.crates ++ (args.dependencies or [ ]); }
    else
      args;

  cargoNix = pkgs.callPackage ./Cargo.nix {
    # See nix/sysroot.nix.
    defaultCrateOverrides = pkgs.defaultCrateOverrides;
    buildRustCrateForPkgs = snowfallLib.combineWrappers [
      (snowfallLib.buildRustCrateWith toolchain)
      mustangDeps
    ];
  };
in
# The binary's link arguments (-nostartfiles -nostdlib -static ...) come from
# its build.rs (`cargo:rustc-link-arg-bins`), which buildRustCrate honours.
cargoNix.workspaceMembers.snowfall.build
