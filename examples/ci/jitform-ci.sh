#!/usr/bin/env bash
# jitform-ci.sh: the steps every jitform CI recipe runs, in one file, so the
# GitHub Actions and GitLab CI recipes run exactly the same commands and
# scripts/ci-recipes.sh can replay them in fresh clones. Copy it into your
# policy repository (ci/jitform-ci.sh) next to the pipeline file.
#
#   jitform-ci.sh install      install the PINNED release $JITFORM_VERSION,
#                              checked against the release's SHA256SUMS (and
#                              $JITFORM_SHA256 when set), into $JITFORM_INSTALL_DIR
#   jitform-ci.sh check        validate + fmt --check --diff (needs no secret)
#   jitform-ci.sh plan         plan --detailed-exitcode --out jitform.plan and
#                              plan.json; exit 0 for "no changes" and "changes"
#   jitform-ci.sh apply        shared state (state "postgres"): plan, apply the
#                              saved plan; a plan made stale by another runner
#                              is planned again (bounded), then verify + anchor
#   jitform-ci.sh apply-local  local state committed to git: take the lock
#                              branch, sync to the remote, plan, apply, verify,
#                              commit .jitform/ledger.jsonl AND ledger.head,
#                              push with rebase + bounded retries, release
#
# Settings (environment):
#   JITFORM_VERSION        release to install, e.g. 0.4.0 (required by install)
#   JITFORM_SHA256         expected sha256 of the archive (recommended: pins
#                          the bytes even if the release page were replaced)
#   JITFORM_RELEASE_URL    where the archives and SHA256SUMS are (default:
#                          https://github.com/jitform/jitform/releases/download/v$JITFORM_VERSION)
#   JITFORM_INSTALL_DIR    default $HOME/.local/bin (added to $GITHUB_PATH on GitHub)
#   JITFORM                the jitform binary (default: jitform on PATH)
#   JITFORM_DIR            the policy repository (default: .)
#   JITFORM_LOCK_TIMEOUT   jitform --lock-timeout (default 5m)
#   JITFORM_CI_ATTEMPTS    plan/apply rounds when a plan goes stale (default 3)
#   JITFORM_CI_PUSH_TRIES  push attempts, each after a rebase (default 5)
#   JITFORM_CI_BRANCH      branch the ledger is committed to (default: the CI's branch)
#   JITFORM_CI_REMOTE      git remote (default origin)
#   JITFORM_CI_LOCK_BRANCH branch used as the runners' lock (default jitform-lock)
#   JITFORM_CI_LOCK_WAIT   seconds to wait for the lock branch (default 900)
#   JITFORM_CI_LOCK_TTL    seconds after which a lock left by a dead job is taken over (default 3600)
set -euo pipefail

JITFORM=${JITFORM:-jitform}
DIR=${JITFORM_DIR:-.}
LOCK_TIMEOUT=${JITFORM_LOCK_TIMEOUT:-5m}
ATTEMPTS=${JITFORM_CI_ATTEMPTS:-3}

log() { echo "jitform-ci: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
jf() { "$JITFORM" -C "$DIR" "$@"; }

# Key=value for later steps: $GITHUB_OUTPUT on GitHub, a dotenv file elsewhere.
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1=$2" >>"$GITHUB_OUTPUT"; fi
  echo "$1=$2" >>"${JITFORM_CI_OUTPUT:-jitform-ci.env}"
}

