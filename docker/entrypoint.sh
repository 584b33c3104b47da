#!/bin/sh
# atBB image entrypoint and supervisor. Runs under tini (PID 1 reaps orphans; this script only tracks
# its own three children). POSIX sh only: the image may be Alpine (BusyBox ash) or Debian (dash).
#
#   (no args) | serve   appview, web and nginx; exit as soon as one of them exits
#   migrate [ARGS]      run the built migrator once, from the monorepo root
#   anything else       exec it (sh, node -v, ...)
#
# Docker restarts a container only when it exits, never because it is unhealthy; so a dead child ends the
# container (non-zero) instead of leaving a half-working forum behind a green port.
set -u

APP_DIR=${APP_DIR:-/app}
APPVIEW_ENTRY=${APPVIEW_ENTRY:-apps/appview/dist/index.js}
WEB_ENTRY=${WEB_ENTRY:-apps/web/dist/index.js}
MIGRATE_ENTRY=${MIGRATE_ENTRY:-apps/appview/dist/migrate.js}
APPVIEW_PORT=${APPVIEW_PORT:-3000}
WEB_PORT=${WEB_PORT:-3001}
NGINX_CONF=${NGINX_CONF:-/etc/nginx/nginx.conf}
# `docker stop` waits 10 s before SIGKILL. nginx holds the in-flight requests, so it gets most of that
# (its own worker_shutdown_timeout is shorter); once it is gone the apps only close idle sockets and pools.
NGINX_GRACE=${SUPERVISOR_NGINX_GRACE:-5}
APP_GRACE=${SUPERVISOR_APP_GRACE:-2}
# After a crash the forum is already broken: stop the rest quickly so the restart comes sooner.
FAIL_GRACE=${SUPERVISOR_FAIL_GRACE:-1}

log() {
    # $1 level, $2 message, $3 extra JSON members (",\"k\":v"). Values are ours, never user input.
    printf '{"time":"%s","level":"%s","source":"supervisor","msg":"%s"%s}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "${3:-}"
}

case ${1:-serve} in
    serve)
        if [ $# -gt 1 ]; then
            log error "serve takes no arguments"
            exit 64
        fi
        ;;
    migrate)
        shift
        cd "$APP_DIR" || exit 1
        exec node "$MIGRATE_ENTRY" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

appview_pid='' web_pid='' nginx_pid='' sleeper='' stopping=''

# Sets $pid; no command substitution, which would fork on every poll.
pid_of() {
    case $1 in
        appview) pid=$appview_pid ;;
        web) pid=$web_pid ;;
        nginx) pid=$nginx_pid ;;
    esac
}

alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    # An exited child stays a zombie until the shell reaps it, and kill -0 still succeeds on a zombie.
    if [ -r "/proc/$1/stat" ]; then
        { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
        stat=${stat##*) }
        [ "${stat%% *}" != Z ] || return 1
    fi
    return 0
}

# A trapped signal interrupts `wait`; the main loop and the stop helpers re-check state afterwards.
trap 'stopping=TERM' TERM
trap 'stopping=INT' INT
trap 'if [ -n "$nginx_pid" ]; then log info "reloading nginx" ",\"signal\":\"HUP\""; kill -s HUP "$nginx_pid"; fi' HUP

# Sends each named child its stop signal, then waits for all of them, SIGKILLing any still running
# after GRACE seconds. nginx gets QUIT: stop accepting, finish in-flight requests, exit.
stop_group() {
    grace=$1
    shift
    pids=''
    for name in "$@"; do
        pid_of "$name"
        alive "$pid" || continue
        sig=TERM
        [ "$name" = nginx ] && sig=QUIT
        log info "stopping child" ",\"child\":\"$name\",\"pid\":$pid,\"signal\":\"$sig\""
        kill -s "$sig" "$pid" 2>/dev/null
        pids="$pids $pid"
    done
    [ -n "$pids" ] || return 0
    # The watchdog kills its own sleep when cancelled, so nothing outlives the supervisor holding our stdout.
    (
        s=''
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$grace" &
        s=$!
        wait "$s"
        # shellcheck disable=SC2086 # one word per pid
        kill -s KILL $pids 2>/dev/null
    ) &
    watchdog=$!
    for name in "$@"; do
        pid_of "$name"
        case " $pids " in *" $pid "*) ;; *) continue ;; esac
        while :; do
            wait "$pid"
            code=$?
            alive "$pid" || break
        done
        level=info
        [ "$code" -eq 137 ] && level=warn
        log "$level" "child stopped" ",\"child\":\"$name\",\"pid\":$pid,\"code\":$code"
        [ "$code" -eq 0 ] || clean=no
    done
    kill -s TERM "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    return 0
}

cd "$APP_DIR" || {
    log error "app directory missing" ",\"dir\":\"$APP_DIR\""
    exit 1
}

# Upstreams first so nginx has somewhere to send the first requests. HOST/PORT are forced: nginx.conf
# was rendered for these ports, and nothing but nginx may listen outside 127.0.0.1.
HOST=127.0.0.1 PORT=$APPVIEW_PORT node "$APPVIEW_ENTRY" &
appview_pid=$!
log info "started child" ",\"child\":\"appview\",\"pid\":$appview_pid,\"port\":$APPVIEW_PORT"

HOST=127.0.0.1 PORT=$WEB_PORT APPVIEW_URL=http://127.0.0.1:$APPVIEW_PORT node "$WEB_ENTRY" &
web_pid=$!
log info "started child" ",\"child\":\"web\",\"pid\":$web_pid,\"port\":$WEB_PORT"

# -e: nginx opens its compiled-in error log before reading the config; that path is read-only here.
nginx -e stderr -c "$NGINX_CONF" &
nginx_pid=$!
log info "started child" ",\"child\":\"nginx\",\"pid\":$nginx_pid"

# No `wait -n` in POSIX sh (BusyBox's ignores -n): poll once a second. The sleep runs in the background
# so a signal interrupts `wait` at once instead of after the sleep.
failed='' failed_code=0
while [ -z "$stopping" ]; do
    for name in appview web nginx; do
        pid_of "$name"
        if ! alive "$pid"; then
            wait "$pid"
            failed_code=$?
            failed=$name
            break 2
        fi
    done
    sleep 1 &
    sleeper=$!
    wait "$sleeper"
done
[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null

clean=yes
if [ -n "$failed" ]; then
    log error "child exited; stopping the others" ",\"child\":\"$failed\",\"code\":$failed_code"
    stop_group "$FAIL_GRACE" nginx web appview
    log error "supervisor exiting" ",\"reason\":\"$failed exited\""
    # A clean exit of a child is still a failure of the container: the forum is no longer whole.
    [ "$failed_code" -ne 0 ] && exit "$failed_code"
    exit 1
fi

log info "signal received; stopping children" ",\"signal\":\"$stopping\""
# nginx first so no new request arrives, then web (it calls appview), then appview.
stop_group "$NGINX_GRACE" nginx
stop_group "$APP_GRACE" web
stop_group "$APP_GRACE" appview
if [ "$clean" = yes ]; then
    log info "supervisor exiting" ",\"reason\":\"signal\",\"code\":0"
    exit 0
fi
log warn "supervisor exiting" ",\"reason\":\"signal\",\"code\":1"
exit 1
