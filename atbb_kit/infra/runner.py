"""The one place that runs external processes.

Commands arrive as data (`commands.base.Command`), built by pure functions in `atbb_kit/commands/`. The
executor prints each one before running it (secrets as ***), runs nothing in dry-run mode, and turns
failures into `KitError`s that say what failed and what to try. Nothing else in the kit starts a process;
the one other executor is the Docker SDK in `infra/engine.py` (queries and container control over the
engine's API, no processes).

One-off containers (the migrator, psql, pg_dump, pg_restore) run under a `OneOff`: a name to remove the
container by and a deadline the kit enforces itself, because the program inside may never return (a
migrator talking to an HTTP server at the database's address did not, for 11 minutes). When the deadline
passes, or the task is interrupted (Ctrl-C, SIGTERM, SIGHUP), the runner removes the container by name,
stops the docker client and raises a KitError saying so. The client runs in a session of its own: a
Ctrl-C on the terminal reaches only the kit, which then cleans up in a known order instead of racing the
client's own signal forwarding.

Background processes (the bench's peer proxies, a streamed `inv upgrade`) start with `Runner.start`, which
returns a `Background` to read, wait for or stop (SIGTERM, then SIGKILL after a grace); it is announced and
masked like `run`, starts nothing under --dry-run, and asks Linux to end the child if the kit dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from atbb_kit.commands.base import Command, OneOff, reveal
from atbb_kit.core.errors import CommandFailed, KitError
from atbb_kit.infra import signals
from atbb_kit.infra.signals import Interrupted

T = TypeVar("T")


class DeadlineExceeded(KitError):
    """A one-off container did not finish within its deadline; it was removed."""

    exit_code = 124  # as timeout(1)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner:
    """Executes Commands. `dry_run` prints what would run; `echo` prints each command before it runs."""

    def __init__(self, dry_run: bool = False, echo: bool = True, stream=None) -> None:
        self.dry_run = dry_run
        self.echo = echo
        self.stream = stream or sys.stderr
        self.history: list[Command] = []

    def _announce(self, cmd: Command) -> None:
        if self.echo or self.dry_run:
            print(f"{'would run' if self.dry_run else '$'} {cmd.display()}", file=self.stream, flush=True)

    def run(
        self,
        cmd: Command,
        *,
        check: bool = True,
        capture: bool = False,
        quiet: bool = False,
        oneoff: OneOff | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Run `cmd`. capture=True collects output instead of passing it through.

        quiet=True skips the announcement (for probes whose output is the point, like `git rev-parse`).
        oneoff: `cmd` runs a container that must end within `oneoff.deadline` seconds and be removed when it
        does not, or when the task is interrupted (DeadlineExceeded, Interrupted).
        timeout: seconds a command that is not a one-off may take; then it is killed and a KitError says so.
        """
        self.history.append(cmd)
        if not quiet:
            self._announce(cmd)
        if self.dry_run:
            return Result(0)
        env = {**os.environ, **{k: reveal(v) for k, v in cmd.env.items()}} if cmd.env else None
        if oneoff is not None:
            result = self._run_oneoff(cmd, env, capture, oneoff)
            return self._checked(cmd, result) if check else result
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                env=env,
                input=reveal(cmd.stdin) if cmd.stdin is not None else None,
                stdin=subprocess.DEVNULL if cmd.stdin is None else None,
                capture_output=capture,
                text=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise KitError(
                f"`{_short(cmd)}` did not finish within {timeout:g}s and was stopped",
                cmd.failure_hint or "see the output above",
            ) from None
        except FileNotFoundError:
            raise _not_installed(cmd) from None
        result = Result(proc.returncode, proc.stdout or "", proc.stderr or "", time.monotonic() - started)
        return self._checked(cmd, result) if check else result

    @staticmethod
    def _checked(cmd: Command, result: Result) -> Result:
        if not result.ok:
            detail = _last_line(result.stderr) or _last_line(result.stdout)
            raise CommandFailed(
                f"`{_short(cmd)}` exited with code {result.returncode}" + (f": {detail}" if detail else ""),
                cmd.failure_hint or "see the output above",
                returncode=result.returncode,
            )
        return result

    def _run_oneoff(self, cmd: Command, env: Mapping[str, str] | None, capture: bool, oneoff: OneOff) -> Result:
        started = time.monotonic()
        pipe = subprocess.PIPE if capture else None
        with signals.raising():
            try:
                proc = subprocess.Popen(
                    [reveal(a) for a in cmd.argv],
                    cwd=cmd.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL if cmd.stdin is None else subprocess.PIPE,
                    stdout=pipe,
                    stderr=pipe,
                    text=True,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),
                )
            except FileNotFoundError:
                raise _not_installed(cmd) from None
            try:
                stdout, stderr = proc.communicate(
                    input=reveal(cmd.stdin) if cmd.stdin is not None else None, timeout=oneoff.deadline
                )
            except subprocess.TimeoutExpired:
                stdout, stderr = self._abort(proc, oneoff)
                _show(stdout, stderr)
                raise DeadlineExceeded(
                    f"{oneoff.what} did not finish within {oneoff.deadline:g}s; its container {oneoff.name} was "
                    "stopped and removed",
                    oneoff.fix,
                ) from None
            except KeyboardInterrupt as exc:
                signum = signals.number(exc)
                self._abort(proc, oneoff)
                raise Interrupted(
                    f"interrupted ({signals.name(signum)}) while {oneoff.what} ran; its container "
                    f"{oneoff.name} was stopped and removed",
                    "nothing else to clean up; run the task again when you are ready",
                    signum,
                ) from None
        if oneoff.remove_after:
            self._remove(oneoff)
        return Result(proc.returncode, stdout or "", stderr or "", time.monotonic() - started)

    def _abort(self, proc: subprocess.Popen, oneoff: OneOff) -> tuple[str, str]:
        """Remove the container, then end its client. Removing first makes the client return by itself; a
        second removal catches a container the daemon created while the client was being stopped."""
        with signals.ignored():
            self._remove(oneoff)
            proc.terminate()
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            self._remove(oneoff)
        return out or "", err or ""

    @staticmethod
    def _remove(oneoff: OneOff) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [reveal(a) for a in oneoff.remove.argv],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60,
                check=False,
            )

    def probe_all(self, cmds: Sequence[Command], timeout: float = 30.0) -> list[Result]:
        """Run several read-only queries at once (even in dry-run mode), captured, and wait for all: the wall
        time is about that of the slowest. A program that cannot be started is exit code 127 with the reason
        on stderr; one that outlives `timeout` is killed and reported as exit code 124."""
        procs: list[subprocess.Popen[str] | Result] = []
        for cmd in cmds:
            try:
                procs.append(
                    subprocess.Popen(
                        [reveal(a) for a in cmd.argv],
                        cwd=cmd.cwd,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        encoding="utf-8",
                        errors="replace",
                    )
                )
            except OSError as exc:
                missing = isinstance(exc, FileNotFoundError) and exc.filename == cmd.argv[0]
                procs.append(Result(127, "", f"{cmd.argv[0]} is not installed or not on PATH" if missing else str(exc)))
        results = []
        for cmd, proc in zip(cmds, procs, strict=True):
            if isinstance(proc, Result):
                results.append(proc)
                continue
            try:
                out, err = proc.communicate(timeout=timeout)
                results.append(Result(proc.returncode, out, err))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                results.append(Result(124, "", f"{' '.join(cmd.argv[:3])} timed out"))
        return results

    def read_stream(self, cmd: Command, consume: Callable[[IO[bytes]], T], timeout: float = 300.0) -> tuple[T, Result]:
        """Run `cmd` with its stdout handed to `consume` as a binary stream, for output too large to hold (a
        `docker export` tar); stderr is captured. Not announced: the caller says what it reads."""
        self.history.append(cmd)
        try:
            proc = subprocess.Popen(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise _not_installed(cmd) from None
        with proc:
            assert proc.stdout is not None
            value = consume(proc.stdout)
            proc.stdout.read()  # let the program finish writing
            _, err = proc.communicate(timeout=timeout)
        return value, Result(proc.returncode, "", err.decode(errors="replace"))

    def probe(self, cmd: Command, timeout: float = 30.0) -> Result:
        """Run a read-only query even in dry-run mode (e.g. which builder a client offers), captured."""
        try:
            proc = subprocess.run(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
                timeout=timeout,
            )
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return Result(127)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    # --- background processes ------------------------------------------------------------------------------

    def start(
        self,
        cmd: Command,
        *,
        log: Path | None = None,
        merge_stderr: bool = True,
        inherit_env: bool = True,
        deadline: float | None = None,
        quiet: bool = False,
    ) -> Background:
        """Start `cmd` in the background and return at once; the caller ends it with `stop()` or `wait()`.

        log: a file that takes the output (stdout and stderr), for servers that run a while (peer proxies);
        without one the output is a pipe, read line by line with `lines()` or whole by `wait()`.
        merge_stderr: stderr goes where stdout goes; False keeps it apart (pipes only).
        inherit_env: False gives the child `cmd.env` alone instead of `cmd.env` over the kit's environment.
        deadline: seconds after which the process is killed whatever it is doing.
        Under --dry-run nothing starts: the Background is finished, exit code 0, no output.
        """
        self.history.append(cmd)
        if not quiet:
            self._announce(cmd)
        if self.dry_run:
            return Background(cmd, None, log)
        revealed = {k: reveal(v) for k, v in cmd.env.items()}
        env = {**os.environ, **revealed} if inherit_env else revealed
        out: int | IO[bytes] = subprocess.PIPE
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("wb")
        try:
            proc = subprocess.Popen(
                [reveal(a) for a in cmd.argv],
                cwd=cmd.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if merge_stderr or log is not None else subprocess.PIPE,
                text=log is None,
                bufsize=1 if log is None else -1,
                preexec_fn=_die_with_parent(),
            )
        except FileNotFoundError:
            raise _not_installed(cmd) from None
        finally:
            if log is not None and not isinstance(out, int):
                out.close()  # the child holds its own descriptor
        return Background(cmd, proc, log, deadline=deadline)


class Background:
    """A process `Runner.start` started: poll it, read its output, wait for it or stop it (also on leaving a
    `with` block). `proc` is None under --dry-run: then it is finished with exit code 0 and no output."""

    def __init__(
        self, cmd: Command, proc: subprocess.Popen | None, log: Path | None, *, deadline: float | None = None
    ) -> None:
        self.cmd = cmd
        self.proc = proc
        self.log = log
        self.started = time.monotonic()
        self.timed_out = False
        self._done: Result | None = None  # once collected: wait and stop answer the same again
        self._timer: threading.Timer | None = None
        if proc is not None and deadline is not None:
            self._timer = threading.Timer(deadline, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while it runs; its exit code (negative: the signal that ended it) once it has ended."""
        return 0 if self.proc is None else self.proc.poll()

    def running(self) -> bool:
        return self.returncode is None

    def lines(self) -> Iterator[str]:
        """The output as it comes, line by line without the newline, until the process closes it (pipes only)."""
        if self.proc is None:
            return
        if self.proc.stdout is None:
            raise ValueError(f"`{_short(self.cmd)}` writes to {self.log}, not to a pipe")
        for line in self.proc.stdout:
            yield line.rstrip("\n")

    def output(self) -> str:
        """What the process wrote to its log file so far ("" without one)."""
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait(self, timeout: float | None = None) -> Result:
        """Until the process ends; the rest of its piped output (or its log) in the Result. A process still
        running after `timeout` seconds is stopped (as `stop` does) and its Result has exit code 124."""
        if self.proc is None:
            return Result(0)
        if self._done is not None:
            return self._done
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            stopped = self.stop()
            self._done = Result(124, stopped.stdout, stopped.stderr, stopped.seconds)
            return self._done
        return self._result(out, err)

    def stop(self, grace: float = 5.0) -> Result:
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds; a process that has ended already
        is left as it is. Its Result holds the exit code and the rest of its output."""
        if self.proc is None:
            return Result(0)
        if self._done is not None:
            return self._done
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            try:
                out, err = self.proc.communicate(timeout=grace)
            except subprocess.TimeoutExpired:  # a child of its own still holds the pipe open
                self.proc.wait()
                for pipe in (self.proc.stdout, self.proc.stderr):
                    if pipe is not None:
                        pipe.close()
                out, err = None, None
        return self._result(out, err)

    def _expire(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.timed_out = True
            self.proc.kill()

    def _result(self, out: str | bytes | None, err: str | bytes | None) -> Result:
        if self._timer is not None:
            self._timer.cancel()
        assert self.proc is not None
        stdout = out if isinstance(out, str) else self.output()
        stderr = err if isinstance(err, str) else ""
        self._done = Result(self.proc.returncode, stdout, stderr, time.monotonic() - self.started)
        return self._done


def _die_with_parent():
    """A preexec_fn asking Linux to send the child SIGTERM when the kit dies without cleaning up (SIGKILL,
    the OOM killer): a docker client passes that on to its container, whose migrator or tool then ends
    (and a `docker run --rm` container is removed). None where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _show(stdout: str, stderr: str) -> None:
    """Captured output of a one-off that was cut short: the last lines say where it hung."""
    for text in (stdout, stderr):
        tail = text.strip().splitlines()[-10:]
        if tail:
            print("\n".join(tail), file=sys.stderr, flush=True)


def _not_installed(cmd: Command) -> KitError:
    return KitError(
        f"{cmd.argv[0]} is not installed (needed for: {cmd.display()})",
        cmd.install_hint or f"install {cmd.argv[0]} or run scripts/bootstrap.sh",
    )


def _short(cmd: Command) -> str:
    text = cmd.display()
    return text if len(text) <= 120 else text[:117] + "..."


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
