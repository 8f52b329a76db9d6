#!/usr/bin/env bash
# Scenario 5 (add a column to a small table next to a 1,000,000-row one) in
# instructions, not seconds: each variant runs once under callgrind, which
# counts the instructions of the timed part only (`common::time`). Unlike a
# time, the count repeats (to within a few dozen) whatever else the machine
# is doing; it leaves out the kernel (the file writes and `fsync`), which is
# most of this scenario's time. Needs valgrind.
#
#   benches/count.sh             prints a Markdown table on stdout
#
# Build output and the work files go to benches/target (or
# $BENCH_TARGET_DIR).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$here/target}"
command -v valgrind >/dev/null || { echo "count.sh needs valgrind" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$here/ours/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/migrate-bench"
work="$CARGO_TARGET_DIR/count"
mkdir -p "$work"
rows=1000000
child=100000
for variant in ours plain; do
    echo "template: $variant" >&2
    "$bin" template --rows "$rows" --child "$child" --db "$work/tpl-$variant.db" \
        --variant "$variant"
done

# Inclusive instructions of a function, from callgrind's output.
of() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v f="$2" '!n && $0 ~ f" \\[" && $0 !~ /x\) \[/ { gsub(",", "", $1); print $1; n = 1 }'
}

echo "| variant | instructions | × plain | verified read | history row | check | settings |"
echo "|---|---|---|---|---|---|---|"
plain=""
for variant in plain "plain+check(table)" "plain+history+check(table)" \
    ours-off/fk-off ours-changed/fk-off ours-off ours-changed; do
    case "$variant" in
        plain | "plain+check(table)") template="$work/tpl-plain.db" ;;
        *) template="$work/tpl-ours.db" ;;
    esac
    echo "counting: $variant" >&2
    out="$work/callgrind.out"
    valgrind --tool=callgrind --toggle-collect='migrate_bench::common::time*' \
        --callgrind-out-file="$out" "$bin" big --rows "$rows" --child "$child" \
        --kind addcol --template "$template" --db "$work/run.db" --variant "$variant" \
        >/dev/null 2>"$work/valgrind.err"
    total=$(awk '/^summary:/ { print $2 }' "$out")
    plain=${plain:-$total}
    ratio=$(awk -v a="$total" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')
    parts="| | | | |"
    if [[ "$variant" == ours* ]]; then
        read_=$(of "$out" "migrate_core::state::quick_check")
        row=$(of "$out" "migrate_core::runner::HistoryTable::record_applied")
        check=$(of "$out" "migrate_core::runner::integrity_check")
        settings=$(of "$out" "migrate_core::runner::Settings::capture")
        parts="| ${read_:-0} | ${row:-0} | ${check:-0} | ${settings:-0} |"
    fi
    echo "| $variant | $total | $ratio $parts"
done
rm -f "$work"/*.db "$work"/*.db-journal "$out"
