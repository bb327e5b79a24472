#!/usr/bin/env bash
# Apply at the speed of the directory (issue 11): builds jitform, seeds a
# real slapd on loopback (internal/testbed/slapdtest) with 1,000 users and G
# groupOfNames of 20 members, declares +2/-2 members per group, and prints:
#   plan      wall time of `jitform plan`, and of `ldapsearch` reading the
#             same groups and users (ratio plan/ldapsearch)
#   apply     wall time of `jitform apply --auto-approve`, its LDAP requests
#             (counted by a proxy: Modify + Search + other), its fsyncs
#             (strace -c on a second identical apply), and the ratio to
#             `ldapmodify` sending the same G Modify operations on one
#             connection, measured in the same run on a fresh slapd.
# Every apply is checked: all groups must hold their 20 desired members.
#
#   G="1000 5000"       group counts (default)
#   BEFORE=<git rev>    also measure the binary built from that revision
#                       (e.g. BEFORE=main) and print its rows first
#   STRACE=0            skip the fsync count (the strace run)
#   RUNS=3              repetitions (fresh slapd each); the fastest counts
#   NOSYNC=1            slapd with dbnosync: commits without fsync, so the
#                       table shows jitform's cost, not the disk's fsync latency
#   PLAN_ONLY=1         measure plan and ldapsearch only (no apply): prints
#                       plan wall and CPU time, peak RSS, LDAP operations and
#                       the ratio plan/ldapsearch (issue 11: within 5x at 1,000
#                       groups; 5,000 groups in 0.8 s); then `jitform plan` on
#                       10,000 groups and 100,000 grants (LDIF directory,
#                       issue 11: 3 s) with its peak RSS (LARGE=0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
GROUPS_LIST=${G:-"1000 5000"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bins=()
if [[ -n "${BEFORE:-}" ]]; then
  mkdir -p "$work/before-src"
  git archive "$BEFORE" | tar -x -C "$work/before-src"
  (cd "$work/before-src" && go build -o "$work/jitform-before" ./cmd/jitform)
  bins+=("before:$work/jitform-before")
fi
go build -o "$work/jitform-after" ./cmd/jitform
bins+=("after:$work/jitform-after")

out="$work/bench.txt"
: >"$out"
for b in "${bins[@]}"; do
  label=${b%%:*}
  JITFORM_BENCH_BIN=${b#*:} JITFORM_BENCH_LABEL=$label JITFORM_BENCH_GROUPS=$GROUPS_LIST \
  JITFORM_BENCH_STRACE=${STRACE:-1} JITFORM_BENCH_RUNS=${RUNS:-3} JITFORM_BENCH_NOSYNC=${NOSYNC:-0} \
  JITFORM_BENCH_PLANONLY=${PLAN_ONLY:-0} JITFORM_REQUIRE_SERVERS=1 \
    go test -count=1 -timeout 60m ./internal/operation -run '^TestBenchApplyAgainstSlapd$' -v >"$work/$label.log" 2>&1 ||
    { cat "$work/$label.log" >&2; exit 1; }
  grep '^BENCH ' "$work/$label.log" >>"$out"
  if [[ "${PLAN_ONLY:-0}" == 1 && "${LARGE:-1}" == 1 ]]; then
    JITFORM_BENCH_BIN=${b#*:} JITFORM_BENCH_LABEL=$label JITFORM_BENCH_RUNS=${RUNS:-3} \
      go test -count=1 -timeout 60m ./internal/operation -run '^TestBenchPlanLarge$' -v >"$work/$label-large.log" 2>&1 ||
      { cat "$work/$label-large.log" >&2; exit 1; }
    grep '^BENCHLARGE ' "$work/$label-large.log" >>"$work/large.txt"
  fi
done

if [[ "${PLAN_ONLY:-0}" == 1 ]]; then
  awk '
    function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } }
    BEGIN { printf "%-7s %6s | %7s %7s %8s %5s %6s | %8s %6s\n", "binary", "groups", "plan s", "cpu s", "RSS MB", "ops", "ops/gr", "ldapsrch", "ratio" }
    { printf "%-7s %6d | %7.3f %7.2f %8d %5d %6.3f | %8.3f %5.1fx\n",
        v("label"), v("groups"), v("plan_s"), v("plan_cpu_s"), v("plan_rss_mb"), v("plan_ops"), v("plan_ops") / v("groups"),
        v("ldapsearch_s"), v("plan_s") / v("ldapsearch_s") }' "$out"
  echo "(s: wall time, fastest of RUNS; cpu s: user+sys and RSS MB: peak RSS of that plan; ops: LDAP"
  echo " requests of the plan, counted by a proxy; ldapsrch: ldapsearch reading the same groups and users.)"
  if [[ -s "$work/large.txt" ]]; then
    echo
    awk '
      function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } }
      BEGIN { printf "%-7s %6s %7s | %7s %7s %8s\n", "binary", "groups", "grants", "plan s", "cpu s", "RSS MB" }
      { printf "%-7s %6d %7d | %7.3f %7.2f %8d\n", v("label"), v("groups"), v("grants"), v("plan_s"), v("plan_cpu_s"), v("plan_rss_mb") }' "$work/large.txt"
    echo "(jitform plan --at on an LDIF directory: config load, ledger, provider read, planner, text render.)"
  fi
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
awk '
  function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } }
  BEGIN {
    printf "%-7s %6s | %7s %7s %5s %8s %6s | %7s %7s %14s %7s %9s %6s\n",
      "binary", "groups", "plan s", "cpu s", "ops", "ldapsrch", "ratio", "apply s", "cpu s", "LDAP ops", "fsyncs", "ldapmod s", "ratio"
  }
  {
    fs = v("fsyncs"); if (fs < 0) fs = "-"
    printf "%-7s %6d | %7.2f %7.2f %5d %8.2f %5.1fx | %7.2f %7.2f %5d MOD+%4d %7s %9.2f %5.1fx\n",
      v("label"), v("groups"), v("plan_s"), v("plan_cpu_s"), v("plan_ops"), v("ldapsearch_s"), v("plan_s") / v("ldapsearch_s"),
      v("apply_s"), v("apply_cpu_s"), v("apply_mod"), v("apply_ops") - v("apply_mod"), fs, v("ldapmodify_s"), v("apply_s") / v("ldapmodify_s")
  }' "$out"
echo "(s: wall time, fastest of RUNS; cpu s: user+sys of that run. LDAP ops: Modify + other requests"
echo " (Search, Bind, StartTLS), counted by a proxy; ldapmodify sends G Modifies + 1 Bind.)"
