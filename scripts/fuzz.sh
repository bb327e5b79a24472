#!/usr/bin/env bash
# Runs every go test -fuzz target briefly (FUZZTIME, default 10s each) and
# fails on any finding. Targets are discovered, so new ones are picked up.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the -fuzztime boundary on a loaded machine, without having
# found anything (go.dev/issue/75804, fixed in Go 1.27). A real finding
# always writes a reproducer ("Failing input written to ..."), so: a
# reproducer or any other failure fails the run; a bare deadline failure is
# retried once, and if it recurs, the target's corpus is replayed
# deterministically and must pass.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
status=0

deadline_only() { # $1: output of a failed run
  grep -q 'context deadline exceeded' <<<"$1" &&
    ! grep -qE 'Failing input written|panic:' <<<"$1" &&
    [ "$(grep -c -- '--- FAIL' <<<"$1")" -le 1 ] &&
    ! grep -qE '^\s+\S+_test\.go:[0-9]+:' <<<"$1"
}

printf '%-40s %-28s %s\n' package target result
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    result=ok
    for try in 1 2; do
      if out=$(go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" 2>&1); then
        [ "$try" = 2 ] && result="ok (retried after a deadline flake)"
        break
      fi
      if ! deadline_only "$out"; then
        result=FAILED
        break
      fi
      if [ "$try" = 2 ]; then
        if go test "$pkg" -run "^${t}\$" -count=1 >/dev/null 2>&1; then
          result="ok (deadline flake twice, go.dev/issue/75804; corpus replay passed)"
        else
          result=FAILED
        fi
      fi
    done
    if [ "$result" = FAILED ]; then
      status=1
      printf '%s\n' "$out" | tail -30 >&2
    fi
    printf '%-40s %-28s %s\n' "${pkg#github.com/jitform/jitform/}" "$t" "$result"
  done
done
exit $status
