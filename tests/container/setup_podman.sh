#!/usr/bin/env bash
# Makes this machine able to build and run sluiceway's image without a Docker engine or Docker Hub:
# podman from Debian's packages, a Debian bookworm base image made with debootstrap from the
# machine's own apt mirror, and `podman system service` serving the Docker API (kfp's DockerRunner
# talks to it through the docker SDK).
#
# Idempotent: every step is skipped when its result is already there, so CI and people can re-run it.
#
# Usage: tests/container/setup_podman.sh [STATE_DIR]
#   STATE_DIR (or $SLUICEWAY_CONTAINER_STATE) holds podman's config, storage, the debootstrap root and
#   the API socket; default .container-state. CI passes a temporary directory.
# Environment overrides:
#   DEBIAN_MIRROR   apt mirror for debootstrap (default: the first Debian URI in this machine's apt sources)
#   BASE_IMAGE      name of the imported base (default localhost/sluiceway-base:bookworm)
#   SKIP_SERVICE=1  do not start the API service (enough for building the image)
# Prints, last, the `export` lines to eval: CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, DOCKER_HOST.
# Progress goes to stderr, so `eval "$(tests/container/setup_podman.sh DIR)"` works.
set -euo pipefail

STATE_DIR="${1:-${SLUICEWAY_CONTAINER_STATE:-$(cd "$(dirname "$0")/../.." && pwd)/.container-state}}"
BASE_IMAGE="${BASE_IMAGE:-localhost/sluiceway-base:bookworm}"
SUITE=bookworm   # Python 3.11, the version requirements.lock is resolved for

log() { printf '[setup_podman %s] %s\n' "$(date +%T)" "$*" >&2; }

# Runs "$@" and logs how long it took (the issue asks for these timings).
timed() {
    local label="$1"; shift
    local start=$SECONDS
    "$@"
    log "$label took $((SECONDS - start)) s"
}

if [ "$(id -u)" -ne 0 ]; then
    # rootful podman: the trial found no working rootless set-up on these machines (no subuid ranges,
    # no systemd user session); CI runs as root.
    log "run me as root (apt-get, debootstrap and rootful podman need it)"
    exit 1
fi

mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"   # absolute: podman's configs and DOCKER_HOST need it

# --- 1. packages -----------------------------------------------------------------------------------
# runc, not crun: crun fails to start containers on these kernels. fuse-overlayfs and uidmap are the
# fallbacks podman looks for; debootstrap makes the base image. --no-install-recommends keeps out
# buildah/dbus-user-session/slirp4netns, which rootful podman with host networking does not use.
PACKAGES=(podman runc conmon fuse-overlayfs uidmap debootstrap catatonit iptables)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    install_packages() {
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    }
    timed "apt-get install of ${missing[*]}" install_packages
else
    log "packages already installed"
fi

# --- 2. podman configuration -----------------------------------------------------------------------
# Our own containers.conf and storage.conf, passed through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF,
# so nothing under /etc changes and several state dirs can coexist.
#  - default_ulimits = []: podman's default nofile ulimit cannot be applied in this sandbox.
#  - cgroup_manager = cgroupfs: there is no systemd to ask for cgroups.
#  - runtime = runc: crun fails here.
#  - netns = host: containers share the host's network; there is no bridge/CNI set-up to rely on,
#    and kfp's DockerRunner cannot pass a network mode.
CONTAINERS_CONF="$STATE_DIR/containers.conf"
cat >"$CONTAINERS_CONF" <<EOF
# written by tests/container/setup_podman.sh
[containers]
default_ulimits = []
netns = "host"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF

# Overlay in its own graphroot: vfs copies the whole image for every container (about 25 s per
# TensorFlow task against under 3 s with overlay). The kernel's overlay works as root; no fuse.
CONTAINERS_STORAGE_CONF="$STATE_DIR/storage.conf"
mkdir -p "$STATE_DIR/storage" "$STATE_DIR/run"
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
# written by tests/container/setup_podman.sh
[storage]
driver = "overlay"
graphroot = "$STATE_DIR/storage"
runroot = "$STATE_DIR/run"
EOF
export CONTAINERS_CONF CONTAINERS_STORAGE_CONF

# --- 3. the base image -----------------------------------------------------------------------------
# Nothing can be pulled here, so the base is made from the machine's own apt mirror.
mirror_from_apt_sources() {
    # deb822 files (URIs: ...) first, then one-line "deb URL SUITE ..." entries; the first Debian
    # archive (not -security, not third-party repositories) wins.
    local files=() f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 0
    {
        awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "${files[@]}"
        awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i !~ /^\[/) {print $i; break}}' "${files[@]}"
    } | grep -E '/debian/?$' | head -n 1
}

if podman image exists "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE already imported"
else
    MIRROR="${DEBIAN_MIRROR:-$(mirror_from_apt_sources)}"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
    ROOT="$STATE_DIR/debootstrap-$SUITE"
    if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ ! -f "$ROOT/.debootstrap-complete" ]; then
        log "debootstrap --variant=minbase $SUITE from $MIRROR"
        rm -rf "$ROOT"
        timed "debootstrap" debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >&2
        # apt in the image uses the same mirror; keep the image small and free of cached packages
        rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
        touch "$ROOT/.debootstrap-complete"
    fi
    log "importing $ROOT as $BASE_IMAGE"
    # --change sets what a `docker run` of the bare base would do; the Dockerfile sets its own ENV/CMD
    timed "podman import" bash -c "tar --exclude=./.debootstrap-complete -C '$ROOT' -c . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD [\"/bin/bash\"]' - '$BASE_IMAGE' >&2"
fi

# --- 4. the Docker API -----------------------------------------------------------------------------
# kfp's DockerRunner uses the docker SDK, which speaks the Docker API to $DOCKER_HOST; podman serves
# it. --time=0: never exit for idleness (a pipeline's tasks come minutes apart).
SOCKET="$STATE_DIR/podman.sock"
DOCKER_HOST="unix://$SOCKET"
if [ "${SKIP_SERVICE:-0}" != 1 ]; then
    if curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; then
        log "podman API already serving on $SOCKET"
    else
        rm -f "$SOCKET"
        log "starting podman system service on $SOCKET (log: $STATE_DIR/service.log)"
        # setsid + nohup: the service outlives this script; its pid is kept for stop_podman.sh
        setsid nohup podman system service --time=0 "$DOCKER_HOST" >"$STATE_DIR/service.log" 2>&1 </dev/null &
        echo $! >"$STATE_DIR/service.pid"
        for _ in $(seq 1 50); do
            curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1 && break
            sleep 0.2
        done
        curl -fsS --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1 || {
            log "the podman API did not come up; see $STATE_DIR/service.log"; exit 1; }
    fi
fi

# --- 5. what the caller exports ----------------------------------------------------------------------
echo "export CONTAINERS_CONF='$CONTAINERS_CONF'"
echo "export CONTAINERS_STORAGE_CONF='$CONTAINERS_STORAGE_CONF'"
echo "export DOCKER_HOST='$DOCKER_HOST'"
