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
#
# Discovery is one `go test -json -list '^Fuzz' ./...` (packages build in
# parallel, through the shared build cache); a package without fuzz targets
# is skipped, but one whose tests do not build fails the run, since its
# targets would otherwise be silently missed. FUZZ_PKGS=./state/... narrows it.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
pkgs="${FUZZ_PKGS:-./...}"
status=0
broken=""

deadline_only() { # $1: output of a failed run
  grep -q 'context deadline exceeded' <<<"$1" &&
    ! grep -qE 'Failing input written|panic:' <<<"$1" &&
    [ "$(grep -c -- '--- FAIL' <<<"$1")" -le 1 ] &&
    ! grep -qE '^\s+\S+_test\.go:[0-9]+:' <<<"$1"
}

listing=$(mktemp)
trap 'rm -f "$listing"' EXIT
# shellcheck disable=SC2086 # pkgs may name several patterns
if ! go test -json -list '^Fuzz' $pkgs >"$listing" 2>"$listing.err"; then
  status=1
  broken=$(sed -n 's/.*"Action":"fail","Package":"\([^"]*\)".*/\1/p' "$listing" | sort -u)
  echo "fuzz.sh: listing fuzz targets failed:" >&2
  tail -20 "$listing.err" >&2
fi
rm -f "$listing.err"
# test2json: {"Time":…,"Action":"output","Package":"P","Output":"FuzzX\n"}
targets=$(sed -n 's/.*"Action":"output","Package":"\([^"]*\)".*"Output":"\(Fuzz[A-Za-z0-9_]*\)\\n".*/\1 \2/p' "$listing")
if [ -z "$targets" ] && [ -z "$broken" ]; then
  echo "fuzz.sh: no fuzz targets found in $pkgs" >&2
  exit 1
fi

n=0
printf '%-40s %-28s %s\n' package target result
for pkg in $broken; do
  printf '%-40s %-28s %s\n' "${pkg#github.com/jitform/jitform/}" "?" "FAILED (tests do not build: targets not fuzzed)"
done
while read -r pkg t; do
  [ -n "$pkg" ] || continue
  n=$((n + 1))
  {
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
  } </dev/null # go test must not eat the target list on stdin
done <<<"$targets"
echo "fuzz.sh: $n target(s), ${fuzztime} each: $([ $status = 0 ] && echo ok || echo FAILED)"
exit $status
