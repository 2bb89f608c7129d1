#!/usr/bin/env bash
# Validate docker-compose.yml with `docker compose config`, also on a machine without a Docker engine.
#
#   scripts/compose-check.sh
#
# `docker compose config` parses the file, checks it against the Compose specification, resolves
# anchors and variables and reports errors without contacting an engine, but it needs the Compose
# CLI plugin. When `docker compose` is not available, this script builds the plugin from the Go
# module github.com/docker/compose/v5 at COMPOSE_VERSION with the machine's Go toolchain and keeps
# the binary in .cache/docker-compose/. It copies the binary to the current user's Docker CLI
# plugin folder when that folder has no docker-compose yet. Then it runs the check with every
# profile enabled and fails when a service publishes a port on an address other than 127.0.0.1.
# It never builds images or starts containers.
#
# Exit status: 0 when the file is valid, 1 when a check or the build failed, 2 when a tool is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# v5.6.0 builds with Go 1.26.8, the version its go.mod names.
COMPOSE_VERSION=${COMPOSE_VERSION:-v5.6.0}
COMPOSE_MODULE=github.com/docker/compose/v5
COMPOSE_FILE_PATH=docker-compose.yml
CACHE_DIR=.cache/docker-compose
BINARY=$CACHE_DIR/$COMPOSE_VERSION/docker-compose
PLUGIN_DIR=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins

# The build folder of an unfinished build, deleted when the script exits for any reason.
build_dir=""
trap '[ -z "$build_dir" ] || rm -rf "$build_dir"' EXIT

log() {
    echo "compose-check: $*" >&2
}

build_compose() {
    if ! command -v go >/dev/null 2>&1; then
        log "go not found. Install Go 1.26.8 or newer, or the Docker Compose plugin, and run again."
        exit 2
    fi

    # `go install MODULE/cmd@VERSION` rejects this module, because its go.mod has exclude
    # directives. So the build runs inside a copy of the module's source, where go.mod and go.sum
    # apply as they do in the Compose repository. The module cache keeps the source read-only.
    log "downloading $COMPOSE_MODULE@$COMPOSE_VERSION from the Go module proxy"
    local source_dir
    source_dir=$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')

    mkdir -p "$CACHE_DIR"
    # A private build folder, so a failed or concurrent build never leaves a partial binary at
    # $BINARY.
    build_dir=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
    cp -R "$source_dir/." "$build_dir/src"
    chmod -R u+w "$build_dir/src"

    log "building Docker Compose $COMPOSE_VERSION with $(go version). The first build downloads its dependencies."
    local started=$SECONDS
    # The flags of the Compose Makefile's build target, with cgo off as in its release Dockerfile.
    if ! (cd "$build_dir/src" && CGO_ENABLED=0 go build -trimpath \
        -ldflags "-w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o ../docker-compose ./cmd); then
        log "building Docker Compose $COMPOSE_VERSION failed (see the go output above). Its go.mod names the Go version it needs."
        exit 1
    fi

    mkdir -p "$(dirname "$BINARY")"
    mv "$build_dir/docker-compose" "$BINARY"
    rm -rf "$build_dir"
    build_dir=""
    log "built $BINARY in $((SECONDS - started)) s"
}

install_plugin() {
    local target=$PLUGIN_DIR/docker-compose
    # A docker-compose plugin that is already there belongs to the user, so it stays as it is.
    if [ -e "$target" ]; then
        return
    fi
    mkdir -p "$PLUGIN_DIR"
    install -m 0755 "$BINARY" "$target"
    log "installed $target (Docker Compose $COMPOSE_VERSION)"
}

if ! command -v python3 >/dev/null 2>&1; then
    log "python3 not found. This script reads go's and Compose's JSON output with it. Install Python 3.11 and run again."
    exit 2
fi

# Prefer an installed `docker compose`. Otherwise use the cached build, through the docker CLI when
# it accepts the plugin, or on its own when there is no docker CLI.
compose=(docker compose)
if ! docker compose version >/dev/null 2>&1; then
    if [ ! -x "$BINARY" ]; then
        build_compose
    fi
    if command -v docker >/dev/null 2>&1; then
        install_plugin
    fi
    if ! docker compose version >/dev/null 2>&1; then
        compose=("$BINARY")
    fi
fi
log "using $("${compose[@]}" version)"

# Every profile is enabled, so the one-shot jobs are checked too. The profiles are named one by
# one, because older Compose releases may not support --profile '*'.
compose_config=("${compose[@]}" --file "$COMPOSE_FILE_PATH")
for profile in $("${compose[@]}" --file "$COMPOSE_FILE_PATH" config --profiles); do
    compose_config+=(--profile "$profile")
done
compose_config+=(config)

if ! "${compose_config[@]}" --quiet; then
    log "$COMPOSE_FILE_PATH is invalid (see the error above)"
    exit 1
fi

# A Python check that reads the resolved file as JSON from stdin, where each published port has
# host_ip, published and target.
read -r -d '' check_ports <<'PYTHON' || true
import json
import sys

project = json.load(sys.stdin)
exposed = []
for name, service in sorted(project["services"].items()):
    for port in service.get("ports", []):
        host_ip = port.get("host_ip")
        if host_ip != "127.0.0.1":
            published = port.get("published", "any")
            exposed.append(f"{name} {published}->{port['target']} on {host_ip or 'every address'}")
for entry in exposed:
    print(f"compose-check: port not bound to 127.0.0.1: {entry}", file=sys.stderr)
sys.exit(1 if exposed else 0)
PYTHON

if ! "${compose_config[@]}" --format json | python3 -c "$check_ports"; then
    log "$COMPOSE_FILE_PATH publishes a port beyond 127.0.0.1. Publish it as 127.0.0.1:HOST:CONTAINER."
    exit 1
fi

services=$("${compose_config[@]}" --services | sort | tr '\n' ' ')
log "$COMPOSE_FILE_PATH is valid. Services: ${services% }"
