#!/usr/bin/env bash
# The README's main job: from a fresh machine to the example forum running on http://localhost:8080.
# Installs what is missing (scripts/bootstrap.sh), builds the image from examples/forum, starts it with
# PostgreSQL through Compose, migrates, and waits until it is healthy. Safe to run again.
#
# Where no container registry is reachable, bootstrap builds local stand-in base images; this script
# then passes them through the kit's own overrides (ATBB_IMAGE_BASE, ATBB_COMPOSE_POSTGRES_IMAGE) and
# says so. With registry access, the official bases from atbb.yaml are used.
# Usage: scripts/demo.sh [extra `inv compose-up` flags, e.g. --build]
set -eu -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/bootstrap.sh

images=build/test-images.env
if [ -f "$images" ] && grep -q '^ATBB_IMAGE_BASE=atbb-standin/' "$images"; then
    echo "==> no registry reachable here: building on the local stand-in base images ($images)"
    set -a
    # shellcheck disable=SC1090
    . "./$images"
    set +a
fi

echo "==> inv compose-up --demo $*"
exec .venv/bin/inv compose-up --demo "$@"
