#!/bin/sh
# Entrypoint of the PostgreSQL stand-in image: the subset of the official postgres image's contract
# that the kit relies on.
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_PASSWORD          its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB                database created on first start (default: POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP clients (default scram-sha-256)
#   PGDATA                     data directory (default /var/lib/postgresql/data, a volume)
#   /docker-entrypoint-initdb.d/*.sql and *.sh run once, after the database is created.
# Arguments starting with "-" are passed to postgres, as with the official image.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-}
POSTGRES_HOST_AUTH_METHOD=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

log() { printf 'postgres-entrypoint: %s\n' "$*" >&2; }

case "${1:-}" in
    -*) set -- postgres "$@" ;;
esac

# Anything but the server (psql, pg_dump, a shell...) runs as asked.
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    # Volumes and tmpfs mounts arrive root-owned; the server refuses a data dir it does not own.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    # setpriv execs in place (no intermediate process), so the server stays PID 1 and receives
    # Docker's stop signal directly.
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        log "error: POSTGRES_PASSWORD is not set."
        log "Set it, or set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one."
        exit 1
    fi

    log "initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
    # The password goes through a private file, never the command line (visible in ps).
    pwfile=
    if [ -n "$POSTGRES_PASSWORD" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    fi
    # Inside the container (socket and loopback) trust, as in the official image: health checks and
    # `docker exec psql` need no password; every other client must authenticate.
    initdb --username="$POSTGRES_USER" ${pwfile:+"--pwfile=$pwfile"} \
        --auth-local=trust --auth-host=trust --encoding=UTF8 >/dev/null
    if [ -n "$pwfile" ]; then rm -f "$pwfile"; fi

    printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\nport = 5432\n" >>"$PGDATA/postgresql.conf"

    # The setup server listens on no TCP address and on a private socket: clients, and above all
    # `pg_isready` health checks (which use the default socket), must not see a half-made database.
    # The official image reuses the default socket here, so its readiness checks can pass too early.
    PGHOST=$(mktemp -d)
    export PGHOST
    pg_ctl --silent --wait --pgdata="$PGDATA" \
        -o "-c listen_addresses='' -c unix_socket_directories='$PGHOST'" start
    if [ "$POSTGRES_DB" != postgres ]; then
        createdb --username="$POSTGRES_USER" -- "$POSTGRES_DB"
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sql)
                log "running $f"
                psql --quiet -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" -f "$f"
                ;;
            *.sh)
                log "running $f"
                sh "$f"
                ;;
            *) log "ignoring $f" ;;
        esac
    done
    pg_ctl --silent --wait --pgdata="$PGDATA" --mode=fast stop
    rm -rf "$PGHOST"
    unset PGHOST
    log "initialisation complete"
fi

exec "$@"
