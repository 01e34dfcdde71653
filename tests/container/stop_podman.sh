#!/usr/bin/env bash
# Stops the `podman system service` that setup_podman.sh started for STATE_DIR (by the pid it
# recorded, nothing else), and with --reset also removes that state dir's images, containers and
# storage (only that graphroot: our CONTAINERS_STORAGE_CONF points podman at it).
#
# Usage: tests/container/stop_podman.sh [STATE_DIR] [--reset]
set -euo pipefail

STATE_DIR="${1:-${SLUICEWAY_CONTAINER_STATE:-$(cd "$(dirname "$0")/../.." && pwd)/.container-state}}"
RESET="${2:-}"

if [ -f "$STATE_DIR/service.pid" ]; then
    pid="$(cat "$STATE_DIR/service.pid")"
    # only if that pid is still our service (pids get reused)
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "system service .*$STATE_DIR/podman.sock"; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$STATE_DIR/service.pid" "$STATE_DIR/podman.sock"
fi

if [ "$RESET" = "--reset" ]; then
    export CONTAINERS_CONF="$STATE_DIR/containers.conf"
    export CONTAINERS_STORAGE_CONF="$STATE_DIR/storage.conf"
    # unmounts and deletes the overlay layers properly; a plain rm -rf would trip over mounts
    if [ -f "$CONTAINERS_STORAGE_CONF" ]; then podman system reset --force >/dev/null 2>&1 || true; fi
    rm -rf "$STATE_DIR"
fi
