#!/usr/bin/env bash
# Plan-phase reads against a real slapd on loopback (internal/testbed/slapdtest):
# open (StartTLS + bind), resolve 100 principals, read 100 / 1,000 / 5,000
# groupOfNames of 5 members each. Prints wall time per plan and the LDAP
# operations (round trips) it took, counted by the provider.
# BENCHTIME=5x for steadier numbers (default 3x keeps the run short).
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./providers/ldap -run '^$' -bench 'BenchmarkPlanReads' -benchtime "${BENCHTIME:-3x}" |
  awk 'BEGIN { printf "%-8s %12s %14s %14s %16s\n", "groups", "wall (ms)", "LDAP ops", "read ops", "groups/read op" }
       /^BenchmarkPlanReads/ {
         split($1, a, "[=-]"); g = a[2]
         for (i = 3; i < NF; i++) {
           if ($(i+1) == "ns/op") ns = $i
           if ($(i+1) == "ldap-ops/plan") ops = $i
           if ($(i+1) == "read-ops/plan") rops = $i
         }
         printf "%-8s %12.1f %14d %14d %16.0f\n", g, ns / 1e6, ops, rops, g / rops
       }
       /^(FAIL|--- FAIL|panic)/ { print > "/dev/stderr"; bad = 1 }
       END { exit bad }'
