"""PostgreSQL client argv: psql, pg_dump and pg_restore, each in a one-off container of the PostgreSQL image.

Pure builders returning `Command`s. The decisions (tools in a container, the connection as libpq's PG*
variables named in argv with their values in the client's environment, dumps leaving through `docker cp`,
pg_restore in one transaction) are recorded in atbb_kit/ops/backup.py, which parses DATABASE_URL and reads
the tools' output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from atbb_kit.commands.base import Command
from atbb_kit.commands.docker import DOCKER_HINT, oneoff

# Where dumps live inside the one-off containers; /tmp is writable in every postgres image.
CONTAINER_DUMP = "/tmp/atbb.dump"  # noqa: S108 (inside a private one-off container)


# One round trip answers everything backup and restore need to know first: the client's version, the
# server's, and whether the database already holds tables. psql's -w never prompts for a password.
PROBE_SQL = (
    "select current_setting('server_version_num'), "
    "(select count(*) from pg_catalog.pg_tables where schemaname = 'public')"
)
PROBE_SCRIPT = f'pg_dump --version && psql -X -A -t -w -v ON_ERROR_STOP=1 -c "{PROBE_SQL}"'
CHECK_ARGS = ("psql", "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-c", "select 1")


def probe(docker: str, image: str, env: Mapping[str, str], network: str | None, *, name: str) -> Command:
    return oneoff(docker, image, ("sh", "-c", PROBE_SCRIPT), env, name=name, network=network)


def connection_check(docker: str, image: str, env: Mapping[str, str], network: str | None, *, name: str) -> Command:
    """psql `select 1`: proves host, port, credentials and database name, not just a listening socket
    (pg_isready would pass with a wrong password)."""
    return oneoff(docker, image, CHECK_ARGS, env, name=name, network=network)


def dump_args(path: str = CONTAINER_DUMP) -> tuple[str, ...]:
    # Custom format (-Fc): compressed, and pg_restore can clean, select and reorder from it. Ownership
    # options belong to pg_restore for this format (pg_dump ignores them), see restore_args.
    return ("pg_dump", "--format=custom", "--file", path)


def restore_args(dbname: str, path: str = CONTAINER_DUMP) -> tuple[str, ...]:
    # --clean --if-exists drops what the dump recreates (no errors on objects that are not there);
    # --no-owner/--no-acl: objects belong to the restoring user, so a dump restores into a database whose
    # user has another name (a managed database, a renamed POSTGRES_USER);
    # --single-transaction makes the whole restore one transaction, so a failure changes nothing.
    # --dbname is required: without it pg_restore prints SQL instead of restoring. The name is not secret.
    return (
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-acl",
        "--single-transaction",
        "--dbname",
        dbname,
        path,
    )


def create(
    docker: str, name: str, image: str, args: Sequence[str], env: Mapping[str, str], network: str | None
) -> Command:
    """`docker create` of a one-off container: it exists before it runs, so a dump can be copied in
    (restore) or out (backup) with `docker cp`."""
    return oneoff(docker, image, args, env, name=name, network=network, verb="create")


def start_attached(docker: str, name: str) -> Command:
    # -a streams the tool's output and exits with its exit code.
    return Command((docker, "start", "--attach", name), install_hint=DOCKER_HINT)


def copy(docker: str, source: str, target: str) -> Command:
    return Command((docker, "cp", source, target), install_hint=DOCKER_HINT)
