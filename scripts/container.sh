#!/usr/bin/env bash
# Builds the jitform container image (Dockerfile: FROM scratch, static binary,
# non-root) with podman and runs the quickstart in it.
# Usage: scripts/container.sh [VERSION COMMIT DATE]
# Exit 0 when the image was built and the quickstart planned in it; exit 3
# when no container runtime can run on this machine (it says why).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-dev} commit=${2:-$(git rev-parse HEAD 2>/dev/null || echo unknown)} date=${3:-}
if ! command -v podman >/dev/null 2>&1; then
  echo "container: podman is not installed (Debian: apt-get install podman)" >&2
  exit 3
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date" \
  -o "$ctx/jitform" ./cmd/jitform
cp -r examples/quickstart "$ctx/quickstart"
rm -rf "$ctx/quickstart/.jitform"
cp Dockerfile "$ctx/"
if ! podman build -q -t "jitform:$version" "$ctx" >"$ctx/build.log" 2>&1; then
  echo "container: podman cannot build here:" >&2; tail -5 "$ctx/build.log" >&2
  exit 3
fi
user=$(podman image inspect --format '{{.Config.User}}' "jitform:$version")
[ "$user" = "65532:65532" ] || { echo "container: the image runs as '$user', want 65532:65532 (non-root)" >&2; exit 1; }
if ! podman run --rm "jitform:$version" version --json >"$ctx/version.json" 2>"$ctx/run.log"; then
  echo "container: the image was built but no container can run on this machine:" >&2
  tail -2 "$ctx/run.log" >&2
  # Check the image's own files instead: its binary, run as its user, must
  # plan its quickstart.
  mnt=$(podman image mount "jitform:$version")
  root="$ctx/rootfs"; cp -a "$mnt" "$root"; podman image unmount "jitform:$version" >/dev/null
  chmod 711 "$ctx"
  setpriv --reuid 65532 --regid 65532 --clear-groups "$root/jitform" -C "$root/quickstart" plan >"$ctx/plan.txt" 2>/dev/null || true
  grep -q "Plan:" "$ctx/plan.txt" || { echo "container: the image's binary did not plan its quickstart as uid 65532:" >&2; cat "$ctx/plan.txt" >&2; exit 1; }
  "$root/jitform" version --json | grep -q "\"version\": \"$version\"" || { echo "container: version not stamped" >&2; exit 1; }
  echo "container: jitform:$version built (user $user); its binary plans the quickstart as uid 65532 outside a container" >&2
  exit 3
fi
grep -q "\"version\": \"$version\"" "$ctx/version.json"
podman run --rm "jitform:$version" | tee "$ctx/plan.txt" >/dev/null
grep -q "Plan:" "$ctx/plan.txt" || { echo "container: the quickstart did not plan:" >&2; cat "$ctx/plan.txt" >&2; exit 1; }
podman run --rm --entrypoint /jitform "jitform:$version" version
echo "container: jitform:$version built; the quickstart plans in it as uid 65532" >&2
