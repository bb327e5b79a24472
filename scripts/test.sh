#!/usr/bin/env bash
# Runs every jitform test against real servers. Installs what the tests need
# on a machine that lacks it (Debian: slapd, ldap-utils, Samba AD DC, ssh-keygen, PostgreSQL, Chromium),
# so a brand-new machine passes too. Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd ldap-utils)
command -v samba >/dev/null 2>&1 || [ -x /usr/sbin/samba ] || need+=(samba samba-ad-dc samba-ad-provision python3-samba winbind ldb-tools smbclient)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
# Chromium with its recommended packages: fonts, so report pages render text.
browser=()
command -v chromium >/dev/null 2>&1 || browser=(chromium)
{ command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; } || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ${#browser[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${browser[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  [ ${#need[@]} -gt 0 ] || $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${browser[@]}" >/dev/null
fi
# Distribution packages may start system daemons; tests start their own.
for svc in slapd samba-ad-dc smbd nmbd winbind postgresql; do
  service "$svc" stop >/dev/null 2>&1 || true
done
export PATH="$PATH:/usr/sbin:/sbin"

# Missing servers fail tests here instead of skipping them.
export JITFORM_REQUIRE_SERVERS=1

# Every stage runs (but fuzzing, after failed tests) and the closing summary
# is always printed, so whoever reads the end of a red log sees what failed;
# the exit status is non-zero when anything failed.
status=0
problems=()
echo "== gofmt" >&2
# Tracked and new files that exist (a file deleted but not yet committed is skipped).
gofiles=$( (git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go') |
  while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done)
if ! unformatted=$(printf '%s\n' "$gofiles" | xargs -r gofmt -l); then
  echo "gofmt could not parse every file (above)" >&2
  status=1
  problems+=("gofmt failed")
elif [ -n "$unformatted" ]; then
  echo "gofmt needed: $unformatted" >&2
  status=1
  problems+=("gofmt needed")
fi
echo "== go vet" >&2
if ! go vet ./...; then
  status=1
  problems+=("go vet failed")
fi
echo "== go test" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
tests_ok=1
# pipefail: the pipeline fails when go test does, whatever tee does.
if ! go test -count=1 "$@" ./... 2>&1 | tee "$log"; then
  tests_ok=0
  status=1
fi
# "ok  <pkg>" and "FAIL<tab><pkg> ..." (including "[build failed]" and
# "[setup failed]") are go test's one line per package; a bare "FAIL" is not.
passed=$(grep -cE '^ok[[:space:]]' "$log" || true)
failed=$(grep -cE '^FAIL[[:space:]]' "$log" || true)
if [ "$tests_ok" = 1 ] && [ "$failed" -gt 0 ]; then
  tests_ok=0
  status=1
fi
if [ "$tests_ok" = 0 ]; then
  problems+=("go test failed")
  failed_pkgs=$(grep -E '^FAIL[[:space:]]' "$log" | awk '{print $2}' | sort -u || true)
  [ -n "$failed_pkgs" ] && printf 'FAILED: %s\n' $failed_pkgs
fi
if [ ! -x scripts/fuzz.sh ]; then
  :
elif [ "$tests_ok" = 0 ]; then
  echo "== fuzz skipped: the tests failed (fix them first; fuzzing a failing package proves nothing)" >&2
  problems+=("fuzz skipped")
else
  echo "== fuzz (FUZZTIME=${FUZZTIME:-10s} per target)" >&2
  if ! scripts/fuzz.sh; then
    status=1
    problems+=("fuzz failed")
  fi
fi
# The release build, as a release would make it (nothing is published):
# every platform compiles, the host's archive runs and reports its stamp.
echo "== release build (scripts/release.sh)" >&2
rel=$(mktemp -d)
# One archive per OS keeps CI short; a release builds all six.
if OUT="$rel/dist" PLATFORMS="linux/amd64 windows/amd64 darwin/arm64" scripts/release.sh v0.0.0-ci >"$rel/log" 2>&1; then
  tail -1 "$rel/log" >&2
else
  cat "$rel/log" >&2
  status=1
  problems+=("release build failed")
fi
rm -rf "$rel"
# Mutation score where access is decided (docs/testing.md). CI runs the
# grant rules (minutes); MUTATE=pure adds planner and config checks (about
# half an hour here), MUTATE=0 skips it.
mutate=${MUTATE:-internal/grants}
if [ "$mutate" != 0 ] && [ -x scripts/mutate.sh ] && [ "$tests_ok" = 1 ]; then
  echo "== mutation testing (scripts/mutate.sh $mutate)" >&2
  # shellcheck disable=SC2086 # MUTATE may name several packages
  if ! scripts/mutate.sh $mutate; then
    status=1
    problems+=("mutation score under the threshold")
  fi
fi
# One closing line for whoever reads the end of the log.
if [ ${#problems[@]} -gt 0 ]; then
  msg=$(printf '%s, ' "${problems[@]}")
  echo "scripts/test.sh: FAILED (${msg%, })"
fi
echo "packages: ${passed} passed, ${failed} failed"
exit $status
