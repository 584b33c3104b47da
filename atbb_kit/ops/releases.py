"""The host's release history and the upgrade lock: two small files in the state folder.

The state folder is the env file's folder unless `--state-dir` says otherwise (docs/deployment-guide.md,
"Upgrading"). Both files are plain JSON a person can read:

- `atbb-releases.json`: one entry per release that went live (which image, its OCI version and revision,
  when, who, the backup taken before it and whether migrations ran for it), oldest first. The last entry is
  what serves now. Written atomically (a temporary file renamed over the old one), mode 600.
- `atbb-upgrade.lock`: exists while an `inv upgrade` or `inv rollback` runs; holds the holder's pid, host and
  start time, so the second one says who holds it. A lock whose pid is gone on this host is stale and taken
  over with a warning; one from another host is never guessed about.

Version comparison for the downgrade refusal is here too: X.Y.Z with an optional leading `v` and
pre-release, compared the semver way; anything else is "unknown" and never blocks.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from atbb_kit.core.errors import KitError

HISTORY_NAME = "atbb-releases.json"
LOCK_NAME = "atbb-upgrade.lock"
HISTORY_FORMAT = 1


class LockHeld(KitError):
    """Another upgrade or rollback holds the lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


# --- versions -----------------------------------------------------------------------------------------

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def parse_version(text: str | None) -> tuple | None:
    """A sortable key for X.Y.Z[-pre][+build], or None when `text` is not such a version."""
    found = _VERSION.fullmatch((text or "").strip())
    if not found:
        return None
    major, minor, patch, pre = found.groups()
    # A release sorts after its pre-releases; pre-release parts compare numerically when both are numbers.
    pre_key: tuple = (1,) if pre is None else (0, *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), pre_key)


def compare_versions(current: str | None, new: str | None) -> int | None:
    """-1 (new is older), 0 (same), 1 (newer), or None when either is not a version."""
    a, b = parse_version(current), parse_version(new)
    if a is None or b is None:
        return None
    return (b > a) - (b < a)


def downgrade_problem(current: str | None, new: str | None, allow: bool) -> KitError | None:
    """The refusal to go to an older version, unless allowed."""
    if allow or compare_versions(current, new) != -1:
        return None
    return KitError(
        f"{new} is older than the running {current}: that is a downgrade, and an older image may refuse the "
        "database the newer one migrated",
        "`inv rollback` returns to a previous release; to downgrade anyway add --allow-downgrade",
    )


# --- history ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    image: str
    image_id: str = ""
    version: str = ""
    revision: str = ""
    created: str = ""
    at: str = ""
    by: str = ""
    action: str = "upgrade"  # upgrade / rollback / found running
    backup: str = ""
    migrated: bool = False
    container: str = ""


