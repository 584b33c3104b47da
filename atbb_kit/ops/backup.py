"""Database access through one-off containers of the PostgreSQL image: connection checks, pg_dump, pg_restore.

Pure: this module parses DATABASE_URL, gives libpq its environment and reads the tools' output; the
`docker` commands (psql, pg_dump, pg_restore in one-off containers) are built in atbb_kit/commands/pg.py and
handed to the Runner by the tasks (atbb_kit/tasks/deployment.py).

Decisions:
- The client tools run in a container of `compose.postgres_image`, never on the host: the host may have no
  PostgreSQL client at all, or an older one (pg_dump refuses a newer server), and inside the Compose
  network the host name `postgres` resolves.
- The connection travels as libpq's PG* environment variables, named in argv (`-e PGPASSWORD`) with their
  values in the docker client's own environment. argv is visible to every user of the machine (`ps`) and
  is what the Runner prints; the password must be in neither. The values are `Secret`s, printed as ***.
- A dump leaves its container through `docker cp`, not stdout: the Runner passes text, a custom-format
  dump is binary, and `docker cp` also works with a remote engine (a bind mount would name a folder on
  the engine's machine, not this one).
- pg_restore runs with --single-transaction: a restore that fails half-way rolls back and leaves the
  database as it was, instead of half-cleaned.
"""

from __future__ import annotations

import re
import shlex
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from atbb_kit.commands.base import Secret, reveal
from atbb_kit.core.errors import ConfigError, EnvFileError, KitError
from atbb_kit.core.flags import path as checked_path

# A connection attempt gives up after this many seconds: `inv doctor` must answer quickly; backup and
# restore allow more, for TLS to a managed database far away.
CONNECT_TIMEOUT = 3
TRANSFER_CONNECT_TIMEOUT = 10
# pg_dump's custom format starts with these five bytes; anything else is not something we can restore.
DUMP_MAGIC = b"PGDMP"
BACKUP_NAME = re.compile(r"atbb-\d{8}-\d{6}\.dump")
# The host name the Compose example gives PostgreSQL; it only resolves on the stack's network.
COMPOSE_DB_HOST = "postgres"

# libpq reads these from the environment; sslmode and friends may also come from the URL's query string.
_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


@dataclass(frozen=True)
class DbTarget:
    """DATABASE_URL taken apart. Everything but the password may be printed (psql prints it too)."""

    host: str
    port: int
    user: str
    password: Secret
    dbname: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"

    @property
    def on_compose_host(self) -> bool:
        return self.host == COMPOSE_DB_HOST


def parse_database_url(url: str) -> DbTarget:
    """DATABASE_URL -> DbTarget; an EnvFileError (exit 2, like every env file mistake) naming what is wrong,
    never the value, when it cannot be used."""
    fix = "fix DATABASE_URL in the env file (format: postgres://USER:PASSWORD@HOST:5432/DATABASE)"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgres", "postgresql"):
        raise EnvFileError("DATABASE_URL must be a postgres:// or postgresql:// URL", fix)
    try:
        port = parts.port or 5432
    except ValueError:
        raise EnvFileError("DATABASE_URL has a port that is not a number from 1 to 65535", fix) from None
    if not parts.hostname:
        raise EnvFileError("DATABASE_URL must name a host", fix)
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        raise EnvFileError("DATABASE_URL must name one database after the host, e.g. .../atbb", fix)
    params = tuple((k, v) for k, v in parse_qsl(parts.query) if k in _QUERY_ENV)
    return DbTarget(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "postgres"),
        password=Secret(unquote(parts.password or "")),
        dbname=dbname,
        params=params,
    )


