#!/usr/bin/env bash
# `jitform run` replicas on one PostgreSQL state over simulated Windows hosts
# (internal/testbed/winrmtest: real WS-Management over HTTPS, 50 ms added per
# request; internal/testbed/pgtest: a throwaway PostgreSQL cluster). For 1, 2 and 3
# replicas (parallelism 50 each): the wall time from their start until every
# host has the granted member, and how many hosts each replica changed (from
# the ledger; the test fails on an uneven split or a host changed twice).
# Then, with 2 replicas, one is killed as by kill -9 and the survivor's
# takeover is timed. JITFORM_BENCH_HOSTS (default 1000) sets the fleet size.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(JITFORM_BENCH=1 go test -count=1 -timeout "${TIMEOUT:-90m}" ./providers/winrm -run '^TestBenchReplicas$' -v) || {
  printf '%s\n' "$out" >&2
  exit 1
}
printf '%s\n' "$out" | awk '
  function v(k,   i, a) { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) return a[2] } }
  BEGIN { print "| replicas | hosts | cycle wall time | hosts per replica |"; print "| --- | --- | --- | --- |" }
  /^BENCH-REPLICAS/ { printf "| %s | %s | %.1f s | %s |\n", v("replicas"), v("hosts"), v("wall"), v("per_replica")
                      floor = floor sprintf("%s%d replica(s) %.1f s", floor == "" ? "" : ", ", v("replicas"), v("requests_per_host") * 0.05 * ((w = v("hosts") / (50 * v("replicas"))) > 1 ? w : 1))
                      rph = rph sprintf("%s%s", rph == "" ? "" : "/", v("requests_per_host")) }
  /^BENCH-TAKEOVER/ { t = sprintf("takeover (2 replicas, %s hosts, one killed holding %s): survivor claimed every target after %.2f s; new grant applied on all the dead replica'"'"'s hosts after %.2f s (on all hosts after %.2f s)", v("hosts"), v("dead_hosts"), v("claimed_all"), v("dead_hosts_granted"), v("all_hosts_granted")) }
  END { print ""; print "WinRM requests per host: " rph "; latency floor (requests x 50 ms x hosts / (50 parallel x replicas)): " floor
        if (t != "") { print ""; print t } }'