@dataclass
class History:
    path: Path
    releases: list[Release] = field(default_factory=list)

    @property
    def current(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    def previous(self) -> Release | None:
        """The newest release before the current one with another image id (or reference)."""
        cur = self.current
        if cur is None:
            return None
        for rel in reversed(self.releases[:-1]):
            if (rel.image_id or rel.image) != (cur.image_id or cur.image):
                return rel
        return None

    def find(self, ref: str) -> tuple[int, Release] | None:
        """The newest entry whose image reference, id or version is `ref`."""
        for i in range(len(self.releases) - 1, -1, -1):
            rel = self.releases[i]
            if ref in (rel.image, rel.version) or (
                rel.image_id
                and rel.image_id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:"))
                and len(ref.removeprefix("sha256:")) >= 12
            ):
                return i, rel
        return None

    def migrated_since(self, index: int) -> list[Release]:
        """The releases after entry `index` whose upgrade ran migrations."""
        return [r for r in self.releases[index + 1 :] if r.migrated]


def history_path(state_dir: Path) -> Path:
    return state_dir / HISTORY_NAME


def load_history(state_dir: Path) -> History:
    path = history_path(state_dir)
    if not path.exists():
        return History(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fields = set(Release.__dataclass_fields__)
        releases = [Release(**{k: v for k, v in item.items() if k in fields}) for item in data["releases"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KitError(
            f"the release history {path} cannot be read ({exc})",
            "fix the JSON by hand, or move the file away to start a new history",
        ) from None
    return History(path, releases)


def save_history(history: History) -> None:
    history.path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": HISTORY_FORMAT, "releases": [asdict(r) for r in history.releases]}
    tmp = history.path.with_name(f".{history.path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, history.path)


def append(history: History, release: Release) -> History:
    history.releases.append(release)
    save_history(history)
    return history


def now_iso(clock: datetime | None = None) -> str:
    return (clock or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def operator() -> str:
    """Who upgraded: user@host (SUDO_USER when run through sudo)."""
    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def table_rows(releases: Sequence[Release]) -> list[list[str]]:
    """Newest first, the serving one marked."""
    rows = []
    for i, rel in enumerate(reversed(releases)):
        rows.append(
            [
                "*" if i == 0 else "",
                rel.at,
                rel.action,
                rel.image,
                rel.version or "-",
                (rel.revision or "-")[:12],
                rel.by or "-",
                "yes" if rel.migrated else "no",
                rel.backup or "-",
            ]
        )
    return rows


# --- the lock -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    started: str
    command: str


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_verdict(holder: Holder | None, this_host: str, alive) -> str:
    """'free' (no holder), 'stale' (its process is gone from this host) or 'held'."""
    if holder is None:
        return "free"
    if holder.host == this_host and not alive(holder.pid):
        return "stale"
    return "held"


def read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["started"]), str(data.get("command", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Unreadable: written half by a holder that died mid-write, or edited. Treat as held by nobody known.
        return Holder(0, "?", "?", "")


class Lock:
    """`with Lock(state_dir, "inv upgrade ..."):` — one upgrade or rollback at a time on this state folder."""

    def __init__(self, state_dir: Path, command: str, warn=None) -> None:
        self.path = state_dir / LOCK_NAME
        self.command = command
        self.warn = warn or (lambda text: None)
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = Holder(os.getpid(), socket.gethostname(), now_iso(), self.command)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = read_holder(self.path)
                verdict = lock_verdict(holder, me.host, pid_alive)
                if verdict == "stale" and holder is not None:
                    self.warn(
                        f"taking over the lock {self.path}: its holder (pid {holder.pid}, since {holder.started}) "
                        "is gone"
                    )
                    self.path.unlink(missing_ok=True)
                    continue
                if verdict == "free":
                    continue
                assert holder is not None
                who = f"pid {holder.pid} on {holder.host}, since {holder.started}" if holder.pid else "unknown holder"
                raise LockHeld(
                    f"another upgrade or rollback is running ({who}"
                    + (f": {holder.command}" if holder.command else "")
                    + ")",
                    f"wait for it to finish; if that process is gone, delete {self.path}",
                ) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(me), fh)
            self.held = True
            return
        raise LockHeld(f"could not take the lock {self.path}", f"delete {self.path} if no upgrade runs")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def rollback_target(history: History, to: str | None) -> tuple[str, str]:
    """(image reference, warning or "") for `inv rollback [--to REF]`: the previous release, or the one --to
    names; the warning says when the database was migrated since it ran."""
    if to:
        found = history.find(to)
        index = found[0] if found else None
        ref = found[1].image if found else to
    else:
        target = history.previous()
        if target is None:
            raise KitError(
                f"the release history {history.path} has no previous release to return to",
                "give one with --to REF (see `inv releases`)",
            )
        index = history.releases.index(target)
        ref = target.image
    warning = ""
    if index is not None:
        migrated = history.migrated_since(index)
        if migrated:
            names = ", ".join(r.image for r in migrated)
            backup = next((r.backup for r in migrated if r.backup), "")
            warning = (
                f"the database was migrated since {ref} ran (by {names}); the older image may refuse it or "
                "misread it"
                + (
                    f". The backup taken before that: {backup} (restore it only if the rollback needs it)"
                    if backup
                    else ""
                )
            )
    return ref, warning
