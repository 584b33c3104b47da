#!/bin/sh
# Image entrypoint and supervisor. Runs under tini (PID 1 reaps orphans; this script only tracks its own
# children). POSIX sh only: the image may be Alpine (BusyBox ash) or Debian (dash).
#
#   (no args) | serve   every service of atbb.yaml, then nginx; exit as soon as any of them exits
#   migrate [ARGS]      run migrate.command (baked in at build time) once, with ARGS appended
#   check               prove every service's and the migration's cwd, program and file arguments exist
#   health              the HEALTHCHECK probe: health.path through nginx answers health.status (+ body)
#   anything else       exec it (sh, node -v, ...)
#
# What to run comes from $ATBB_SPEC (/etc/atbb/services.sh), rendered from atbb.yaml by the kit
# (atbb_kit/core/image_spec.py): quoted sh assignments, so argument lists keep their words exactly and no
# command is ever interpreted by a shell.
# Docker restarts a container only when it exits, never because it is unhealthy; so a dead child ends the
# container (non-zero) instead of leaving a half-working app behind a green port.
# shellcheck disable=SC2154 # svc_*, migrate_* and health_* come from the sourced spec; v from get()
set -u

# First of all, so a `docker stop` right after `docker run` is a stop request, not a kill. Signals that
# arrive before even this line kill the shell with 143, which tini (-e 143 in the Dockerfile) reports as
# a clean exit: nothing had started yet. exec resets trapped signals, so the migrate, check, health and
# pass-through modes get the default behaviour. A trapped signal interrupts `wait`; the main loop and
# the stop helpers re-check state afterwards.
stopping='' nginx_pid=''
trap 'stopping=TERM' TERM
trap 'stopping=INT' INT
trap 'if [ -n "$nginx_pid" ]; then log info "reloading nginx" ",\"signal\":\"HUP\""; kill -s HUP "$nginx_pid"; fi' HUP

APP_DIR=${APP_DIR:-/app}
ATBB_SPEC=${ATBB_SPEC:-/etc/atbb/services.sh}
NGINX_CONF=${NGINX_CONF:-/etc/nginx/nginx.conf}
# nginx holds the in-flight requests, so it gets most of `docker stop`'s time (its own
# worker_shutdown_timeout is shorter); each service then gets its own `grace` from atbb.yaml.
NGINX_GRACE=${SUPERVISOR_NGINX_GRACE:-5}
# After a crash the app is already broken: stop the rest quickly so the restart comes sooner.
FAIL_GRACE=${SUPERVISOR_FAIL_GRACE:-1}

log() {
    # $1 level, $2 message, $3 extra JSON members (",\"k\":v"). Values are ours (names from the spec are
    # [a-z0-9_]), never user input.
    printf '{"time":"%s","level":"%s","source":"supervisor","msg":"%s"%s}\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" "${3:-}"
}

load_spec() {
    if [ ! -r "$ATBB_SPEC" ]; then
        log error "service spec missing; the image was not built by the kit's Dockerfile" ",\"spec\":\"$ATBB_SPEC\""
        exit 1
    fi
    # shellcheck disable=SC1090 # rendered at build time
    . "$ATBB_SPEC"
}

# Sets $v to the value of the variable named "$1" (names are built from validated service names).
get() { eval "v=\${$1:-}"; }

# Runs in a subshell, or as the last thing the script does: cd, PATH with node_modules/.bin first (as
# `pnpm start` would), the service's environment, then exec of its quoted argument list with any extra
# arguments appended. $1 base dir, $2 cwd, $3 env words, $4 argv words, then the extra arguments.
run_in() {
    r_base=$1 r_dir=$1/$2 r_env=$3 r_argv=$4
    shift 4
    cd "$r_dir" || exit 127
    PATH="$r_dir/node_modules/.bin:$r_base/node_modules/.bin:$PATH"
    export PATH
    if [ -n "$r_env" ]; then eval "export $r_env"; fi
    eval "set -- $r_argv \"\$@\""
    exec "$@"
}

