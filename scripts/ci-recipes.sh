#!/usr/bin/env bash
# Proves the CI recipes in examples/ci by replaying their steps — the
# `ci/jitform-ci.sh <step>` lines of each job, read from the YAML — in FRESH
# clones of a throwaway policy repository (a bare git remote in a temp dir),
# with jitform installed the way the recipes install it: the pinned release
# archive made by scripts/release.sh, checked against its SHA256SUMS.
#
# The policy repository manages a non-exclusive group of an LDIF "directory"
# shared by all clones (quickstart style: no LDAP server needed).
#   (a) two applies in a row, each in a fresh clone: the second plans from
#       the state the first kept;
#   (b) a grant whose window ends between them: the first run adds dave,
#       the second removes him (erin, added by hand, stays): the member that
#       leaked silently when the state was lost;
#   (c) two runners at once, both applying: each change made once (one
#       intent in the ledger), the ledger verifies.
# For the local-state recipe, one runner of (c) also meets a pull request
# merged while it applies, so its push is rejected, rebased and retried.
#
# Usage: scripts/ci-recipes.sh [postgres|local|all]     (default all)
# Without PostgreSQL URLs in the environment it runs itself through
# `go test ./internal/cirecipes` (which starts a throwaway PostgreSQL
# cluster, internal/testbed/pgtest); the test sets:
#   JITFORM_CI_TEST_OWNER_URL   URL of the role that runs `jitform init`
#   JITFORM_CI_TEST_RUNNER_URL  URL of the least-privilege runner role
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
variants=${1:-all}

if [ -z "${JITFORM_CI_TEST_RUNNER_URL:-}" ]; then
  exec env JITFORM_REQUIRE_SERVERS=1 JITFORM_CI_RECIPES="$variants" \
    go test -count=1 -timeout 20m ./internal/cirecipes -run '^TestCIRecipes$' -v
fi

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
say() { printf '\n=== %s\n' "$*" >&2; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# ---- the pinned release, as scripts/release.sh makes it ---------------------
VERSION=0.0.0-cirecipes
say "release v$VERSION (scripts/release.sh, host platform only)"
OUT="$W/dist" PLATFORMS="linux/$(go env GOARCH)" scripts/release.sh "v$VERSION" >"$W/release.log" 2>&1 ||
  { cat "$W/release.log" >&2; fail "scripts/release.sh"; }
export JITFORM_VERSION=$VERSION JITFORM_RELEASE_URL="file://$W/dist"
JITFORM_SHA256=$(awk '/_linux_/ {print $1}' "$W/dist/SHA256SUMS")
export JITFORM_SHA256

# The release binary, for the checks the script itself makes.
mkdir -p "$W/dist-bin"
tar -xzf "$W/dist/"*_linux_*.tar.gz -C "$W/dist-bin" --strip-components=1

# A tampered archive (or a wrong pin) is refused by the recipes' install step.
cp -r "$W/dist" "$W/dist-bad"
echo tampered >>"$W/dist-bad/$(awk '/_linux_/ {print $2}' "$W/dist/SHA256SUMS")"
if JITFORM_RELEASE_URL="file://$W/dist-bad" JITFORM_INSTALL_DIR="$W/bad-bin" \
  examples/ci/jitform-ci.sh install 2>"$W/bad.log"; then
  fail "install accepted an archive that does not match SHA256SUMS"
fi
grep -q "does not match SHA256SUMS" "$W/bad.log" || fail "tampered archive: unexpected message: $(cat "$W/bad.log")"
if JITFORM_SHA256=0000000000000000000000000000000000000000000000000000000000000000 JITFORM_INSTALL_DIR="$W/bad-bin" \
  examples/ci/jitform-ci.sh install 2>"$W/bad.log"; then
  fail "install accepted an archive that is not the pinned JITFORM_SHA256"
fi
[ ! -e "$W/bad-bin/jitform" ] || fail "a refused archive was installed"
echo "install: a tampered archive and a wrong pin are refused" >&2

# The check step (validate + fmt --check) needs no secret: it passes on
# every example repository with none of their passwords in the environment.
for ex in examples/*/; do
  [ -n "$(ls "$ex"*.hcl 2>/dev/null)" ] || continue
  env -u JITFORM_LDAP_PASSWORD -u JITFORM_CORP_PASSWORD -u JITFORM_WINRM_PASSWORD -u JITFORM_STATE_URL \
    JITFORM="$W/dist-bin/jitform" JITFORM_DIR="$ex" examples/ci/jitform-ci.sh check >"$W/check.log" 2>&1 ||
    { cat "$W/check.log" >&2; fail "the check step fails on $ex without secrets"; }
done
echo "check: validate + fmt --check pass on every example with no secret set" >&2

# steps FILE JOB...: the jitform-ci.sh steps of those jobs, in order, as the
# YAML lists them (comments skipped). A job is a key at column 0 (GitLab) or
# 2 (GitHub, under jobs:), `default` for GitLab's before_script.
steps() {
  local file=$1
  shift
  for job in "$@"; do
    awk -v job="$job" '
      /^[[:space:]]*#/ { next }
      {
        match($0, /^ */); ind = RLENGTH
        if ($0 ~ "^ *" job ":[[:space:]]*$" && (ind == 0 || ind == 2)) { in_job = 1; jind = ind; next }
        if (in_job && $0 !~ /^[[:space:]]*$/ && ind <= jind) in_job = 0
        if (in_job && match($0, /ci\/jitform-ci\.sh [a-z-]+/)) print substr($0, RSTART + 17, RLENGTH - 17)
      }' "$file"
  done
}

