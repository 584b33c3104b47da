"""The kit's exception hierarchy. One boundary (atbb_kit/tasks/_base.kit_task) turns these into `error: ...` lines."""

from __future__ import annotations


class KitError(Exception):
    """A failure the user can act on: printed as `error: <what> — <fix>`, exit code `exit_code`."""

    exit_code = 1

    def __init__(self, what: str, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}" if self.fix else self.what


class ConfigError(KitError):
    """atbb.yaml, an ATBB_* variable or a flag is invalid."""

    exit_code = 2


class EnvFileError(KitError):
    """The operator's env file is missing variables or holds malformed values."""

    exit_code = 2


class ReleaseError(KitError):
    """The ref cannot be turned into tags, or is not publishable."""

    exit_code = 3


class CommandFailed(KitError):
    """An external command exited non-zero."""

    def __init__(self, what: str, fix: str | None = None, returncode: int = 1) -> None:
        super().__init__(what, fix)
        self.exit_code = returncode or 1


class EngineUnavailable(KitError):
    """No Docker engine answers."""

    exit_code = 4
