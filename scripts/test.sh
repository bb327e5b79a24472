#!/usr/bin/env bash
# Runs every jitform test against real servers. Installs what the tests need
# on a machine that lacks it (Debian: slapd, ldap-utils, Samba AD DC, ssh-keygen),
# so a brand-new machine passes too. Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd ldap-utils)
command -v samba >/dev/null 2>&1 || [ -x /usr/sbin/samba ] || need+=(samba samba-ad-dc samba-ad-provision python3-samba winbind ldb-tools smbclient)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Distribution packages may start system daemons; tests start their own.
for svc in slapd samba-ad-dc smbd nmbd winbind; do
  service "$svc" stop >/dev/null 2>&1 || true
done
export PATH="$PATH:/usr/sbin:/sbin"

# Missing servers fail tests here instead of skipping them.
export JITFORM_REQUIRE_SERVERS=1

echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
echo "== go vet" >&2
go vet ./...
echo "== go test" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -count=1 "$@" ./... 2>&1 | tee "$log"
passed=$(grep -c '^ok ' "$log" || true)
failed=$(grep -c '^FAIL' "$log" || true)
if [ -x scripts/fuzz.sh ]; then
  echo "== fuzz (FUZZTIME=${FUZZTIME:-10s} per target)" >&2
  scripts/fuzz.sh
fi
if [ "${MUTATE:-1}" != 0 ] && [ -x scripts/mutate.sh ]; then
  # Mutation score of the pure packages (docs/testing.md); MUTATE=0 skips it.
  echo "== mutation testing (scripts/mutate.sh pure)" >&2
  scripts/mutate.sh pure
fi
# One closing line for whoever reads the end of the log.
echo "packages: ${passed} passed, ${failed} failed"
