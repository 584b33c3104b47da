"""The operator's env file: parsed with python-dotenv, validated all at once, values never echoed.

Every task that starts containers calls `load_env_file` first, so a mistake is reported before anything
runs, with every problem listed together rather than one per attempt.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from atbb_kit.errors import EnvFileError

DID = re.compile(r"did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.-]+(%3A[0-9]+)?(:[A-Za-z0-9._-]+)*)")
MIN_SECRET = 32


def _postgres_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        return "must be a postgres:// or postgresql:// URL"
    if not parts.hostname:
        return "must name a host, e.g. postgres://user:pass@db:5432/atbb"
    if not parts.path.strip("/"):
        return "must name a database after the host, e.g. .../atbb"
    return None


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL"
    return None


def _ws_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        return "must be a ws:// or wss:// URL"
    return None


def _did(value: str) -> str | None:
    if not DID.fullmatch(value):
        return "must be a did:plc: or did:web: DID (e.g. did:plc: and 24 base32 characters)"
    return None


def _secret(value: str) -> str | None:
    if len(value) < MIN_SECRET:
        return f"must be at least {MIN_SECRET} characters (generate one with `inv secret` or `openssl rand -hex 32`)"
    return None


def _positive_int(value: str) -> str | None:
    if not value.isdigit() or int(value) < 1:
        return "must be a whole number of days, 1 or more"
    return None


def _log_level(value: str) -> str | None:
    if value not in ("debug", "info", "warn", "error"):
        return "must be one of debug, info, warn, error"
    return None


# Checks by variable; a variable without a check only needs to be present when required.
CHECKS = {
    "DATABASE_URL": _postgres_url,
    "FORUM_DID": _did,
    "PDS_URL": _http_url,
    "OAUTH_PUBLIC_URL": _http_url,
    "SESSION_SECRET": _secret,
    "JETSTREAM_URL": _ws_url,
    "SESSION_TTL_DAYS": _positive_int,
    "LOG_LEVEL": _log_level,
}


@dataclass(frozen=True)
class EnvReport:
    values: dict[str, str]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(values: Mapping[str, str | None], required: Sequence[str], name: str = ".env") -> EnvReport:
    """Pure: every problem at once, naming variables, never their values."""
    clean = {k: (v or "") for k, v in values.items()}
    problems: list[str] = []
    missing = [var for var in required if not clean.get(var, "").strip()]
    if missing:
        problems.append(f"{name}: missing required variable(s): {', '.join(missing)}")
    for var, check in CHECKS.items():
        value = clean.get(var, "")
        if not value.strip() or var in missing:
            continue
        reason = check(value.strip())
        if reason:
            problems.append(f"{name}: {var} {reason}")
    return EnvReport(clean, tuple(problems))


def read(path: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def permission_warning(path: Path) -> str | None:
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
    return None


def load_env_file(path: Path, required: Sequence[str]) -> EnvReport:
    """Read and validate `path`; raise EnvFileError listing every problem."""
    if not path.is_file():
        raise EnvFileError(
            f"env file {path} does not exist",
            "copy .env.production.example to it and fill it in (or pass --env-file)",
        )
    report = validate(read(path), required, path.name)
    warning = permission_warning(path)
    if not report.ok:
        raise EnvFileError(
            "\n".join(report.problems), f"edit {path}; the variables are described in .env.production.example"
        )
    return EnvReport(report.values, (), (warning,) if warning else ())