# ---- the throwaway policy repository -----------------------------------------
LDIF="$W/directory.ldif"
cp examples/quickstart/directory.ldif "$LDIF"
git init -q --bare -b main "$W/remote.git"
seed="$W/seed"
git init -q -b main "$seed"
export GIT_AUTHOR_NAME=ci-recipes GIT_AUTHOR_EMAIL=ci@example.invalid GIT_COMMITTER_NAME=ci-recipes GIT_COMMITTER_EMAIL=ci@example.invalid

ts() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
WINDOW_END=0

write_policy() { # $1 = variant
  local now start
  now=$(date +%s)
  start=$(ts $((now - 300)))
  WINDOW_END=$((now + ${WINDOW_SECONDS:-25}))
  cat >"$seed/main.hcl" <<EOF
target "ldif" "directory" {
  path   = "$LDIF" # one directory shared by every runner
  flavor = "openldap"
}

# Non-exclusive: jitform removes only the members it added.
group "web_admins" {
  target    = target.ldif.directory
  dn        = "cn=web-admins,ou=groups,dc=example,dc=org"
  exclusive = false
}

policy "web_oncall" {
  groups       = [group.web_admins]
  eligible     = ["alice", "dave"]
  max_duration = "8h"
  approvals    = 1
  approvers    = ["carol"]
}

# Ends $((WINDOW_END - now)) s after this commit: between the first and
# the second run.
grant "dave_oncall" {
  policy      = policy.web_oncall
  principal   = "dave"
  start       = "$start"
  duration    = "$((300 + WINDOW_END - now))s"
  reason      = "on call"
  approved_by = ["carol"]
}
EOF
  if [ "$1" = postgres ]; then
    cat >"$seed/state.hcl" <<EOF
state "postgres" {
  url    = env("JITFORM_STATE_URL")
  schema = "$SCHEMA" # one per recipe proven here; your repository can keep the default
}
EOF
  fi
}

