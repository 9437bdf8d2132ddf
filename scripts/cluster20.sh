#!/usr/bin/env bash
# Starts a cluster of N (default 20) `devts node --json` processes on 127.0.0.1, each joining
# through a random earlier member, measures how long it takes until every node sees all N members,
# checks that with each node's `members` command, then makes them all leave.
#
# Usage: scripts/cluster20.sh [--debug] [N]
#   Builds the devts product in release mode (debug with --debug) into .build (or SCRATCH_PATH),
#   unless DEVTS_BIN names an already built executable. DEADLINE_SECONDS (default 120) bounds the
#   whole run; KEEP=1 keeps the nodes' output files.
#
# How convergence is detected: a node prints one member-joined line for each member that was
# already there when it started and one for each member that joins later, so a node sees all N
# members once it has printed member-joined for N-1 distinct ids (and no member-left/failed). The
# script polls the nodes' output files for that; when all N have converged it prints the time since
# the first node was started. It then sends `members` to every node and checks each answer lists
# N alive members.
#
# Each node's stdin is a named pipe held open by this script; stdout and stderr go to files in a
# temporary directory. The nodes run with --leave-on-eof, so they leave even if this script is
# killed outright (the pipes close); on any exit the trap also SIGKILLs whatever still runs.
set -euo pipefail

mode=release
if [[ "${1:-}" == "--debug" ]]; then mode=debug; shift; fi
count=${1:-20}
[[ "$count" =~ ^[0-9]+$ && "$count" -ge 2 ]] || { echo "usage: $0 [--debug] [N>=2]" >&2; exit 2; }
deadline_seconds=${DEADLINE_SECONDS:-120}

cd "$(dirname "$0")/.."
if [[ -n "${DEVTS_BIN:-}" ]]; then
    bin=$DEVTS_BIN
    mode="prebuilt $bin"
else
    echo "building devts ($mode)..." >&2
    scratch=${SCRATCH_PATH:-.build}
    swift build -c "$mode" --scratch-path "$scratch" --product devts >&2
    bin=$(swift build -c "$mode" --scratch-path "$scratch" --show-bin-path)/devts
fi
[[ -x "$bin" ]] || { echo "no executable at $bin" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/cluster20.XXXXXX")
pids=()
fds=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for fd in "${fds[@]}"; do exec {fd}>&- 2>/dev/null || true; done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ $status -ne 0 && -z "${KEEP:-}" ]]; then
        echo "failed; last lines of the nodes' stderr:" >&2
        tail -n 3 "$work"/err.* >&2 2>/dev/null || true
    fi
    [[ -n "${KEEP:-}" ]] && echo "output kept in $work" >&2 || rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
start_ms=$(now_ms)
deadline_ms=$(( start_ms + deadline_seconds * 1000 ))
check_deadline() {
    if (( $(now_ms) > deadline_ms )); then echo "timed out after ${deadline_seconds}s: $1" >&2; exit 1; fi
}

# The address in node $1's started line (empty until it printed it).
address_of() { sed -n 's/^{"type":"started".*"address":"\([^"]*\)".*/\1/p' "$work/out.$1" | head -n 1; }

# How many other members node $1 has seen join (distinct ids).
joined_count() { grep -o '"type":"member-joined","id":"[0-9a-f]*"' "$work/out.$1" | sort -u | wc -l; }

addresses=()
for (( i = 0; i < count; i++ )); do
    join=()
    if (( i > 0 )); then join=(--join "${addresses[RANDOM % i]}"); fi
    mkfifo "$work/in.$i"
    "$bin" node --json --listen 127.0.0.1:0 --name "n$i" --log-level warning --leave-on-eof "${join[@]}" \
        < "$work/in.$i" > "$work/out.$i" 2> "$work/err.$i" &
    pids+=($!)
    exec {fd}> "$work/in.$i"   # opens once the node has opened its end
    fds+=("$fd")
    until [[ -n "$(address_of "$i")" ]]; do
        check_deadline "node n$i did not print its started line"
        kill -0 "${pids[i]}" 2>/dev/null || { echo "node n$i exited: $(cat "$work/err.$i")" >&2; exit 1; }
        sleep 0.01
    done
    addresses+=("$(address_of "$i")")
done
started_ms=$(now_ms)

while :; do
    converged=0
    for (( i = 0; i < count; i++ )); do
        if (( $(joined_count "$i") == count - 1 )); then converged=$((converged + 1)); fi
    done
    (( converged == count )) && break
    check_deadline "$converged of $count nodes see all $count members"
    sleep 0.02
done
converged_ms=$(now_ms)

if grep -q '"type":"member-\(left\|failed\)"' "$work"/out.*; then
    echo "a node reported a member left or failed during the run" >&2; exit 1
fi

# Confirm with the members command: every node lists N alive members.
for (( i = 0; i < count; i++ )); do echo members >&"${fds[i]}"; done
for (( i = 0; i < count; i++ )); do
    until line=$(grep '^{"type":"members"' "$work/out.$i" | tail -n 1) && [[ -n "$line" ]]; do
        check_deadline "node n$i did not answer members"; sleep 0.01
    done
    alive=$(grep -o '"status":"alive"' <<< "$line" | wc -l)
    (( alive == count )) || { echo "node n$i lists $alive alive members, not $count" >&2; exit 1; }
done

echo "$count nodes ($mode build): all started after $(( started_ms - start_ms )) ms," \
     "all see $count members $(( converged_ms - start_ms )) ms after the first start" \
     "(members command on every node: $count alive each)"

# Leave gracefully, then make sure every process has exited.
for (( i = 0; i < count; i++ )); do echo leave >&"${fds[i]}"; done
for (( i = 0; i < count; i++ )); do
    while kill -0 "${pids[i]}" 2>/dev/null; do check_deadline "node n$i did not exit after leave"; sleep 0.02; done
    wait "${pids[i]}" || { echo "node n$i exited with code $?" >&2; exit 1; }
done
echo "all $count nodes left and exited with code 0"
