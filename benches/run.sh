#!/usr/bin/env bash
# Builds the three benchmark runners (ours with plain rusqlite, refinery,
# rusqlite_migration), each in its own workspace so that their rusqlite and
# bundled SQLite builds cannot clash, then runs every scenario and prints
# the tables (Markdown) on stdout.
#
#   benches/run.sh            full sizes (several minutes)
#   benches/run.sh --smoke    tiny sizes, for CI (well under a minute once built)
#
# Other options go to the driver: --rounds N, --check-sizes 10,200,2000,
# --rows N, --child N, --fresh-n N, --big-rounds N, --addcol-rounds N,
# --cost-rows N, --only check,fresh,...
# (see benches/ours/src/drive.rs). Build output and the work files go to
# benches/target (or $BENCH_TARGET_DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$here/target}"
for crate in ours rusqlite-migration refinery; do
    cargo build --release --quiet --manifest-path "$here/$crate/Cargo.toml"
done
bin="$CARGO_TARGET_DIR/release"
exec "$bin/migrate-bench" drive \
    --rusqlite-migration "$bin/bench-rusqlite-migration" \
    --refinery "$bin/bench-refinery" "$@"