cmd_install() {
  : "${JITFORM_VERSION:?set JITFORM_VERSION to the jitform release to install, e.g. 0.4.0}"
  local v=${JITFORM_VERSION#v} os arch name base tmp dest
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) die "unsupported OS $(uname -s)" ;; esac
  case "$(uname -m)" in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) die "unsupported CPU $(uname -m)" ;; esac
  name="jitform_${v}_${os}_${arch}"
  base=${JITFORM_RELEASE_URL:-https://github.com/jitform/jitform/releases/download/v$v}
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  curl -fsSL --retry 3 -o "$tmp/$name.tar.gz" "$base/$name.tar.gz" || die "download $base/$name.tar.gz failed"
  curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$base/SHA256SUMS" || die "download $base/SHA256SUMS failed"
  # The archive must be listed in SHA256SUMS and match it; no line = refused.
  grep -E "^[0-9a-f]{64}  $name\.tar\.gz\$" "$tmp/SHA256SUMS" >"$tmp/sum" || die "$name.tar.gz is not listed in SHA256SUMS"
  (cd "$tmp" && sha256sum -c --quiet sum) || die "$name.tar.gz does not match SHA256SUMS: refusing to install it"
  if [ -n "${JITFORM_SHA256:-}" ]; then
    [ "$(cut -d' ' -f1 "$tmp/sum")" = "$JITFORM_SHA256" ] ||
      die "$name.tar.gz is not the pinned JITFORM_SHA256 ($JITFORM_SHA256): refusing to install it"
  fi
  tar -C "$tmp" -xzf "$tmp/$name.tar.gz"
  dest=${JITFORM_INSTALL_DIR:-$HOME/.local/bin}
  mkdir -p "$dest"
  install -m 0755 "$tmp/$name/jitform" "$dest/jitform"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$dest" >>"$GITHUB_PATH"; fi
  "$dest/jitform" version --json | grep -q "\"version\": \"v$v\"" ||
    die "the installed jitform does not report version v$v"
  log "installed jitform v$v ($(cut -d' ' -f1 "$tmp/sum")) in $dest"
}

cmd_check() {
  jf validate
  jf fmt --check --diff
}

# plan: 0 no changes, 2 changes (both fine), 1 error.
plan_once() {
  local code=0
  jf plan -input=false --detailed-exitcode --lock-timeout "$LOCK_TIMEOUT" --out jitform.plan || code=$?
  case $code in
    0 | 2) ;;
    *) die "plan failed (exit $code)" ;;
  esac
  jf show --json jitform.plan >plan.json
  return "$code"
}

cmd_plan() {
  local code=0
  plan_once || code=$?
  output changes "$([ "$code" -eq 2 ] && echo true || echo false)"
}

# anchor prints the ledger's head (SEQ:HASH) to the job log: a record of the
# ledger kept outside the repository and the database (see README.md).
anchor() {
  jf ledger verify
  echo "jitform ledger checkpoint: $(jf ledger checkpoint)"
}

# apply_rounds plans and applies the saved plan; a plan refused as stale
# (another runner applied first) is planned again, at most ATTEMPTS times.
apply_rounds() {
  local i code err
  err=$(mktemp)
  for ((i = 1; i <= ATTEMPTS; i++)); do
    code=0
    plan_once || code=$?
    if [ "$code" -eq 0 ]; then
      log "no changes"
      rm -f "$err"
      return 0
    fi
    code=0
    jf apply -input=false --lock-timeout "$LOCK_TIMEOUT" jitform.plan 2>"$err" || code=$?
    cat "$err" >&2
    if [ "$code" -eq 0 ]; then
      rm -f "$err"
      return 0
    fi
    if grep -q "the saved plan is stale" "$err"; then
      log "round $i: the plan went stale (another runner or a window boundary moved things): planning again"
      continue
    fi
    rm -f "$err"
    die "apply failed (exit $code)"
  done
  rm -f "$err"
  die "the plan went stale $ATTEMPTS times in a row: giving up"
}

cmd_apply() {
  apply_rounds
  anchor
}

# ---- local state kept in git -------------------------------------------------

REMOTE=${JITFORM_CI_REMOTE:-origin}
LOCK_REF=refs/heads/${JITFORM_CI_LOCK_BRANCH:-jitform-lock}
lock_sha=

git_identity() {
  export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-jitform} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-jitform@users.noreply.github.com}
  export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME} GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}
}

