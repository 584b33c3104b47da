"""The app's env contract, once: database settings and a made-up forum identity -> the app's variables.

Three callers need it: `inv smoke` and `inv bench` (throwaway stacks, `.invalid` names that can never
resolve) and `inv compose-up --demo` (a demo env file). Pure: no files, no processes, no engine. Random
values come from `secrets` unless a test passes its own `choice`/`token_hex`. Which values are secret is
said by `SECRET_VARIABLES`; callers in the layers above wrap them (`secret=Secret`) so nothing prints them.

PostgreSQL's settings are here too, as every stack (throwaway or Compose) uses the same user, database
name and port.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

PG_USER = "atbb"
PG_DB = "atbb"
PG_PORT = 5432
# Over TCP: the official image's first-start server listens on the socket only, so a socket probe could
# pass before the real server is up.
PG_READY_PROBE = ("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", PG_USER, "-d", PG_DB)

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
# The variables whose values must never be shown.
SECRET_VARIABLES = frozenset({"DATABASE_URL", "SESSION_SECRET", "POSTGRES_PASSWORD"})


@dataclass(frozen=True)
class Database:
    """Where the app's PostgreSQL is, as the app (DATABASE_URL) and the server image (POSTGRES_*) see it."""

    host: str
    password: str
    user: str = PG_USER
    name: str = PG_DB
    port: int = PG_PORT

    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"

    def server_env(self) -> dict[str, str]:
        """What the PostgreSQL image reads on its first start."""
        return {"POSTGRES_USER": self.user, "POSTGRES_PASSWORD": self.password, "POSTGRES_DB": self.name}


@dataclass(frozen=True)
class Identity:
    """The forum the app believes it serves: its DID, its PDS, its public URL and the session key."""

    forum_did: str
    pds_url: str
    public_url: str
    session_secret: str


def forum_did(choice: Callable[[str], str] = secrets.choice) -> str:
    """A syntactically valid did:plc (24 base32 characters) that names no real forum."""
    return "did:plc:" + "".join(choice(BASE32) for _ in range(24))


def throwaway_identity(
    run: str,
    choice: Callable[[str], str] = secrets.choice,
    token_hex: Callable[[int], str] = secrets.token_hex,
) -> Identity:
    """A fresh identity for a throwaway run named `run` (smoke, bench): `.invalid` (RFC 2606) hosts can
    never resolve, so the app cannot reach any real PDS or forum."""
    return Identity(forum_did(choice), f"https://pds.{run}.invalid", f"https://forum.{run}.invalid", token_hex(32))


def demo_identity(host_port: int, token_hex: Callable[[int], str] = secrets.token_hex) -> Identity:
    """`inv compose-up --demo`: a fixed made-up DID, the example PDS and the local URL it is served on."""
    return Identity(
        "did:plc:demodemodemodemodemodemo", "https://pds.example.com", f"http://localhost:{host_port}", token_hex(32)
    )


def app_env(
    db: Database,
    identity: Identity,
    required: Sequence[str] = (),
    *,
    placeholder: str = "",
    extra: Mapping[str, str] | None = None,
    secret: Callable[[str], str] = str,
) -> dict[str, str]:
    """The app's variables. A required variable the kit does not know gets `placeholder` (when given), as
    nothing else could be meant; `extra` comes last and wins. `secret` wraps SECRET_VARIABLES' values."""
    env = {
        "DATABASE_URL": db.url(),
        "FORUM_DID": identity.forum_did,
        "PDS_URL": identity.pds_url,
        "OAUTH_PUBLIC_URL": identity.public_url,
        "SESSION_SECRET": identity.session_secret,
    }
    if placeholder:
        for var in required:
            env.setdefault(var, placeholder)
    env.update(extra or {})
    return {k: secret(v) if k in SECRET_VARIABLES else v for k, v in env.items()}
