#!/usr/bin/env bash
# Runs the Devts benchmarks and ends with a C-vs-Swift fan-out summary.
#
#   scripts/bench.sh                      # everything: package-benchmark suite, then the summary table
#   scripts/bench.sh --compare-only       # only the summary table (fanout-compare)
#   scripts/bench.sh --filter 'Swift'     # other arguments go to `swift package benchmark`
#
# Environment: BENCH_RUNS (runs per implementation in the summary, default 7),
#              BENCH_FRAMES (frames per run across all receivers, default 1000000).
#
# On a fresh Debian machine it installs what is missing (libuv1-dev, through apt-get). The
# benchmark package needs nothing else: package-benchmark counts allocations with its malloc
# interposer (the MallocInterposer trait), not jemalloc.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${BENCH_RUNS:-7}"
frames="${BENCH_FRAMES:-1000000}"

compare_only=0
benchmark_args=()
for argument in "$@"; do
    case "$argument" in
        --compare-only) compare_only=1 ;;
        -h | --help)
            sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) benchmark_args+=("$argument") ;;
    esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libuv; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench.sh: libuv (pkg-config name 'libuv') is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "bench.sh: installing libuv1-dev"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libuv1-dev pkg-config
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "bench.sh: swift is not on PATH" >&2
    exit 1
fi

cd "$root/Benchmarks"

if [ "$compare_only" -eq 0 ]; then
    echo "== swift package benchmark (release)"
    swift package benchmark ${benchmark_args[@]+"${benchmark_args[@]}"}
    echo
fi

echo "== fan-out summary: C (libuv directly) vs Swift (DevtsRuntime)"
swift build -c release --product fanout-compare
"$(swift build -c release --show-bin-path)/fanout-compare" --runs "$runs" --frames "$frames"