def pg_env(target: DbTarget, connect_timeout: int | None = CONNECT_TIMEOUT) -> dict[str, str]:
    """libpq's environment for `target`. The password is a Secret; nothing here goes into argv."""
    env: dict[str, str] = {
        "PGHOST": target.host,
        "PGPORT": str(target.port),
        "PGUSER": target.user,
        "PGDATABASE": target.dbname,
    }
    if reveal(target.password):
        env["PGPASSWORD"] = target.password
    for key, value in target.params:
        env[_QUERY_ENV[key]] = value
    if connect_timeout and "PGCONNECT_TIMEOUT" not in env:
        env["PGCONNECT_TIMEOUT"] = str(connect_timeout)
    return env


def redact(text: str, secrets: Sequence[str]) -> str:
    """Masks every secret in `text`; a belt to the Secret type's braces for tool output we print."""
    for secret in sorted((reveal(s) for s in secrets if reveal(s)), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --- reading results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    client_major: int
    server_version_num: int
    public_tables: int

    @property
    def server_major(self) -> int:
        # server_version_num is MMmmpp since PostgreSQL 10 (150014 = 15.14).
        return self.server_version_num // 10000


_PG_DUMP_VERSION = re.compile(r"pg_dump \(PostgreSQL\) (\d+)(?:\.(\d+))?")


def parse_probe(stdout: str) -> ProbeResult:
    """Reads PROBE_SCRIPT's output: `pg_dump (PostgreSQL) 16.4` then `160004|3`."""
    match = _PG_DUMP_VERSION.search(stdout)
    row = re.search(r"^(\d+)\|(\d+)\s*$", stdout, re.MULTILINE)
    if not match or not row:
        raise KitError(
            "could not read the PostgreSQL versions from the check container's output",
            "make sure compose.postgres_image is a PostgreSQL image (it must carry pg_dump and psql)",
        )
    return ProbeResult(int(match.group(1)), int(row.group(1)), int(row.group(2)))


def version_problem(result: ProbeResult, image: str) -> KitError | None:
    """pg_dump refuses to dump a server newer than itself; say so before it does, with the fix."""
    if result.client_major >= result.server_major:
        return None
    return KitError(
        f"the database runs PostgreSQL {result.server_major}, but {image} carries pg_dump {result.client_major}, "
        "which cannot dump a newer server",
        f"use a PostgreSQL {result.server_major} (or newer) image: ATBB_COMPOSE_POSTGRES_IMAGE="
        f"postgres:{result.server_major}-alpine (compose.postgres_image in atbb.yaml)",
    )


# (phrase in psql/pg_dump stderr, message, fix); the first match wins. Messages use the target's host,
# user and database names, which libpq prints itself, never the password.
_CONNECT_ERRORS: tuple[tuple[str, str, str], ...] = (
    (
        "could not translate host name",
        "cannot reach the database host {host!r}: its name does not resolve from the check's container",
        "if the database runs on another Docker network, pass --network NAME (or set compose.network in "
        "atbb.yaml); with the Compose example the host is `postgres` and the stack must be running "
        "(inv compose-up); otherwise fix DATABASE_URL's host",
    ),
    (
        "connection refused",
        "nothing accepts connections at {host}:{port}",
        "start the database, or fix DATABASE_URL's host and port",
    ),
    (
        "timeout expired",
        "no answer from {host}:{port} within {timeout} s",
        "check that the host is up and that no firewall drops the connection",
    ),
    (
        "password authentication failed",
        "the database rejected the password of user {user!r}",
        "fix the password in DATABASE_URL; with Compose it must be the POSTGRES_PASSWORD of the database's "
        "first start (the volume keeps it; changing the env file later does not change it)",
    ),
    (
        "no pg_hba.conf entry",
        "the server does not accept connections from this client (pg_hba.conf)",
        "allow the client's address on the server, or add ?sslmode=require to DATABASE_URL if it needs TLS",
    ),
    (
        "does not exist",
        "{what} on {host}:{port}",
        "create it, or fix the user or database name in DATABASE_URL",
    ),
    (
        "server version mismatch",
        "pg_dump in {image} is older than the database server",
        "use a postgres image of the server's major version or newer (compose.postgres_image)",
    ),
)


def connect_error(stderr: str, target: DbTarget, image: str, timeout: int = CONNECT_TIMEOUT) -> KitError:
    """psql/pg_dump's stderr -> one KitError with what went wrong and what to do."""
    clean = redact(stderr, [target.password])
    lower = clean.lower()
    last = next((ln.strip() for ln in reversed(clean.strip().splitlines()) if ln.strip()), "")
    for phrase, message, fix in _CONNECT_ERRORS:
        if phrase in lower:
            what = _does_not_exist(clean) if phrase == "does not exist" else ""
            return KitError(
                message.format(
                    host=target.host,
                    port=target.port,
                    user=target.user,
                    timeout=timeout,
                    image=image,
                    what=what,
                ),
                fix,
            )
    return KitError(
        f"the database check failed: {last[:200] or 'no output'}",
        "check DATABASE_URL; the line above is PostgreSQL's own message",
    )


def _does_not_exist(text: str) -> str:
    match = re.search(r'(database|role) "([^"]+)" does not exist', text)
    if not match:
        return "a database object does not exist"
    kind = "database" if match.group(1) == "database" else "user"
    return f"{kind} {match.group(2)!r} does not exist"


# --- files --------------------------------------------------------------------------------------------


def backup_name(now: datetime) -> str:
    """`atbb-YYYYmmdd-HHMMSS.dump`; callers pass UTC so names sort and never jump with daylight saving."""
    return now.strftime("atbb-%Y%m%d-%H%M%S.dump")


def is_custom_dump(head: bytes) -> bool:
    return head.startswith(DUMP_MAGIC)


# --- paths the operator passes (inv backup --output, inv restore FILE) --------------------------------


def check_output_dir(folder: Path) -> None:
    """Refuse an `--output` folder that cannot hold a dump, before anything runs (dry runs too).

    The nearest folder that exists is asked to hold a throwaway folder, removed at once: permission bits
    do not tell (root passes every access() check, yet nothing can be created under /proc or in a
    read-only mount).
    """
    checked_path("output", str(folder))
    fix = "choose a folder you can write to, e.g. --output backups"
    try:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--output {folder} is not a folder", "pass a folder, e.g. --output backups")
        nearest = folder
        while not nearest.exists():
            nearest = nearest.parent
        if not nearest.is_dir():
            raise ConfigError(f"--output {folder}: {nearest} is not a folder", fix)
        Path(tempfile.mkdtemp(prefix=".atbb-write-check-", dir=nearest)).rmdir()
    except OSError as exc:
        raise ConfigError(f"--output {folder} cannot be written: {exc.strerror}", fix) from None


def restore_command(dump: Path) -> str:
    """`inv restore FILE`, quoted for pasting: --output may name any folder, spaces and $ included."""
    return shlex.join(["inv", "restore", str(dump)])


def check_dump_file(dump: Path) -> None:
    """`inv restore FILE`: an existing, readable, regular file that starts like a pg_dump custom archive."""
    checked_path("file", str(dump))
    fix = "pass a file written by `inv backup` (ls backups/)"
    try:
        mode = dump.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise KitError(f"backup file {dump} does not exist", fix) from None
    except OSError as exc:
        raise KitError(f"cannot read backup file {dump}: {exc.strerror}", fix) from None
    if stat.S_ISDIR(mode):
        raise KitError(
            f"backup file {dump} is a folder, not a file", "pass one dump inside it, e.g. backups/atbb-*.dump"
        )
    if not stat.S_ISREG(mode):
        raise KitError(f"backup file {dump} is not a regular file (a device, pipe or socket)", fix)
    try:
        with dump.open("rb") as fh:
            head = fh.read(len(DUMP_MAGIC))
    except OSError as exc:
        raise KitError(f"cannot read backup file {dump}: {exc.strerror}", "check its permissions") from None
    if not is_custom_dump(head):
        raise KitError(
            f"{dump} is not a pg_dump custom-format archive (it does not start with PGDMP)",
            "pass a file written by `inv backup` (or by pg_dump -Fc)",
        )