# check: the lookups a service or the migration will make at start, done once at build time.
# $1 label, $2 base dir, $3 cwd, $4 argv words.
check_one() {
    c_label=$1 c_base=$2 c_cwd=$3 c_argv=$4
    if [ ! -d "$c_base/$c_cwd" ]; then
        echo "error: $c_label: working directory $c_cwd is not in the image (add it to runtime.include in atbb.yaml)" >&2
        return 1
    fi
    (
        cd "$c_base/$c_cwd" || exit 1
        PATH="$c_base/$c_cwd/node_modules/.bin:$c_base/node_modules/.bin:$PATH"
        eval "set -- $c_argv"
        case $1 in
            */*) [ -e "$1" ] || {
                echo "error: $c_label: program $1 is not in the image (relative to $c_cwd)" >&2
                exit 1
            } ;;
            *) command -v "$1" >/dev/null 2>&1 || {
                echo "error: $c_label: program '$1' is not in $c_cwd/node_modules/.bin, node_modules/.bin or" \
                    "PATH (a devDependency? production dependencies only reach the image)" >&2
                exit 1
            } ;;
        esac
        shift
        for arg in "$@"; do
            case $arg in -*|*://*|*=*) continue ;; esac
            case $arg in
                */*|*.js|*.mjs|*.cjs|*.ts|*.mts|*.cts|*.json)
                    [ -e "$arg" ] || {
                        echo "error: $c_label: $arg (relative to $c_cwd) is not in the image;" \
                            "add it to runtime.include in atbb.yaml" >&2
                        exit 1
                    } ;;
            esac
        done
    )
}

# VAR_FILE=/path sets VAR to that file's contents (trailing newlines dropped) and unsets VAR_FILE, for
# every such variable: Swarm secrets (/run/secrets/NAME) and Kubernetes Secret volumes are files, and the
# app reads plain variables. Setting both VAR (non-empty) and VAR_FILE is an error, as is a file that cannot be read:
# a value silently missing would surface later as a confusing failure of the app. Names come from `env`
# and are checked against [A-Za-z_][A-Za-z0-9_]* before eval sees them; a line of a multi-line value that
# merely looks like NAME_FILE=... is skipped, because no such variable is set.
load_file_env() {
    for f_name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
        eval "f_path=\${${f_name}_FILE-}" && eval "f_set=\${${f_name}:+set}"
        # Not a variable, or one whose value merely continues another's.
        eval "[ -n \"\${${f_name}_FILE+set}\" ]" || continue
        if [ -n "$f_set" ]; then
            log error "both $f_name and ${f_name}_FILE are set; keep one" ",\"var\":\"$f_name\""
            exit 1
        fi
        if [ ! -f "$f_path" ] || [ ! -r "$f_path" ]; then
            log error "${f_name}_FILE names a file that cannot be read" ",\"var\":\"${f_name}_FILE\""
            exit 1
        fi
        f_value=$(cat "$f_path") || exit 1
        export "$f_name=$f_value"
        unset "${f_name}_FILE"
    done
}

case ${1:-serve} in
    serve)
        if [ $# -gt 1 ]; then
            log error "serve takes no arguments"
            exit 64
        fi
        load_file_env
        load_spec
        ;;
    migrate)
        shift
        load_file_env
        load_spec
        if [ -z "${migrate_argv:-}" ]; then
            echo "migrate: atbb.yaml has no migrate.command; nothing to run"
            exit 0
        fi
        run_in "${migrate_dir:-$APP_DIR}" "$migrate_cwd" "" "$migrate_argv" "$@"
        ;;
    check)
        load_spec
        failed=0
        for name in $ATBB_SERVICES; do
            get "svc_${name}_cwd"; cwd=$v
            get "svc_${name}_argv"; argv=$v
            check_one "service $name" "$APP_DIR" "$cwd" "$argv" || failed=1
        done
        if [ -n "${migrate_argv:-}" ]; then
            check_one "migrate.command" "${migrate_dir:-$APP_DIR}" "$migrate_cwd" "$migrate_argv" || failed=1
        fi
        [ "$failed" = 0 ] && echo "check: $(echo "$ATBB_SERVICES" | wc -w) service(s) and the migration can start"
        exit "$failed"
        ;;
    health)
        # The HEALTHCHECK is inherited by every container of the image. One started for `migrate`, `check`
        # or a shell serves nothing: report that, instead of turning "unhealthy" while it migrates.
        mode=$(tr '\000' '\n' </proc/1/cmdline 2>/dev/null | sed -n '/atbb-entrypoint$/{n;p;q;}')
        case ${mode:-serve} in
            serve) ;;
            *) echo "not serving (started as: $mode): nothing to probe"; exit 0 ;;
        esac
        load_spec
        exec node -e '
const [path, status, body] = process.argv.slice(1);
const req = require("http").get({ host: "127.0.0.1", port: 80, path, timeout: 2500 }, (res) => {
  let seen = "";
  res.setEncoding("utf8");
  res.on("data", (chunk) => { if (seen.length < 65536) seen += chunk; });
  res.on("end", () => process.exit(res.statusCode === Number(status) && seen.includes(body) ? 0 : 1));
});
req.on("timeout", () => process.exit(1));
req.on("error", () => process.exit(1));
' "$health_path" "$health_status" "$health_body"
        ;;
    *)
        load_file_env
        exec "$@"
        ;;
