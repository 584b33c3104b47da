#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, installing and starting one if needed.
#
# Safe to run any number of times: when `docker info` already answers it only prints the server
# version. Meant for root on Debian 12 with no stdin (CI); on a systemd host it asks systemd to start
# the service, elsewhere (containers, CI sandboxes without an init) it runs dockerd in the background.
#
# Environment:
#   DOCKER           client to use (default: /usr/bin/docker when present, else `docker` on PATH)
#   ATBB_DOCKERD_LOG where the background dockerd writes its log (default /var/log/atbb-dockerd.log)
#   ATBB_DOCKER_WAIT seconds to wait for the engine to answer (default 60)
set -eu -o pipefail

# /usr/local/bin/docker may be a newer client without BuildKit or compose; the Debian client that
# ships with the engine is the one the rest of the kit's scripts are tested with.
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
LOG=${ATBB_DOCKERD_LOG:-/var/log/atbb-dockerd.log}
WAIT=${ATBB_DOCKER_WAIT:-60}

# A non-root run (a developer laptop) still works when sudo is there; CI is root and needs none.
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

say() { printf 'ensure-docker: %s\n' "$*"; }

engine_answers() {
    # A wedged engine can make `docker info` hang for minutes; bound it so polling stays polling.
    command -v "$DOCKER" >/dev/null 2>&1 && timeout 10 "$DOCKER" info >/dev/null 2>&1
}

report_version() {
    say "engine ready: server $("$DOCKER" version --format '{{.Server.Version}}') (client $DOCKER)"
}

have_dockerd() {
    # CI shells do not always have the sbin directories on PATH.
    command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || [ -x /usr/bin/dockerd ]
}

dockerd_running() {
    local pid
    [ -r /var/run/docker.pid ] || return 1
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

if engine_answers; then
    report_version
    exit 0
fi

if ! have_dockerd || ! [ -x /usr/bin/docker ]; then
    say "installing docker.io with apt"
    export DEBIAN_FRONTEND=noninteractive
    # A stale or unreachable extra source must not stop us when the Debian archive itself works;
    # if the lists really are unusable, the install below fails with apt's own message.
    $SUDO apt-get update -q </dev/null || say "warning: apt-get update failed, trying the install anyway"
    $SUDO apt-get install -y -q --no-install-recommends docker.io </dev/null
    DOCKER=/usr/bin/docker
fi

if dockerd_running; then
    say "dockerd is already running; waiting for it to answer"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
        && $SUDO systemctl start docker </dev/null; then
    say "started docker.service with systemd"
else
    dockerd_bin=$(command -v dockerd 2>/dev/null || echo /usr/sbin/dockerd)
    say "starting $dockerd_bin in the background (log: $LOG)"
    $SUDO mkdir -p "$(dirname "$LOG")"
    # setsid + nohup: the engine must outlive this script and the CI step that ran it, and must not
    # hold the caller's terminal or stdin. The redirections live inside the inner shell so that they
    # happen with the same privileges as dockerd (the log sits in /var/log).
    # shellcheck disable=SC2016
    $SUDO sh -c 'setsid nohup "$1" >>"$2" 2>&1 </dev/null &' sh "$dockerd_bin" "$LOG"
fi

deadline=$((SECONDS + WAIT))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "error: the Docker engine did not answer within ${WAIT}s; last lines of $LOG:" >&2
        tail -n 40 "$LOG" >&2 2>/dev/null || say "(no log at $LOG)" >&2
        exit 1
    fi
    sleep 1
done

report_version
