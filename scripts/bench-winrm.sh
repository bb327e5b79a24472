#!/usr/bin/env bash
# Plan-phase reads over simulated Windows hosts (internal/testbed/winrmtest, real
# WS-Management over HTTPS, 50 ms added per request), at two parallelisms:
# wall time, WinRM requests and shells per host, as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./providers/winrm -run '^$' -bench 'BenchmarkReadHosts' -benchtime "${BENCHTIME:-1x}" |
  awk 'BEGIN { printf "%-8s %-12s %10s %14s %12s\n", "hosts", "parallelism", "wall (s)", "requests/host", "shells/host" }
       /^BenchmarkReadHosts/ {
         split($1, a, "[=/-]"); h = a[3]; p = a[5]
         printf "%-8s %-12s %10.2f %14s %12s\n", h, p, $3 / 1e9, $5, $7
       }'
