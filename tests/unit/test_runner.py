"""The executor: dry runs, secret masking, and failures that say what to do."""

from __future__ import annotations

import io
import sys

import pytest

from atbb_kit.commands.base import Command, Secret, argv
from atbb_kit.core.errors import CommandFailed, KitError
from atbb_kit.infra.runner import Runner


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