new_repo() { # $1 = variant, $2 = recipe file
  rm -rf "$W/remote.git" "$seed"
  git init -q --bare -b main "$W/remote.git"
  git init -q -b main "$seed"
  cp examples/quickstart/directory.ldif "$LDIF"
  mkdir -p "$seed/ci" "$seed/.github/workflows"
  cp examples/ci/jitform-ci.sh "$seed/ci/"
  cp "examples/ci/$2" "$seed/.github/workflows/jitform.yml"
  printf '.jitform/\njitform.plan\nplan.json\njitform-ci.env\n.bin/\n' >"$seed/.gitignore"
  write_policy "$1"
  "$W/dist-bin/jitform" -C "$seed" fmt >/dev/null
  git -C "$seed" add -A
  git -C "$seed" commit -q -m "policy"
  git -C "$seed" remote add origin "$W/remote.git"
  git -C "$seed" push -q origin main
}

# A merged pull request: a commit to main that does not touch .jitform/.
merge_pr() { # $1 = message, $2 = file, stdin = content
  local c="$W/pr-$RANDOM"
  git clone -q "$W/remote.git" "$c"
  cat >"$c/$2"
  git -C "$c" add -A
  git -C "$c" commit -q -m "$1"
  git -C "$c" push -q origin main
  rm -rf "$c"
}

# run_job NAME RECIPE_FILE JOB...: a fresh runner: a fresh clone, the
# recipe's steps in order. Target secrets (none here) and the state URL are
# given to every step except `check`, which must work without any.
n=0
run_job() {
  local name=$1 file=$2
  shift 2
  n=$((n + 1))
  local c step
  c=$(mktemp -u "$W/runner-$n-$name-XXXXXX")
  git clone -q "$W/remote.git" "$c"
  (
    cd "$c"
    export CI=true GITHUB_PATH="$c/.github_path" GITHUB_OUTPUT="$c/.github_output" JITFORM_INSTALL_DIR="$c/.bin"
    export JITFORM_CI_BRANCH=main JITFORM_CI_LOCK_POLL=0.5
    for step in $(steps "$ROOT/examples/ci/$file" "$@"); do
      PATH="$(tac .github_path 2>/dev/null | paste -sd:):$PATH"
      echo "--- $name: ci/jitform-ci.sh $step" >&2
      if [ "$step" = check ]; then
        env -u JITFORM_STATE_URL ci/jitform-ci.sh "$step"
      else
        ci/jitform-ci.sh "$step"
      fi
    done
  ) >"$c.log" 2>&1 || { cat "$c.log" >&2; fail "$name: a recipe step failed"; }
  LAST_LOG="$c.log"
}

members() { # the members of web-admins in the shared LDIF
  awk '/^dn: / {g = ($0 ~ /^dn: cn=web-admins,/)} g && /^member: / {sub(/^member: /, ""); print}' "$LDIF" | sort
}

expect_members() { # $1 = label, rest = expected uids
  local want got
  want=$(for u in "${@:2}"; do echo "uid=$u,ou=people,dc=example,dc=org"; done | sort)
  got=$(members)
  [ "$got" = "$want" ] || fail "$1: web-admins holds [$(echo $got)], want [$(echo $want)]"
  echo "ok: $1: web-admins = ${*:2}" >&2
}

# verify_fresh: the kept state, read from a fresh clone, verifies; prints
# the ledger as JSON lines.
verify_fresh() {
  local c="$W/verify-$RANDOM"
  git clone -q "$W/remote.git" "$c"
  "$W/dist-bin/jitform" -C "$c" ledger verify >&2 || fail "the kept ledger does not verify in a fresh clone"
  "$W/dist-bin/jitform" -C "$c" ledger log --json
  rm -rf "$c"
}

intents() { # $1 = action, $2 = uid: change intents in the kept ledger
  verify_fresh | grep '"type":"change_intent"' | grep "\"action\":\"$1\"" | grep -c "\"member\":\"uid=$2,ou=people" || true
}


