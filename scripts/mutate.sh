#!/usr/bin/env bash
# Mutation testing of the packages that decide access, with gremlins
# (github.com/go-gremlins/gremlins v0.6.0): each mutant is a one-token change
# of the kind a real bug looks like (a flipped comparison, < for <=, + for -);
# the package's own tests must fail on it.
#
#   scripts/mutate.sh pure        internal/grants, planner, config's policy checks (CI)
#   scripts/mutate.sh all         the above, then state, providers/ldap, providers/winrm
#   scripts/mutate.sh PKG...      only these (e.g. internal/grants state)
#
# Prints one table row per package (killed, lived, equivalent, not covered,
# timed out, not viable, efficacy, mutant coverage), lists every surviving
# mutant that testdata/mutation/equivalent.txt does not explain, and exits 1
# when efficacy or mutant coverage is under MUTATE_THRESHOLD (90) percent on
# any package. See docs/testing.md.
#
# Environment: MUTATE_WORKERS (default 1: parallel mutants; each compiles
# the package), MUTATE_TIMEOUT_COEFFICIENT (default 30: a mutant's tests may
# take this many times as long as gremlins' unmutated run, which reuses the
# build cache while each mutant recompiles; the report reruns any mutant
# that timed out with MUTATE_RERUN_TIMEOUT, default 3m), MUTATE_OUT (where gremlins' JSON goes; default a temp dir),
# MUTATE_SKIP (a go test -skip pattern for gremlins' pass, to leave slow
# tests out of it; the report then runs every mutant that lived against all
# the tests, so a skipped test still kills what it catches),
# MUTATE_FILES (a regexp over file names that, when set, replaces the
# package's own list below for every package run: score some files only;
# the report then lists the other files' equivalents as unmatched),
# GREMLINS (the binary; installed with go install when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

threshold=${MUTATE_THRESHOLD:-90}
workers=${MUTATE_WORKERS:-1}
coefficient=${MUTATE_TIMEOUT_COEFFICIENT:-30}

# package directory -> the files whose mutants count (a regexp over the
# file names; the package's other files are excluded). Every test file of
# the package still runs against each mutant.
declare -A files=(
  [internal/grants]='.*'
  [planner]='.*'
  [config]='^(check|window|window_impl|duration)\.go$'
  [state]='^(backend|canonical|chain|decode|event|flock_unix|grant_events|local|lock|sign|snapshot|snapshot_compact)\.go$'
  [providers/ldap]='^(read|resolve|apply)\.go$'
  [providers/winrm]='^(winrm|data)\.go$'
)
pure=(internal/grants planner config)
rest=(state providers/ldap providers/winrm)

mode=${1:-pure}
case "$mode" in
  pure) pkgs=("${pure[@]}") ;;
  all) pkgs=("${pure[@]}" "${rest[@]}") ;;
  -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
  *) pkgs=("$@") ;;
esac
for p in "${pkgs[@]}"; do
  if [ -z "${files[$p]+x}" ]; then
    echo "scripts/mutate.sh: unknown package $p (known: ${!files[*]})" >&2
    exit 2
  fi
done

gremlins=${GREMLINS:-}
if [ -z "$gremlins" ]; then
  gremlins=$(command -v gremlins || true)
  [ -n "$gremlins" ] || gremlins="$(go env GOPATH)/bin/gremlins"
fi
if [ ! -x "$gremlins" ]; then
  echo "scripts/mutate.sh: installing gremlins v0.6.0" >&2
  go install github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0
  gremlins="$(go env GOPATH)/bin/gremlins"
fi

out=${MUTATE_OUT:-}
if [ -z "$out" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

# -count=1: gremlins times the unmutated run to set each mutant's timeout;
# a cached result would time that at zero. -vet=off: a mutant is judged by
# the tests, not by vet.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-count=1 -vet=off"
# Tests that need slapd or Samba fail rather than skip when they are missing.
export JITFORM_REQUIRE_SERVERS=${JITFORM_REQUIRE_SERVERS:-1}
export PATH="$PATH:/usr/sbin:/sbin"

reports=()
start=$SECONDS
for p in "${pkgs[@]}"; do
  excludes=()
  want=${MUTATE_FILES:-${files[$p]}}
  for f in "$p"/*.go; do
    base=$(basename "$f")
    case "$base" in *_test.go) continue ;; esac
    if ! [[ "$base" =~ $want ]]; then
      excludes+=(--exclude-files "^${base//./\\.}\$")
    fi
  done
  # Subpackages (internal/grants/sktest: a test helper) are not the
  # package's rules.
  for d in "$p"/*/; do
    [ -d "$d" ] || continue
    d=$(basename "$d")
    [ "$d" = testdata ] && continue
    excludes+=(--exclude-files "(^|/)$d/")
  done
  json="$out/$(echo "$p" | tr / _).json"
  t0=$SECONDS
  echo "== gremlins $p (workers $workers, timeout coefficient $coefficient, files $want)" >&2
  # gremlins' own thresholds stay off: the report below applies them after
  # the equivalent mutants are set aside.
  # Its progress (one line per mutant) goes to $out/PKG.log.
  GOFLAGS="$GOFLAGS${MUTATE_SKIP:+ -skip=$MUTATE_SKIP}" \
    "$gremlins" unleash --workers "$workers" --timeout-coefficient "$coefficient" \
    "${excludes[@]}" -o "$json" "./$p" >"${json%.json}.log" 2>&1 ||
    { tail -20 "${json%.json}.log" >&2; echo "scripts/mutate.sh: gremlins failed on $p" >&2; exit 2; }
  echo "   $p: $((SECONDS - t0)) s" >&2
  reports+=("$p=$json")
done

status=0
# The report also runs the mutants gremlins reports NOT COVERED: its
# coverage map puts the case expressions of switch statements in no block,
# so their mutants are never run (testdata/mutation/report, rerunNotCovered).
# With MUTATE_SKIP it also reruns the mutants that lived, with every test.
echo "== rerunning the mutants gremlins did not run, then the report" >&2
rejudge=()
[ -z "${MUTATE_SKIP:-}" ] || rejudge=(-rejudge)
go run ./testdata/mutation/report "${rejudge[@]}" -equivalent testdata/mutation/equivalent.txt -threshold "$threshold" \
  -workers "$workers" -timeout "${MUTATE_RERUN_TIMEOUT:-3m}" "${reports[@]}" || status=$?
echo "mutate.sh ${*:-pure}: $((SECONDS - start)) s" >&2
exit $status
