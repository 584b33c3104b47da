"""The executor: dry runs, secret masking, and failures that say what to do."""

from __future__ import annotations

import io
import os
import sys

import pytest

from atbb_kit.commands.base import Command, Secret, argv
from atbb_kit.core.errors import CommandFailed, KitError
from atbb_kit.infra.runner import Result, Runner


def test_secret_never_formats_itself():
    s = Secret("hunter2")
    assert f"{s}" == "***"
    assert str(s) == "***"
    assert repr(s) == "***"
    assert "%s" % s == "***"  # noqa: UP031
    assert s.reveal() == "hunter2"


def test_dry_run_prints_masked_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    out = io.StringIO()
    runner = Runner(dry_run=True, stream=out)
    cmd = Command(
        (sys.executable, "-c", f"open({str(marker)!r}, 'w')"),
        env={"TOKEN": Secret("hunter2"), "MODE": "x"},
        stdin=Secret("pw"),
    )
    result = runner.run(cmd)
    assert result.ok
    assert not marker.exists()
    text = out.getvalue()
    assert text.startswith("would run TOKEN=*** MODE=x ")
    assert "hunter2" not in text and "pw" not in text.replace("python", "")


def test_secret_reaches_the_child_unmasked():
    runner = Runner(echo=False)
    res = runner.run(
        Command(
            (sys.executable, "-c", "import os,sys; print(os.environ['T'], sys.stdin.read())"),
            env={"T": Secret("s3cret")},
            stdin=Secret("from-stdin"),
        ),
        capture=True,
    )
    assert res.stdout.split() == ["s3cret", "from-stdin"]


def test_failure_names_the_command_and_last_line():
    runner = Runner(echo=False)
    with pytest.raises(CommandFailed) as info:
        runner.run(
            Command(
                (sys.executable, "-c", "import sys; print('boom happened', file=sys.stderr); sys.exit(3)"),
                failure_hint="try again",
            ),
            capture=True,
        )
    assert info.value.exit_code == 3
    assert "exited with code 3: boom happened" in info.value.what
    assert info.value.fix == "try again"


def test_missing_program_is_a_user_error():
    with pytest.raises(KitError) as info:
        Runner(echo=False).run(Command(("definitely-not-a-program-xyz",), install_hint="apt-get install xyz"))
    assert "definitely-not-a-program-xyz is not installed" in info.value.what
    assert info.value.fix == "apt-get install xyz"


def test_check_false_returns_the_code():
    assert Runner(echo=False).run(Command((sys.executable, "-c", "raise SystemExit(4)")), check=False).returncode == 4


def test_argv_flattens_and_drops_none():
    assert argv("a", None, ("b", None, "c"), ["d"]) == ("a", "b", "c", "d")


def test_read_stream_hands_stdout_over_as_bytes_and_captures_stderr():
    cmd = Command((sys.executable, "-c", "import sys; sys.stdout.write('abcdef'); sys.stderr.write('note')"))
    head, result = Runner(echo=False).read_stream(cmd, lambda out: out.read(3))
    assert head == b"abc"
    assert (result.returncode, result.stderr) == (0, "note")


def test_probe_all_runs_together_and_reports_each():
    ok = Command((sys.executable, "-c", "print('one')"))
    missing = Command(("no-such-program-xyz",))
    slow = Command((sys.executable, "-c", "import time; time.sleep(5)"))
    first, second, third = Runner(echo=False).probe_all([ok, missing, slow], timeout=0.5)
    assert (first.returncode, first.stdout) == (0, "one\n")
    assert (second.returncode, second.stderr) == (127, "no-such-program-xyz is not installed or not on PATH")
    assert third.returncode == 124 and "timed out" in third.stderr


# --- Runner.start: background processes (real short processes) ------------------------------------------

# (name, argv, start options, how it ends, expected exit code, expected output)
BACKGROUND_CASES = [
    ("ends by itself, piped", ("sh", "-c", "echo one; echo two"), {}, "wait", 0, "one\ntwo\n"),
    ("exit code kept", ("sh", "-c", "echo bad >&2; exit 3"), {}, "wait", 3, "bad\n"),
    ("stderr apart", ("sh", "-c", "echo err >&2; echo out"), {"merge_stderr": False}, "wait", 0, "out\n"),
    ("stopped by SIGTERM", ("sleep", "30"), {}, "stop", -15, ""),
    ("SIGKILL after the grace", ("sh", "-c", "trap '' TERM; echo up; exec sleep 30"), {}, "stop", -9, "up\n"),
    ("wait with a timeout stops it", ("sleep", "30"), {}, "wait-timeout", 124, ""),
    ("deadline kills it", ("sleep", "30"), {"deadline": 0.3}, "wait", -9, ""),
]