prove() { # $1 = variant, $2 = recipe file, $3 = PR jobs, $4 = apply jobs
  local variant=$1 file=$2
  SCHEMA=ci_$(echo "${file%.yml}" | tr -c 'a-z0-9\n' _)
  read -r -a pr_jobs <<<"$3"
  read -r -a apply_jobs <<<"$4"
  say "$variant: $file"
  new_repo "$variant" "$file"
  [ "$(steps "examples/ci/$file" "${apply_jobs[@]}" | head -1)" = install ] || fail "$file: the apply job does not start by installing the pinned release"

  if [ "$variant" = postgres ]; then
    # The owner creates the schema once (docs/state-postgres.md); runners
    # use the least-privilege role.
    JITFORM_STATE_URL=$JITFORM_CI_TEST_OWNER_URL "$W/dist-bin/jitform" -C "$seed" init >&2
    psql -q -v ON_ERROR_STOP=1 "$JITFORM_CI_TEST_OWNER_URL" >&2 <<SQL
GRANT USAGE ON SCHEMA $SCHEMA TO jitform_runner;
GRANT SELECT, INSERT ON $SCHEMA.ledger TO jitform_runner;
GRANT SELECT ON $SCHEMA.schema_version TO jitform_runner;
GRANT SELECT, INSERT, UPDATE, DELETE ON $SCHEMA.locks TO jitform_runner;
GRANT SELECT, INSERT, DELETE ON $SCHEMA.credentials TO jitform_runner;
GRANT SELECT, INSERT ON $SCHEMA.snapshots TO jitform_runner;
SQL
    export JITFORM_STATE_URL=$JITFORM_CI_TEST_RUNNER_URL
  fi

  # A pull request: validate and fmt --check without secrets, then plan.
  run_job pr "$file" "${pr_jobs[@]}"
  grep -q 'Configuration is valid\|valid' "$LAST_LOG" || fail "pr: validate did not run"
  expect_members "after the PR job (plans only)" erin

  # (a)+(b): two applies in a row, in fresh clones; dave's window ends between them.
  run_job apply1 "$file" "${apply_jobs[@]}"
  expect_members "(a) first apply adds dave (grant active)" dave erin
  local wait=$((WINDOW_END - $(date +%s) + 1))
  if [ "$wait" -gt 0 ]; then
    echo "waiting ${wait}s for dave's window to end" >&2
    sleep "$wait"
  fi
  run_job apply2 "$file" "${apply_jobs[@]}"
  expect_members "(b) second apply, fresh clone, removes dave (window ended; erin, added by hand, stays)" erin
  [ "$(intents remove dave)" = 1 ] || fail "(b): want one removal of dave in the ledger"

  # (c) two runners at once: a new grant for alice, merged to main.
  local now
  now=$(date +%s)
  merge_pr "grant alice" grant_alice.hcl <<EOF
grant "alice_oncall" {
  policy      = policy.web_oncall
  principal   = "alice"
  start       = "$(ts $((now - 60)))"
  duration    = "1h"
  reason      = "incident"
  approved_by = ["carol"]
}
EOF
  # Both runners go through the same wrapper around the installed jitform:
  # their first `plan` and their first `apply` wait (up to 5 s each) for
  # the other runner's, so they really plan and apply at the same moment unless something serialises
  # them (PostgreSQL target locks; the local recipe's lock branch, behind
  # which the second runner is still waiting). In the local recipe the runner
  # that applies also meets a pull request merged while it applies: its push
  # is rejected, rebased and retried.
  rm -f "$W"/barrier.* "$W"/applying.* "$W/merged"
  cat >"$W/jitform-runner" <<EOF
#!/bin/bash
case " \$* " in
*" plan "*)
  if [ ! -e "$W/barrier.\$RUNNER" ]; then
    touch "$W/barrier.\$RUNNER"
    for i in \$(seq 50); do ls "$W"/barrier.* 2>/dev/null | grep -qv "barrier.\$RUNNER\\\$" && break; sleep 0.1; done
  fi ;;
