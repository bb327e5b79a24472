# jitform in a container: the static binary on an empty base, run as a
# non-root user. No base image is pulled, so it builds offline.
#   CGO_ENABLED=0 go build -trimpath -o dist/image/jitform ./cmd/jitform
#   podman build -t jitform -f Dockerfile dist/image
#   podman run --rm jitform                      # plans the embedded quickstart
#   podman run --rm -v "$PWD:/repo" jitform -C /repo plan
# scripts/container.sh does all of this and checks the result.
FROM scratch
COPY jitform /jitform
# Owned by the user that runs: plan takes the state lock in /quickstart/.jitform.
COPY --chown=65532:65532 quickstart /quickstart
USER 65532:65532
ENTRYPOINT ["/jitform"]
CMD ["-C", "/quickstart", "plan"]
