# Stand-in for postgres:16-alpine, built by scripts/standin-images.sh only where Docker Hub is
# unreachable. Debian bookworm carries PostgreSQL 15, which serves everything the kit uses (connect,
# migrate, pg_dump/pg_restore); the entrypoint copies the official image's environment contract.
#
# Build context: scripts/standin/ (for postgres-entrypoint.sh).

ARG BASE=atbb-standin/debian:bookworm
FROM ${BASE}

# Fixed uid/gid as in the official Debian-based image, so volumes keep a predictable owner.
RUN set -eu; \
    groupadd --system --gid 999 postgres; \
    useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres; \
    mkdir -p /var/lib/postgresql; \
    chown postgres:postgres /var/lib/postgresql

# The Debian package would create and start a "main" cluster; the entrypoint owns initialisation.
# Unpinned on purpose: a stand-in follows whatever bookworm currently ships.
# hadolint ignore=DL3008
RUN set -eu; \
    mkdir -p /etc/postgresql-common/createcluster.d; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/atbb-standin.conf; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15; \
    rm -rf /var/lib/apt/lists/*; \
    for tool in /usr/lib/postgresql/15/bin/*; do ln -sf "$tool" /usr/local/bin/; done; \
    mkdir -p /var/run/postgresql; \
    chown postgres:postgres /var/run/postgresql; \
    chmod 3777 /var/run/postgresql

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh

ENV LANG=C.UTF-8 \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data

ENTRYPOINT ["docker-entrypoint.sh"]
# SIGINT is PostgreSQL's "fast" shutdown: sessions are cut and the server stops at once, instead of
# waiting (SIGTERM, "smart") until Docker's timeout kills it.
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
