#!/usr/bin/env bash
# Builds a jitform release: static binaries for linux, darwin and windows on
# amd64 and arm64, stamped with version, commit and date; one archive per
# platform; SHA256SUMS over the archives. Nothing is published.
#
# Usage: scripts/release.sh [VERSION]     (default: git describe, else v0.0.0-dev)
#   OUT=dist                 where archives go (default dist/)
#   PLATFORMS="linux/amd64"  build a subset
#   IMAGE=1                  also build the container image with podman and
#                            run the quickstart in it (needs a working podman)
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock: the same commit builds the same bytes.
date=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
out=${OUT:-dist}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
ldflags="-s -w -X main.version=${version} -X main.commit=${commit} -X main.date=${date}"

rm -rf "$out"
mkdir -p "$out"
for p in $platforms; do
  goos=${p%/*} goarch=${p#*/}
  name="jitform_${version#v}_${goos}_${goarch}"
  stage="$out/$name"
  mkdir -p "$stage"
  exe=jitform
  [ "$goos" = windows ] && exe=jitform.exe
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$ldflags" -o "$stage/$exe" ./cmd/jitform
  cp README.md "$stage/"
  cp -r examples/quickstart "$stage/quickstart"
  rm -rf "$stage/quickstart/.jitform"
  # Archives with fixed owners, modes and times: reproducible for one commit.
  if [ "$goos" = windows ]; then
    (cd "$out" && find "$name" -exec touch -d "$date" {} + && TZ=UTC zip -qrX "$name.zip" "$name")
  else
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$date" \
      -C "$out" -czf "$out/$name.tar.gz" "$name"
  fi
  rm -rf "$stage"
  echo "built $name" >&2
done
(cd "$out" && shopt -s nullglob && sha256sum -- *.tar.gz *.zip > SHA256SUMS) # nullglob: a PLATFORMS subset may have no .zip
echo "== $out/SHA256SUMS" >&2
cat "$out/SHA256SUMS" >&2

# The host's own archive must run and report what was stamped.
host="$(go env GOOS)/$(go env GOARCH)"
case " $platforms " in *" $host "*)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tar -C "$tmp" -xzf "$out/jitform_${version#v}_$(go env GOOS)_$(go env GOARCH).tar.gz"
  bin="$tmp/jitform_${version#v}_$(go env GOOS)_$(go env GOARCH)/jitform"
  "$bin" version --json | grep -q "\"version\": \"${version}\"" || { echo "release: version not stamped" >&2; exit 1; }
  "$bin" version --json | grep -q "\"commit\": \"${commit}\"" || { echo "release: commit not stamped" >&2; exit 1; }
  "$bin" -C "$(dirname "$bin")/quickstart" validate >/dev/null || { echo "release: the archive's quickstart does not validate" >&2; exit 1; }
  echo "release: $host archive runs: $("$bin" version | head -1)" >&2
esac

if [ "${IMAGE:-0}" = 1 ]; then
  scripts/container.sh "$version" "$commit" "$date"
fi
