"""Task flags checked before anything runs: each bad value is a one-line `error: --flag ... — fix`.

Invoke hands every flag over as the user typed it. The tasks call these first, before loading the config
or asking the engine anything, so a bad flag is named as a flag (not as the atbb.yaml line it would
override) and never reaches a command, a dry run or a traceback. Number flags are declared with a None
default and parsed here: Invoke's own int() of `--timeout abc` would fail outside the error boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from atbb_kit.core import imageref
from atbb_kit.core.errors import ConfigError
from atbb_kit.core.imageref import shown

PLATFORM = re.compile(r"[a-z0-9]{1,32}/[a-z0-9_]{1,32}(/v[0-9]{1,2})?")
PATH_MAX = 4096
# buildx cache backends usable as a bare `type=NAME` (the others need parameters the flag cannot carry).
CACHE_BACKENDS = ("gha",)


def whole_number(flag: str, value: object, default: int, low: int, high: int) -> int:
    """`--flag N` as an int from `low` to `high`; None (flag not given) is `default`."""
    if value is None:
        return default
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise ConfigError(
            f"--{flag} {shown(str(value))}: expected a whole number from {low} to {high}",
            f"e.g. --{flag} {default}",
        )
    return int(text)


NETWORK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def network(flag: str, value: str | None) -> str | None:
    """`--flag NAME` as a Docker network name (or None when not given)."""
    if value is None:
        return None
    if not NETWORK.fullmatch(str(value)):
        raise ConfigError(
            f"--{flag} {shown(str(value))}: not a Docker network name (letters, digits, _ . -)",
            f"see the names with `docker network ls`, e.g. --{flag} my_db_net",
        )
    return str(value)


def image_ref(flag: str, value: str | None) -> str | None:
    """`--flag REF` as a docker image reference (or None when not given)."""
    if value is None:
        return None
    reason = imageref.problem(value)
    if reason:
        raise ConfigError(f"--{flag}: {reason}", f"e.g. --{flag} {imageref.EXAMPLE}")
    return value


def image_refs(flag: str, values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else [image_ref(flag, v) or "" for v in values]


def platforms(value: str | None) -> list[str] | None:
    """`--platform linux/amd64,linux/arm64` as a list of os/arch pairs (None when not given)."""
    if value is None:
        return None
    items = [p.strip() for p in value.split(",")]
    bad = [p for p in items if not PLATFORM.fullmatch(p)]
    if not value.strip() or bad:
        what = shown(bad[0]) if bad and bad[0] else "an empty platform"
        raise ConfigError(
            f"--platform: {what} is not os/arch like linux/amd64", "e.g. --platform linux/amd64,linux/arm64"
        )
    return items


def choice(flag: str, value: str | None, choices: Sequence[str]) -> str | None:
    if value is None or value in choices:
        return value
    raise ConfigError(f"--{flag} {shown(value)} is not one of {', '.join(choices)}", f"e.g. --{flag} {choices[0]}")


def path(flag: str, value: str) -> str:
    """A file or folder path: not empty, no control characters (a newline would break every message that
    names it), not longer than the system allows."""
    if not value or len(value) > PATH_MAX or any(ord(ch) < 32 for ch in value):
        raise ConfigError(
            f"--{flag} {shown(value)} is not a usable path"
            + (f" (longer than {PATH_MAX} characters)" if len(value) > PATH_MAX else ""),
            f"pass the path of a file, e.g. --{flag} .env" if flag == "env-file" else f"pass a path with --{flag}",
        )
    return value
