#!/usr/bin/env bash
# Soak: many short, staggered grants through `jitform run` against a real
# slapd; prints add and remove latency (p50, p99, max) after each window's
# boundary. SOAK_GRANTS sets how many grants (default 20, about 40 s).
set -euo pipefail
cd "$(dirname "$0")/.."
JITFORM_SOAK=1 JITFORM_SOAK_GRANTS="${SOAK_GRANTS:-20}" JITFORM_REQUIRE_SERVERS=1 \
  go test ./internal/operation -run '^TestSoak$' -count=1 -v -timeout 10m | grep -E '^(SOAK|event|add|remove|---|ok|FAIL)'
