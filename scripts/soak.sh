#!/usr/bin/env bash
# Soak: many short, staggered grants through the real `jitform run` binary
# against a real slapd; prints add and remove latency (p50, p99, max) after
# each window's boundary, and fails if any exceeds 2 s.
#   SOAK_GRANTS  how many grants (default 20)
#   SOAK_SPREAD  over how long their starts are staggered (default 45s;
#                total runtime is about SPREAD + 10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/jitform" ./cmd/jitform
JITFORM_SOAK=1 JITFORM_SOAK_BIN="$tmp/jitform" \
  JITFORM_SOAK_GRANTS="${SOAK_GRANTS:-20}" JITFORM_SOAK_SPREAD="${SOAK_SPREAD:-45s}" \
  JITFORM_REQUIRE_SERVERS=1 \
  go test ./internal/operation -run '^TestSoak$' -count=1 -v -timeout 10m |
  grep -E '^(SOAK|event|add|remove|---|ok|FAIL|\s+soak_test)'
