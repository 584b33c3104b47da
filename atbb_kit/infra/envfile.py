"""The operator's env file: read like Compose reads it, checked line by line, values never echoed.

Every task that starts containers calls `load_env_file` first, so a mistake is reported before anything
runs, with every problem listed together rather than one per attempt.

Decisions:
- The kit reads the file with python-dotenv's parser, which follows Compose's `env_file:` rules (quotes
  stripped, `export` accepted, ` #` comments dropped), but never expands variables: a value is what the
  file says, not what the host's environment adds to it.
- Every line is a variable (NAME=value, NAME a known variable), a comment or blank, or an error: a line
  without `=`, one python-dotenv cannot parse, an unknown name (a typo must not silently do nothing), a
  name set twice, a control character. Known names are atbb.yaml's env lists, the Compose example's
  POSTGRES_* and the documented future REDIS_URL.
- `docker run --env-file` reads the same file differently: it keeps quotes, trailing spaces and ` #`
  comments as part of the value, refuses `export` and spaces around `=`, reads a multi-line value line by
  line and copies a NAME without `=` from the host. Each line whose meaning differs is a *mismatch*: a
  warning for the kit's own tasks (they hand the values over themselves, as validated), an error where
  the file itself goes to `docker run --env-file` (`docker_run=True`), a warning row in `inv doctor`.
- A `$NAME` or `${NAME}` in an unquoted or double-quoted value is an error everywhere: Compose replaces
  it with the host's variable, docker run and the kit keep it as written, so there is no one value to
  validate. (A literal `$` followed by a letter has no spelling all three read alike.)
- Messages name the file, the line and the variable, never a value, and never the text of a line that
  is not a variable (it may be a pasted secret).
"""

from __future__ import annotations

import difflib
import io
import re
import shlex
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from atbb_kit.core.errors import EnvFileError

