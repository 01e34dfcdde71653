#!/usr/bin/env bash
# Builds sluiceway's image with podman, the way it works on machines without a Docker engine or
# Docker Hub: FROM the debootstrap base setup_podman.sh imported, with the machine's CA bundle as a
# build secret (pip reaches PyPI through a TLS-intercepting proxy here; the secret is never written
# into a layer).
#
# Usage: tests/container/build_image.sh [STATE_DIR] [IMAGE]
#   STATE_DIR  as for setup_podman.sh (default $SLUICEWAY_CONTAINER_STATE or .container-state in the checkout)
#   IMAGE      default: kubeflow.image of examples/quickstart/pipeline.yaml (localhost/sluiceway:0.1.0)
# Environment overrides:
#   BASE_IMAGE  default localhost/sluiceway-base:bookworm (made by setup_podman.sh)
#   CA_BUNDLE   default /etc/ssl/certs/ca-certificates.crt when it exists; empty: no CA secret
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
STATE_DIR="${1:-${SLUICEWAY_CONTAINER_STATE:-$(cd "$(dirname "$0")/../.." && pwd)/.container-state}}"
BASE_IMAGE="${BASE_IMAGE:-localhost/sluiceway-base:bookworm}"

log() { printf '[build_image %s] %s\n' "$(date +%T)" "$*" >&2; }

# The quickstart names the image its compiled components run in; build exactly that tag.
IMAGE="${2:-$(sed -n 's/^[[:space:]]*image:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$REPO/examples/quickstart/pipeline.yaml" | head -n 1)}"
IMAGE="${IMAGE:-localhost/sluiceway:0.1.0}"

# setup_podman.sh's configuration (runc, cgroupfs, no default ulimits, overlay graphroot), unless
# the caller exported its own.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$STATE_DIR/containers.conf}"
export CONTAINERS_STORAGE_CONF="${CONTAINERS_STORAGE_CONF:-$STATE_DIR/storage.conf}"
for f in "$CONTAINERS_CONF" "$CONTAINERS_STORAGE_CONF"; do
    [ -f "$f" ] || { log "$f missing: run tests/container/setup_podman.sh $STATE_DIR first"; exit 1; }
done
podman image exists "$BASE_IMAGE" || { log "base image $BASE_IMAGE missing: run setup_podman.sh"; exit 1; }

# `sluiceway build-image` with this machine's podman settings: RUN steps need no nested user
# namespaces (chroot isolation) and use the host's network (apt mirror, PyPI).
args=(
    "$REPO/examples/quickstart/pipeline.yaml" --tag "$IMAGE" --engine podman --base-image "$BASE_IMAGE"
    --engine-arg=--isolation=chroot --engine-arg=--network=host
)
CA_BUNDLE="${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
if [ -n "$CA_BUNDLE" ] && [ -s "$CA_BUNDLE" ]; then
    args+=(--ca-bundle "$CA_BUNDLE")
    log "CA bundle $CA_BUNDLE given to the build as secret 'ca'"
fi

log "building $IMAGE from $BASE_IMAGE"
start=$SECONDS
"$REPO/.venv/bin/sluiceway" build-image "${args[@]}" >&2
log "podman build took $((SECONDS - start)) s"
podman image inspect --format '{{.Size}}' "$IMAGE" | awk -v i="$IMAGE" '{printf "[build_image] %s: %.0f MB\n", i, $1 / 1e6}' >&2
echo "$IMAGE"
