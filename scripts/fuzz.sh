#!/usr/bin/env bash
# Runs every go test -fuzz target briefly (FUZZTIME, default 10s each) and
# fails on any finding. Targets are discovered, so new ones are picked up.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
status=0
printf '%-40s %-28s %s\n' package target result
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    if out=$(go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" 2>&1); then
      result=ok
    else
      result=FAILED
      status=1
      printf '%s\n' "$out" | tail -30 >&2
    fi
    printf '%-40s %-28s %s\n' "${pkg#github.com/jitform/jitform/}" "$t" "$result"
  done
done
exit $status