DID = re.compile(r"did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.-]+(%3A[0-9]+)?(:[A-Za-z0-9._-]+)*)")
MIN_SECRET = 32
# The image takes sessions of 1 to 3650 days (examples/forum/packages/config).
MAX_TTL_DAYS = 3650
# An env file holds a dozen short lines; anything this large is the wrong file.
MAX_BYTES = 64 * 1024
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables that belong in the file without being one of atbb.yaml's env lists.
COMPOSE_ONLY = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
ALWAYS_KNOWN = (*COMPOSE_ONLY, "REDIS_URL")
# Compose substitutes these in unquoted and double-quoted values; docker run and the kit do not.
_REFERENCE = re.compile(r"\$(?:\{|[A-Za-z_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PLAIN_FIX = "write each variable as NAME=value on one line: no quotes, no `export`, no spaces around =, no # after it"


def _postgres_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        return "must be a postgres:// or postgresql:// URL"
    if not parts.hostname:
        return "must name a host, e.g. postgres://user:pass@db:5432/atbb"
    if not parts.path.strip("/"):
        return "must name a database after the host, e.g. .../atbb"
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number from 0 to 65535
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
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
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_TTL_DAYS:
        return f"must be a whole number of days from 1 to {MAX_TTL_DAYS}"
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
    # Lines docker run --env-file reads differently from the kit and Compose (also among `warnings`
    # unless they were made problems).
    mismatches: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(values: Mapping[str, str | None], required: Sequence[str], name: str = ".env") -> EnvReport:
    """Pure: every problem with the values at once, naming variables, never their values."""
    clean = {k: (v or "") for k, v in values.items()}
    problems: list[str] = []
    missing = [var for var in required if not clean.get(var, "").strip()]
    if missing:
        problems.append(f"{name}: missing required variable(s): {', '.join(missing)}")
    for var, check in CHECKS.items():
        value = clean.get(var, "")
        if not value.strip() or var in missing:
            continue
        try:
            reason = check(value.strip())
        except ValueError:  # urlsplit refuses some malformed URLs outright ("Invalid IPv6 URL")
            reason = "is not a well-formed URL"
        if reason:
            problems.append(f"{name}: {var} {reason}")
    return EnvReport(clean, tuple(problems))


# ---------------------------------------------------------------------------------------------------------
# Reading the file, line by line


class MissingEnvFile(EnvFileError):
    """The env file does not exist (doctor reports this one differently from a file it cannot use)."""


@dataclass(frozen=True)
class Parsed:
    """The kit's reading of an env file: values, and what is wrong or ambiguous, by line."""

    values: dict[str, str]
    problems: tuple[str, ...] = ()
    # (line, variable, why docker run --env-file reads it differently)
    mismatches: tuple[tuple[int, str, str], ...] = ()


def _docker_reading(line: str) -> tuple[str, str | None] | None:
    """How `docker run --env-file` reads one physical line: None for a blank line or a comment, else (the
    name part, everything after the first = or None when there is no =). Docker refuses a line whose name
    part is empty or holds a space."""
    text = line.lstrip()
    if not text or text.startswith("#"):
        return None
    name, eq, value = text.partition("=")
    return name, (value if eq else None)


def _why_values_differ(raw: str) -> str:
    """Why docker's literal `raw` (everything after the =) is not the kit's value."""
    if raw[:1] in ("'", '"'):
        return "is quoted: docker run --env-file keeps the quotes as part of the value"
    if raw[:1].isspace():
        return "has a space after the =: docker run --env-file keeps it as part of the value"
    if re.search(r"\s#", raw):
        return "has a # comment after the value: docker run --env-file keeps it as part of the value"
    if raw != raw.rstrip():
        return "ends with spaces: docker run --env-file keeps them as part of the value"
    return "is read with another value by docker run --env-file"


def _mismatch(statement: str, key: str, value: str) -> str | None:
    """Why `docker run --env-file` reads this statement (one python-dotenv binding) differently, or None."""
    lines = statement.split("\n")
    if len(lines) > 1:
        return f"spans {len(lines)} lines: docker run --env-file reads each line on its own"
    if re.match(r"export\s", lines[0].lstrip()):
        return "starts with `export`: docker run --env-file refuses that line"
    reading = _docker_reading(lines[0])
    if reading is None:
        return "is a comment for docker run --env-file"
    name, raw = reading
    if any(ch.isspace() for ch in name):
        return "has a space before the =: docker run --env-file refuses that line"
    if name != key:
        return "has a quoted name: docker run --env-file keeps the quotes in the name"
    if raw is not None and raw != value:
        return _why_values_differ(raw)
    return None


def _known_names(required: Collection[str], known: Collection[str]) -> set[str]:
    return {*required, *known, *CHECKS, *ALWAYS_KNOWN}


def parse(
    text: str, name: str = ".env", required: Collection[str] = (), known: Collection[str] | None = None
) -> Parsed:
    """Pure: the kit's reading of `text`. `known`: the variable names allowed besides `required` (None:
    any name, for reading the kit's own example file)."""
    from dotenv.parser import parse_stream

    problems: list[str] = []
    mismatches: list[tuple[int, str, str]] = []
    values: dict[str, str] = {}
    first_line: dict[str, int] = {}
    allowed = None if known is None else _known_names(required, known)
    physical = text.split("\n")
    if "\r" in text.replace("\r\n", ""):
        problems.append(f"{name}: holds a carriage return (\\r) outside a CRLF line ending — save it with LF endings")
    for number, line in enumerate(physical, start=1):
        if _CONTROL.search(line):
            problems.append(f"{name}:{number}: holds a control character — remove it (retype the line)")

    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        lead = len(original) - len(original.lstrip())
        lineno = binding.original.line + original[:lead].count("\n")
        statement = original[lead:].rstrip("\r\n").replace("\r\n", "\n")
        if binding.error:
            problems.append(f"{name}:{lineno}: not a variable, a comment or a blank line (expected NAME=value)")
            continue
        key = binding.key
        if key is None:
            continue  # blank or comment
        if binding.value is None:
            problems.append(
                f"{name}:{lineno}: a line without `=` (docker run --env-file would copy the host's variable of that "
                "name; the kit would read it as empty)"
            )
            continue
        if not NAME.fullmatch(key):
            problems.append(f"{name}:{lineno}: the name before = is not a variable name (letters, digits and _)")
            continue
        if allowed is not None and key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name}:{lineno}: {key} is not a variable atBB reads{hint}")
            continue
        if key in first_line:
            problems.append(f"{name}:{lineno}: {key} is set again (first on line {first_line[key]}); keep one")
            continue
        first_line[key] = lineno
        value = binding.value
        single_quoted = statement.split("=", 1)[-1].lstrip()[:1] == "'"
        if not single_quoted and _REFERENCE.search(value):
            problems.append(
                f"{name}:{lineno}: {key} holds a $NAME or ${{NAME}} reference: Compose replaces it with the host's "
                "variable, docker run and the kit keep it as written (percent-encode a $ in a URL as %24)"
            )
        why = _mismatch(statement, key, value)
        if why:
            mismatches.append((lineno, key, why))
        values[key] = value
    return Parsed(values, tuple(problems), tuple(mismatches))