*" apply "*)
  if [ ! -e "$W/applying.\$RUNNER" ]; then
    touch "$W/applying.\$RUNNER"
    for i in \$(seq 50); do ls "$W"/applying.* 2>/dev/null | grep -qv "applying.\$RUNNER\\\$" && break; sleep 0.1; done
  fi
  # Whichever runner applies first (the other then finds nothing to do and
  # never calls apply) meets a pull request merged while it applies.
  if [ "$variant" = local ] && [ ! -e "$W/merged" ]; then
    touch "$W/merged"
    { rm -rf "$W/mid" && git clone -q "$W/remote.git" "$W/mid" && echo "merged while applying" >"$W/mid/NOTES.md" &&
      git -C "$W/mid" add -A && git -C "$W/mid" commit -q -m "merged while applying" && git -C "$W/mid" push -q origin main; } >&2
  fi ;;
esac
exec jitform "\$@"
EOF
  chmod +x "$W/jitform-runner"
  (
    export JITFORM="$W/jitform-runner" RUNNER=A
    n=10
    run_job runnerA "$file" "${apply_jobs[@]}"
    cp "$LAST_LOG" "$W/A.log"
  ) &
  local pa=$!
  (
    export JITFORM="$W/jitform-runner" RUNNER=B
    n=20
    run_job runnerB "$file" "${apply_jobs[@]}"
    cp "$LAST_LOG" "$W/B.log"
  ) &
  local pb=$!
  wait "$pa" || fail "(c) runner A failed"
  wait "$pb" || fail "(c) runner B failed"
  expect_members "(c) two runners at once add alice" alice erin
  [ "$(intents add alice)" = 1 ] || fail "(c): alice was added $(intents add alice) times by the two runners, want once"
  echo "ok: (c) each change made once (one intent for alice), the kept ledger verifies" >&2
  for r in A B; do
    echo "   runner $r: $(grep -h -o 'Apply complete![^.]*\|no changes\|the plan went stale\|took the lock[^(]*' "$W/$r.log" | paste -sd';' -)" >&2
  done
  if [ "$variant" = local ]; then
    cat "$W/A.log" "$W/B.log" | grep -q "rebasing on" || fail "(c) the applying runner's push was not rebased after the merge"
    local c="$W/final-$RANDOM"
    git clone -q "$W/remote.git" "$c"
    [ -e "$c/NOTES.md" ] || fail "the pull request merged during the apply was lost"
    [ "$(git -C "$c" ls-files .jitform | sort | paste -sd' ')" = ".jitform/ledger.head .jitform/ledger.jsonl" ] ||
      fail "the repository does not keep both ledger files: $(git -C "$c" ls-files .jitform)"
    [ -z "$(git -C "$c" ls-remote origin refs/heads/jitform-lock)" ] || fail "the lock branch was left behind"
    echo "ok: (c) a push rejected by a merged PR was rebased and retried; both ledger files kept; lock released" >&2
    rm -rf "$c"
  fi
  grep -h "jitform ledger checkpoint:" "$W/A.log" "$W/B.log" >&2 || fail "(c) no checkpoint printed"
  # No database password in any runner's log.
  local pw
  for url in "${JITFORM_CI_TEST_RUNNER_URL:-}" "${JITFORM_CI_TEST_OWNER_URL:-}"; do
    pw=$(printf '%s' "$url" | sed -n 's|^[a-z]*://[^:@/]*:\([^@]*\)@.*|\1|p')
    [ -z "$pw" ] || ! grep -lF -- "$pw" "$W"/runner-*.log "$W"/A.log "$W"/B.log >&2 || fail "a database password is in a runner's log"
  done
  rm -f "$W/merged"
  unset JITFORM_STATE_URL
  echo "PASS: $file" >&2
}

case $variants in all | postgres)
  prove postgres github-actions.yml "check" "apply"
  prove postgres gitlab-ci.yml "default check plan" "default apply"
  ;;
esac
case $variants in all | local)
  prove local github-actions-local-state.yml "check" "apply"
  ;;
esac
echo "ci-recipes: all recipes proven ($variants)" >&2