# lock_acquire: one applying runner at a time, across machines, through the
# remote. The lock is a branch holding one parentless commit; creating it is
# an atomic compare-and-swap on the remote (a push that would replace another
# runner's lock commit is rejected), taking over a lock older than the TTL
# uses --force-with-lease on the exact commit seen.
lock_acquire() {
  local wait=${JITFORM_CI_LOCK_WAIT:-900} ttl=${JITFORM_CI_LOCK_TTL:-3600} start now cur age tree holder
  start=$(date +%s)
  holder="${GITHUB_RUN_ID:-${CI_JOB_ID:-local}} $(id -un 2>/dev/null || echo ci)@$(hostname) pid $$"
  tree=$(git hash-object -t tree /dev/null)
  while :; do
    lock_sha=$(git commit-tree "$tree" -m "jitform lock: $holder")
    cur=$(git ls-remote "$REMOTE" "$LOCK_REF" | cut -f1)
    if [ -z "$cur" ]; then
      if git push -q "$REMOTE" "$lock_sha:$LOCK_REF" 2>/dev/null; then
        log "took the lock ${LOCK_REF#refs/heads/} ($holder)"
        return 0
      fi
    else
      git fetch -q "$REMOTE" "$LOCK_REF" 2>/dev/null || true
      now=$(date +%s)
      age=$((now - $(git log -1 --format=%ct FETCH_HEAD 2>/dev/null || echo "$now")))
      if [ "$age" -gt "$ttl" ] &&
        git push -q --force-with-lease="$LOCK_REF:$cur" "$REMOTE" "$lock_sha:$LOCK_REF" 2>/dev/null; then
        log "took over a lock left ${age}s ago by: $(git log -1 --format=%s FETCH_HEAD)"
        return 0
      fi
      if [ $((now - start)) -ge "$wait" ]; then
        lock_sha=
        die "the lock ${LOCK_REF#refs/heads/} is held by: $(git log -1 --format=%s FETCH_HEAD 2>/dev/null) (for ${age}s); gave up after ${wait}s"
      fi
    fi
    sleep "${JITFORM_CI_LOCK_POLL:-2}"
  done
}

lock_release() {
  [ -n "$lock_sha" ] || return 0
  # Delete the lock only if it is still ours.
  git push -q --force-with-lease="$LOCK_REF:$lock_sha" "$REMOTE" ":$LOCK_REF" 2>/dev/null ||
    log "warning: could not release the lock ${LOCK_REF#refs/heads/} (already taken over?)"
  lock_sha=
}

# push_ledger commits both ledger files and pushes them; a push rejected
# because the branch moved (a merged pull request) is rebased and retried.
push_ledger() {
  local branch=$1 tries=${JITFORM_CI_PUSH_TRIES:-5} i
  git add -f -- "$DIR/.jitform/ledger.jsonl" "$DIR/.jitform/ledger.head"
  if git diff --cached --quiet; then
    log "the ledger did not change: nothing to commit"
    return 0
  fi
  git commit -q -m "jitform: ledger after apply ($(jf ledger checkpoint))"
  for ((i = 1; i <= tries; i++)); do
    if git push -q "$REMOTE" "HEAD:refs/heads/$branch"; then
      log "pushed the ledger to $branch"
      return 0
    fi
    log "push $i/$tries rejected: rebasing on $REMOTE/$branch"
    git fetch -q "$REMOTE" "$branch"
    if ! git rebase -q FETCH_HEAD; then
      git rebase --abort || true
      die "the ledger commit does not rebase onto $REMOTE/$branch (someone else changed .jitform/): nothing was pushed; the ledger of this run is in the job's workspace"
    fi
    jf ledger verify >/dev/null || die "the ledger after the rebase does not verify: nothing was pushed"
    sleep $((i * 2))
  done
  die "could not push the ledger after $tries attempts"
}

cmd_apply_local() {
  local branch=${JITFORM_CI_BRANCH:-${GITHUB_REF_NAME:-${CI_COMMIT_BRANCH:-$(git rev-parse --abbrev-ref HEAD)}}}
  git_identity
  trap lock_release EXIT
  lock_acquire
  # Plan from the newest ledger: the previous runner pushed it before
  # releasing the lock.
  git fetch -q "$REMOTE" "$branch"
  git checkout -q -B "$branch" FETCH_HEAD
  apply_rounds
  anchor
  push_ledger "$branch"
  lock_release
}

case "${1:-}" in
  install) cmd_install ;;
  check) cmd_check ;;
  plan) cmd_plan ;;
  apply) cmd_apply ;;
  apply-local) cmd_apply_local ;;
  *)
    sed -n '2,20p' "$0" >&2
    exit 1
    ;;
esac