@pytest.mark.parametrize(
    ("argv_", "options", "end", "code", "output"),
    [case[1:] for case in BACKGROUND_CASES],
    ids=[case[0] for case in BACKGROUND_CASES],
)
def test_start_runs_in_the_background_and_ends_as_asked(argv_, options, end, code, output):
    proc = Runner(echo=False).start(Command(argv_), **options)
    assert proc.pid is not None
    if end == "stop":
        if "trap" in argv_[-1]:
            assert next(proc.lines()) == "up"  # the trap is set before SIGTERM comes
            result = proc.stop(grace=0.3)
            output = ""  # the line was read above
        else:
            assert proc.running()
            result = proc.stop(grace=2)
    elif end == "wait-timeout":
        result = proc.wait(timeout=0.3)
    else:
        result = proc.wait()
    assert result.returncode == code
    assert result.stdout == output
    assert not proc.running()
    assert proc.wait() == result  # collected once; asking again gives the same answer
    if options.get("deadline") or end == "wait-timeout":
        assert proc.timed_out
    if options.get("merge_stderr") is False:
        assert result.stderr == "err\n"


def test_start_streams_lines_as_they_come():
    script = "for i in 1 2 3; do echo line $i; sleep 0.05; done"
    with Runner(echo=False).start(Command(("sh", "-c", script))) as proc:
        seen = list(proc.lines())
        assert proc.wait().returncode == 0
    assert seen == ["line 1", "line 2", "line 3"]


def test_start_writes_to_a_log_file_and_gets_the_env(tmp_path):
    log = tmp_path / "logs" / "peer.log"
    cmd = Command(("sh", "-c", 'echo "token=$TOKEN home=$HOME"; echo oops >&2'), env={"TOKEN": Secret("hunter2")})
    proc = Runner(echo=False).start(cmd, log=log)
    result = proc.wait()
    assert result.ok
    assert result.stdout == log.read_text() == f"token=hunter2 home={os.environ['HOME']}\noops\n"
    with pytest.raises(ValueError, match="not to a pipe"):
        list(proc.lines())


def test_start_without_inherit_env_gives_only_the_commands_env():
    cmd = Command(("/bin/sh", "-c", 'echo "${HOME:-unset} $ONLY"'), env={"ONLY": "this"})
    assert Runner(echo=False).start(cmd, inherit_env=False).wait().stdout == "unset this\n"


def test_start_announces_masked_and_dry_run_starts_nothing(tmp_path):
    marker = tmp_path / "ran"
    cmd = Command(("sh", "-c", f"touch {marker}"), env={"TOKEN": Secret("hunter2")})
    out = io.StringIO()
    proc = Runner(dry_run=True, stream=out).start(cmd)
    assert proc.pid is None and not proc.running() and list(proc.lines()) == []
    assert proc.wait() == proc.stop() == Result(0)
    assert not marker.exists()
    assert out.getvalue().startswith("would run TOKEN=*** sh -c ") and "hunter2" not in out.getvalue()
    shown = io.StringIO()
    Runner(stream=shown).start(cmd).wait()
    assert marker.exists()
    assert shown.getvalue().startswith("$ TOKEN=*** ") and "hunter2" not in shown.getvalue()


def test_start_of_a_missing_program_is_a_user_error():
    cmd = Command(("atbb-no-such-program",), install_hint="apt-get install it")
    with pytest.raises(KitError) as err:
        Runner(echo=False).start(cmd)
    assert "is not installed" in err.value.what and err.value.fix == "apt-get install it"


def test_stop_returns_when_a_grandchild_keeps_the_pipe_open():
    proc = Runner(echo=False).start(Command(("sh", "-c", "trap '' TERM; sleep 2 & echo up; wait")))
    assert next(proc.lines()) == "up"
    assert proc.stop(grace=0.3).returncode == -9
