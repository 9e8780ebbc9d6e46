#!/usr/bin/env bash
# The benchmark suite, every engine, the full size, 3 interleaved runs, then
# TPC-C (4 warehouses, 3 interleaved runs), and the tables and plots of
# docs/BENCHMARKS.md regenerated from them:
#   bench/run.sh                      # the full suite (hours; progress on stderr)
#   bench/run.sh --preset small       # minutes
#   bench/run.sh --engines snowfall,lmdb --configs small-in
# Extra arguments go to `snowfall-compare suite` (src/suite/mod.rs; the last
# of a repeated option counts). Needs
# root for the memory cgroups of the out-of-memory runs (without, it says
# so and runs those engines unconfined). RocksDB links Debian's librocksdb:
#   apt-get install librocksdb-dev libclang-dev fonts-dejavu-core
# Keep the machine otherwise idle while it runs.
set -euo pipefail
cd "$(dirname "$0")/compare"
export ROCKSDB_LIB_DIR=${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu} ROCKSDB_INCLUDE_DIR=${ROCKSDB_INCLUDE_DIR:-/usr/include}
features=()
[ -e "$ROCKSDB_INCLUDE_DIR/rocksdb/c.h" ] && features=(--features rocksdb) ||
  echo "run.sh: no librocksdb-dev: RocksDB left out" >&2
cargo build --release --locked "${features[@]}"
preset=full
for a in "$@"; do [ "${prev:-}" = --preset ] && preset=$a; prev=$a; done
docs=()
# Only a full run replaces the tables in docs/BENCHMARKS.md.
[ "$preset" = full ] && docs=(--docs ../../docs/BENCHMARKS.md)
./target/release/snowfall-compare suite --preset "$preset" --runs 3 "${docs[@]}" "$@"
[ "$preset" = tiny ] && warehouses=1 || warehouses=4
./target/release/snowfall-compare tpcc --warehouses "$warehouses" --runs 3 "${docs[@]}"