def _read_text(path: Path) -> str:
    """The file's text, or an EnvFileError saying why it cannot be the env file."""
    shown = str(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise MissingEnvFile(
            f"env file {shown} does not exist",
            "copy .env.production.example to it and fill it in (or pass --env-file)",
        ) from None
    except OSError as exc:
        raise EnvFileError(f"cannot read env file {shown[:200]}: {exc.strerror}", "check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise EnvFileError(f"env file {shown} is a folder, not a file", "pass the file itself, e.g. --env-file .env")
    if not stat.S_ISREG(info.st_mode):
        raise EnvFileError(
            f"env file {shown} is not a regular file (a device, pipe or socket)",
            "pass a file written from .env.production.example",
        )
    if info.st_size > MAX_BYTES:
        raise EnvFileError(
            f"env file {shown} is {info.st_size} bytes; an env file is at most {MAX_BYTES // 1024} KiB",
            "pass the env file written from .env.production.example, not another file",
        )
    try:
        data = path.read_bytes()[: MAX_BYTES + 1]
    except OSError as exc:
        raise EnvFileError(
            f"cannot read env file {shown}: {exc.strerror}", "check its permissions (it should be yours, mode 600)"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise EnvFileError(
            f"{path.name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
        ) from None


def read(path: Path) -> dict[str, str]:
    """The kit's values of the file at `path` (no checks of names; for the kit's own example file)."""
    return parse(_read_text(path), path.name).values


def permission_warning(path: Path) -> str | None:
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        fix = shlex.join(["chmod", "600", str(path)])
        return f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); run: {fix}"
    return None


def examine(path: Path, required: Sequence[str], known: Collection[str] = (), *, docker_run: bool = False) -> EnvReport:
    """Read and check `path`: its lines, then its values. Raises EnvFileError (MissingEnvFile) only when the
    file cannot be read at all; everything else is in the report.

    docker_run=True: the file itself is handed to `docker run --env-file`, so a line docker reads
    differently is a problem, not a warning.
    """
    parsed = parse(_read_text(path), path.name, required, known)
    checked = validate(parsed.values, required, path.name)
    described = tuple(f"{path.name}:{line}: {var} {why}" for line, var, why in parsed.mismatches)
    problems = [*parsed.problems, *checked.problems, *(described if docker_run else ())]
    warnings = [*(() if docker_run else described)]
    permission = permission_warning(path)
    if permission:
        warnings.append(permission)
    return EnvReport(checked.values, tuple(problems), tuple(warnings), described)


def load_env_file(
    path: Path, required: Sequence[str], known: Collection[str] = (), *, docker_run: bool = False
) -> EnvReport:
    """Read and validate `path`; raise EnvFileError listing every problem."""
    report = examine(path, required, known, docker_run=docker_run)
    if not report.ok:
        fix = (
            PLAIN_FIX if docker_run and report.mismatches else "the variables are described in .env.production.example"
        )
        raise EnvFileError("\n".join(report.problems), f"edit {path}; {fix}")
    return report
