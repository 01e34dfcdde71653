#!/usr/bin/env bash
# The container test, end to end on a machine with no Docker engine and no Docker Hub:
#   1. podman, a debootstrap'd bookworm base and the Docker API on a socket (setup_podman.sh);
#   2. the image, with the CA bundle as a build secret (build_image.sh);
#   3. checks on the image: non-root, OCI labels, python3 with kfp and sluiceway, CA not in any layer;
#   4. the quickstart with every component in the image through kfp's DockerRunner, then in-process,
#      and their outputs compared (run_docker_pipeline.py).
#
# Usage: tests/container/run.sh [STATE_DIR]
#   Without STATE_DIR a temporary one is made and removed at the end (CI). With it, the state is
#   kept, so a second run reuses the base image and the image's dependency layer (about 10 s of
#   build instead of 5 minutes).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$REPO/tests/container"
PYTHON="$REPO/.venv/bin/python"

if [ -n "${1:-}" ]; then
    STATE_DIR="$1"; CLEANUP=0
else
    STATE_DIR="$(mktemp -d /tmp/sluiceway-container.XXXXXX)"; CLEANUP=1
fi
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"

cleanup() {
    if [ "$CLEANUP" = 1 ]; then "$HERE/stop_podman.sh" "$STATE_DIR" --reset; else "$HERE/stop_podman.sh" "$STATE_DIR"; fi
}
trap cleanup EXIT

start=$SECONDS
make -C "$REPO" setup >&2   # build-image and the runs are sluiceway commands
eval "$("$HERE/setup_podman.sh" "$STATE_DIR")"
IMAGE="$("$HERE/build_image.sh" "$STATE_DIR")"

# --- image checks ----------------------------------------------------------------------------------
user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
case "$user" in ""|root|0|0:*|root:*) echo "image runs as root" >&2; exit 1;; esac
label() { podman image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMAGE"; }
for name in title version; do
    case "$(label "$name")" in ""|"<no value>") echo "label org.opencontainers.image.$name missing" >&2; exit 1;; esac
done
echo "image $IMAGE: user $user, title $(label title), version $(label version), source '$(label source)', revision $(label revision)"
# what kfp's command line runs, from / (not the source tree): the installed packages
podman run --rm --workdir / "$IMAGE" python3 -c \
    'import sys, kfp, pipeline.cli, components.common.kfp_entry; assert sys.version_info[:2] == (3, 11); print("python3", sys.version.split()[0], "kfp", kfp.__version__)'
# The build's CA secret must be in no layer: look for every extra certificate this machine trusts
# (the ones a TLS-intercepting proxy needs) in every layer's files.
extra_certs=(/usr/local/share/ca-certificates/*.crt)
if [ -e "${extra_certs[0]}" ]; then
    layers="$(podman image inspect --format '{{.GraphDriver.Data.UpperDir}}:{{.GraphDriver.Data.LowerDir}}' "$IMAGE" | tr ':' ' ')"
    patterns=()
    for cert in "${extra_certs[@]}"; do patterns+=(-e "$(sed -n 5p "$cert")"); done
    # shellcheck disable=SC2086
    if grep -rlF "${patterns[@]}" $layers 2>/dev/null | head -n 3 | grep .; then
        echo "the build's CA bundle ended up in the image (files above)" >&2; exit 1
    fi
    echo "no layer of $IMAGE holds this machine's extra CA certificates"
fi

# --- the pipeline in containers ----------------------------------------------------------------------
"$PYTHON" "$HERE/run_docker_pipeline.py" --workdir "$STATE_DIR/quickstart"
echo "container test passed in $((SECONDS - start)) s"
