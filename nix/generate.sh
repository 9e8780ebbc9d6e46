#!/usr/bin/env bash
# Regenerate the files crate2nix writes, from the lock files:
#   nix/Cargo.nix                 the workspace (every crate, crates.io ones by checksum)
#   nix/sysroot/Cargo.lock        core, alloc, compiler_builtins and their dependencies
#   nix/sysroot/Cargo.nix
#
#   nix/generate.sh           rewrite them
#   nix/generate.sh --check   regenerate into a temporary directory and fail on any difference
#
# crate2nix writes paths relative to where its output goes, and the sysroot's
# paths point into this machine's toolchain. Both are normalised the same way
# in either mode: workspace paths become relative to nix/, and the toolchain's
# `library/<crate>` directories become "${rustLibSrc}/<crate>", an argument the
# flake fills with its own rust-src (nix/sysroot.nix). No absolute path of this
# machine ends up in a committed file.
#
# Needs crate2nix 0.15.0 (`cargo install crate2nix --version 0.15.0 --locked`)
# and the nightly of nix/rust-nightly.toml with rust-src.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

crate2nix_version=0.15.0
nightly=$(sed -n 's/^channel = "\(.*\)"$/\1/p' nix/rust-nightly.toml)

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: nix/generate.sh [--check]" >&2; exit 2 ;;
esac

have=$(crate2nix --version 2>/dev/null || true)
if [ "$have" != "crate2nix $crate2nix_version" ]; then
  echo "nix/generate.sh: needs crate2nix $crate2nix_version, found '${have:-none}'" \
    "(cargo install crate2nix --version $crate2nix_version --locked)" >&2
  exit 1
fi
library="$(rustc +"$nightly" --print sysroot)/lib/rustlib/src/rust/library"
if [ ! -d "$library/core" ]; then
  echo "nix/generate.sh: no rust-src in $nightly (rustup component add rust-src --toolchain $nightly)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/nix" "$tmp/sysroot"

# crate2nix's output only when it fails (it warns about every workspace).
quietly() {
  "$@" >"$tmp/log" 2>&1 || { cat "$tmp/log" >&2; exit 1; }
}

# The workspace, with the toolchain of rust-toolchain.toml.
quietly crate2nix generate -f ./Cargo.toml -o "$tmp/nix/Cargo.nix"
up=$(realpath --relative-to="$tmp/nix" "$root")
sed -e "s|\"-o\" \"$tmp/nix/Cargo.nix\"|\"-o\" \"nix/Cargo.nix\"|" \
  -e "s|src = ${up//./\\.};|src = ../.;|" \
  -e "s|src = ${up//./\\.}/|src = ../|" \
  "$tmp/nix/Cargo.nix" >"$tmp/Cargo.nix"

# The sysroot crate, resolved by the nightly's cargo (the standard library's
# manifests use nightly-only cargo features) against its vendored crates.
cp -r nix/sysroot/Cargo.toml nix/sysroot/Cargo.lock nix/sysroot/src nix/sysroot/.cargo "$tmp/sysroot/"
ln -s "$library" "$tmp/sysroot/library"
(cd "$tmp/sysroot" && CARGO_NET_OFFLINE=true RUSTUP_TOOLCHAIN="$nightly" \
  quietly crate2nix generate -f ./Cargo.toml -o ./Cargo.nix)
sed -e 's|src = lib.cleanSourceWith { filter = sourceFilter;  src = \./library/\([^;]*\); };|src = "${rustLibSrc}/\1";|' \
  -e 's|^{ nixpkgs ? <nixpkgs>$|{ rustLibSrc ? throw "rustLibSrc: the toolchain'"'"'s lib/rustlib/src/rust/library (nix/sysroot.nix passes it)"\n, nixpkgs ? <nixpkgs>|' \
  "$tmp/sysroot/Cargo.nix" >"$tmp/sysroot.nix"
if grep -n "$library\|$root\|/\.\./\.\./" "$tmp/Cargo.nix" "$tmp/sysroot.nix"; then
  echo "nix/generate.sh: a machine-specific path survived normalisation (above)" >&2
  exit 1
fi

if $check; then
  status=0
  diff -u nix/Cargo.nix "$tmp/Cargo.nix" || status=1
  diff -u nix/sysroot/Cargo.nix "$tmp/sysroot.nix" || status=1
  diff -u nix/sysroot/Cargo.lock "$tmp/sysroot/Cargo.lock" || status=1
  if [ $status -ne 0 ]; then
    echo "nix/generate.sh: the committed crate2nix files are stale; run nix/generate.sh" >&2
    exit 1
  fi
  echo "nix/generate.sh: nix/Cargo.nix, nix/sysroot/Cargo.nix and nix/sysroot/Cargo.lock are up to date"
else
  cp "$tmp/Cargo.nix" nix/Cargo.nix
  cp "$tmp/sysroot.nix" nix/sysroot/Cargo.nix
  cp "$tmp/sysroot/Cargo.lock" nix/sysroot/Cargo.lock
  echo "nix/generate.sh: wrote nix/Cargo.nix, nix/sysroot/Cargo.nix and nix/sysroot/Cargo.lock"
fi
