#!/usr/bin/env bash
# Approvals take effect in seconds (issue 9): with `jitform run` running
# (drift interval 1h, so only its wake on a ledger change can act), measures
# the time from `jitform grant approve` returning to the member being in a
# real slapd group (internal/testbed/slapdtest; polled every 10 ms with go-ldap),
# for N approvals of N principals, on both state backends:
#   local     run wakes on a file watch (fsnotify) on .jitform/
#   postgres  run wakes on LISTEN/NOTIFY (a throwaway cluster, internal/testbed/pgtest)
# Prints p50 / p99 / max per backend. Goal: p99 <= 2 s.
#
#   N=20      approvals per backend (default 20; p99 of 20 is the slowest)
#   RUNS=1    repetitions; every run's row is printed
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/jitform" ./cmd/jitform
for ((r = 1; r <= ${RUNS:-1}; r++)); do
  JITFORM_BENCH_APPROVAL=1 JITFORM_BENCH_BIN="$work/jitform" JITFORM_BENCH_N=${N:-20} JITFORM_REQUIRE_SERVERS=1 \
    go test -count=1 -timeout 20m ./internal/cirecipes -run '^TestBenchApprovalToMember$' -v >"$work/run$r.log" 2>&1 ||
    { cat "$work/run$r.log" >&2; exit 1; }
  grep '^BENCH ' "$work/run$r.log" >>"$work/bench.txt"
done
awk '
  function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } }
  BEGIN { printf "%-9s %4s %8s %8s %8s  %s\n", "backend", "n", "p50 ms", "p99 ms", "max ms", "goal p99 <= 2000 ms" }
  { printf "%-9s %4d %8d %8d %8d  %s\n", v("backend"), v("n"), v("p50_ms"), v("p99_ms"), v("max_ms"), (v("p99_ms") <= 2000 ? "met" : "MISSED") }
' "$work/bench.txt"
echo "(from grant approve returning to the member found by a 10 ms LDAP poll; p99 by nearest rank)"