esac

# ---- serve ------------------------------------------------------------------------------------------
started='' sleeper=''

# Sets $pid for a child name; no command substitution, which would fork on every poll.
pid_of() {
    if [ "$1" = nginx ]; then pid=$nginx_pid; else eval "pid=\${pid_$1:-}"; fi
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


# Sends each named child its stop signal, then waits for all of them, SIGKILLing any still running
# after GRACE seconds. nginx gets QUIT: stop accepting, finish in-flight requests, exit. A child that
# dies of the very signal it was sent (no handler installed yet, e.g. stopped during start-up) has
# stopped as asked: that is a clean stop, not a failure.
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
    # A non-interactive shell starts background jobs with SIGQUIT ignored until the program sets its own
    # handler, so a QUIT sent in nginx's first milliseconds is lost: repeat it every second (nginx takes a
    # second QUIT as the same graceful stop). Services get one TERM only: many apps read a second one as
    # "exit now, skip draining".
    requit=''
    case " $* " in *" nginx "*) requit=$nginx_pid ;; esac
    # The watchdog kills its own sleep when cancelled, so nothing outlives the supervisor holding our stdout.
    (
        s=''
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        left=$grace
        while [ "$left" -gt 0 ]; do
            sleep 1 &
            s=$!
            wait "$s"
            left=$((left - 1))
            if [ -n "$requit" ] && [ "$left" -gt 0 ]; then kill -s QUIT "$requit" 2>/dev/null; fi
        done
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
        # 143 = TERM, 131 = QUIT: the signal we sent, delivered before the child installed a handler.
        case $code in 0|143|131) ;; *) clean=no ;; esac
    done
    kill -s TERM "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    return 0
}

cd "$APP_DIR" || {
    log error "app directory missing" ",\"dir\":\"$APP_DIR\""
    exit 1
}

# Services in atbb.yaml order (upstreams first, so nginx has somewhere to send the first requests), nginx
# last. A stop that arrives meanwhile starts nothing more.
for name in $ATBB_SERVICES; do
    [ -z "$stopping" ] || break
    get "svc_${name}_cwd"; cwd=$v
    get "svc_${name}_env"; senv=$v
    get "svc_${name}_argv"; argv=$v
    get "svc_${name}_port"; port=$v
    (run_in "$APP_DIR" "$cwd" "$senv" "$argv") &
    eval "pid_$name=\$!"
    started="$started $name"
    pid_of "$name"
    log info "started child" ",\"child\":\"$name\",\"pid\":$pid${port:+,\"port\":$port}"
done
if [ -z "$stopping" ]; then
    # -e: nginx opens its compiled-in error log before reading the config; that path is read-only here.
    nginx -e stderr -c "$NGINX_CONF" &
    nginx_pid=$!
    started="$started nginx"
    log info "started child" ",\"child\":\"nginx\",\"pid\":$nginx_pid"
fi

# No `wait -n` in POSIX sh (BusyBox's ignores -n): poll once a second. The sleep runs in the background
# so a signal interrupts `wait` at once instead of after the sleep.
failed='' failed_code=0
while [ -z "$stopping" ]; do
    for name in $started; do
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

# Stop order: nginx first so no new request arrives, then the services in reverse start order (a later
# service may call an earlier one while it drains).
reversed=''
for name in $ATBB_SERVICES; do reversed="$name $reversed"; done

clean=yes
if [ -n "$failed" ]; then
    log error "child exited; stopping the others" ",\"child\":\"$failed\",\"code\":$failed_code"
    # shellcheck disable=SC2086 # one word per name
    stop_group "$FAIL_GRACE" nginx $reversed
    log error "supervisor exiting" ",\"reason\":\"$failed exited\""
    # A clean exit of a child is still a failure of the container: the app is no longer whole. 143 is
    # reserved for "stopped before the supervisor could listen" (tini -e 143 maps it to 0), so a child
    # killed by someone's SIGTERM is reported as 1.
    case $failed_code in 0|143) exit 1 ;; esac
    exit "$failed_code"
fi

log info "signal received; stopping children" ",\"signal\":\"$stopping\""
stop_group "$NGINX_GRACE" nginx
for name in $reversed; do
    get "svc_${name}_grace"
    stop_group "$v" "$name"
done
if [ "$clean" = yes ]; then
    log info "supervisor exiting" ",\"reason\":\"signal\",\"code\":0"
    exit 0
fi
log warn "supervisor exiting" ",\"reason\":\"signal\",\"code\":1"
exit 1
