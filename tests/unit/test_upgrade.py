"""inv upgrade / rollback / releases without an engine: the step plan, versions, history, lock, argv (issue 17)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from atbb_kit.commands import upgrade as cmds
from atbb_kit.commands.compose import Compose
from atbb_kit.core.errors import KitError
from atbb_kit.ops import releases
from atbb_kit.ops import upgrade as up
from atbb_kit.ops.bench_upgrade import STEP_DONE, STEP_START, LoadResult, Sample, percentile
from tests.clock import on_fake_clock

# --- the plan -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action, smoke, keys",
    [
        ("upgrade", True, ["preflight", "smoke", "backup", "migrate", "start", "health", "switch", "drain", "record"]),
        ("upgrade", False, ["preflight", "backup", "migrate", "start", "health", "switch", "drain", "record"]),
        ("rollback", True, ["preflight", "start", "health", "switch", "drain", "record"]),
        ("rollback", False, ["preflight", "start", "health", "switch", "drain", "record"]),
    ],
)
def test_the_step_plan(action, smoke, keys):
    assert [s.key for s in up.plan(action, smoke=smoke)] == keys


def test_an_unknown_action_has_no_plan():
    with pytest.raises(ValueError):
        up.plan("sidegrade")


def test_dry_run_lines_number_every_step_and_show_its_commands():
    steps = up.plan("rollback")
    lines = up.dry_run_lines(steps, {"switch": ["docker exec edge ..."]})
    assert lines[0].startswith("[1/6] preflight: ")
    assert "[4/6] switch: " in lines[3] and lines[4] == "    $ docker exec edge ..."
    assert len(lines) == 7


# --- versions and references ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "current, new, expected",
    [
        ("1.0.0", "1.1.0", 1),
        ("1.1.0", "1.0.0", -1),
        ("1.0.0", "1.0.0", 0),
        ("v1.2.3", "1.2.3", 0),
        ("1.0.0-rc.1", "1.0.0", 1),
        ("1.0.0", "1.0.0-rc.1", -1),
        ("1.0.0-rc.2", "1.0.0-rc.10", 1),
        ("1.0.0-alpha", "1.0.0-beta", 1),
        ("1.9.0", "1.10.0", 1),
        ("2.0.0", "10.0.0", 1),
        ("1.0.0+build.1", "1.0.0+build.2", 0),
        ("main-2f223e6", "1.0.0", None),
        ("", "1.0.0", None),
        ("1.0.0", None, None),
        ("1.0", "1.0.1", None),
    ],
)
def test_version_comparison(current, new, expected):
    assert releases.compare_versions(current, new) == expected


@pytest.mark.parametrize(
    "current, new, allow, refused",
    [
        ("1.1.0", "1.0.0", False, True),
        ("1.1.0", "1.0.0", True, False),
        ("1.0.0", "1.1.0", False, False),
        ("1.0.0", "1.0.0", False, False),
        ("main-abc", "1.0.0", False, False),  # unknown versions never block
    ],
)
def test_a_downgrade_is_refused_unless_allowed(current, new, allow, refused):
    problem = releases.downgrade_problem(current, new, allow)
    assert (problem is not None) == refused
    if problem:
        assert "--allow-downgrade" in (problem.fix or "") and "inv rollback" in (problem.fix or "")


@pytest.mark.parametrize(
    "ref, repository",
    [
        ("ghcr.io/o/atbb:main-1234abc", "ghcr.io/o/atbb"),
        ("localhost:5000/atbb:1.0.0", "localhost:5000/atbb"),
        ("localhost:5000/atbb", "localhost:5000/atbb"),
        ("atbb:latest", "atbb"),
        ("ghcr.io/o/atbb@sha256:" + "a" * 64, "ghcr.io/o/atbb"),
    ],
)
def test_repository_of(ref, repository):
    assert up.repository_of(ref) == repository


@pytest.mark.parametrize(
    "image, version, expected",
    [
        ("x/atbb:2", None, "x/atbb:2"),
        (None, "1.2.3", "ghcr.io/o/atbb:1.2.3"),
        (None, "v1.2.3", "ghcr.io/o/atbb:1.2.3"),
    ],
)
def test_resolve_ref(image, version, expected):
    assert up.resolve_ref(image, version, "ghcr.io/o/atbb:main-abc1234") == expected


@pytest.mark.parametrize(
    "image, version, says",
    [(None, None, "give one of"), ("a:1", "1.0.0", "give one of"), (None, "latest", "is not a version")],
)
def test_resolve_ref_refuses(image, version, says):
    with pytest.raises(KitError, match=says):
        up.resolve_ref(image, version, "ghcr.io/o/atbb:main")


# --- the history ----------------------------------------------------------------------------------------


def rel(image, image_id, version="", migrated=False, action="upgrade", backup=""):
    return releases.Release(
        image=image, image_id=image_id, version=version, migrated=migrated, action=action, backup=backup
    )


def test_history_round_trips_with_mode_600(tmp_path):
    history = releases.load_history(tmp_path)
    assert history.releases == [] and history.current is None
    releases.append(history, rel("a:1", "sha256:" + "1" * 64, "1.0.0", action="found running"))
    releases.append(history, rel("a:2", "sha256:" + "2" * 64, "1.1.0", migrated=True, backup="b/x.dump"))
    path = tmp_path / releases.HISTORY_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert data["format"] == 1 and [r["image"] for r in data["releases"]] == ["a:1", "a:2"]
    again = releases.load_history(tmp_path)
    assert again.releases == history.releases
    assert again.current.image == "a:2"


@pytest.mark.parametrize(
    "entries, previous",
    [
        ([], None),
        ([("a:1", "1")], None),
        ([("a:1", "1"), ("a:2", "2")], "a:1"),
        ([("a:1", "1"), ("a:2", "2"), ("a:2b", "2")], "a:1"),  # same image id under another name is no release back
        ([("a:1", "1"), ("a:2", "2"), ("a:1", "1")], "a:2"),
    ],
)
def test_previous_release(tmp_path, entries, previous):
    history = releases.History(tmp_path / "h.json", [rel(i, d) for i, d in entries])
    found = history.previous()
    assert (found.image if found else None) == previous


def test_find_and_migrated_since(tmp_path):
    history = releases.History(
        tmp_path / "h.json",
        [
            rel("a:1", "sha256:" + "1" * 64, "1.0.0"),
            rel("a:2", "sha256:" + "2" * 64, "1.1.0", migrated=True),
            rel("a:3", "sha256:" + "3" * 64, "1.2.0"),
        ],
    )
    assert history.find("a:2")[0] == 1
    assert history.find("1.0.0")[0] == 0
    assert history.find("3" * 12)[0] == 2
    assert history.find("3" * 4) is None  # too short an id prefix to mean anything
    assert [r.image for r in history.migrated_since(0)] == ["a:2"]
    assert history.migrated_since(1) == []


@pytest.mark.parametrize(
    ("to", "image", "warns"),
    [
        (None, "a:2", "the database was migrated since a:2 ran (by a:3)"),  # the previous release
        ("a:1", "a:1", "migrated since a:1 ran (by a:3); the older image"),
        ("1.0.0", "a:1", "the backup taken before that: /b/atbb-1.dump"),  # by version, with the backup
        ("a:3", "a:3", ""),  # nothing migrated after the newest
        ("ghcr.io/x/atbb:9", "ghcr.io/x/atbb:9", ""),  # not in the history: taken as a reference, no warning
    ],
)
def test_rollback_target(tmp_path, to, image, warns):
    history = releases.History(
        tmp_path / "h.json",
        [
            rel("a:1", "sha256:" + "1" * 64, "1.0.0"),
            rel("a:2", "sha256:" + "2" * 64, "1.1.0"),
            rel("a:3", "sha256:" + "3" * 64, "1.2.0", migrated=True, backup="/b/atbb-1.dump"),
        ],
    )
    ref, warning = releases.rollback_target(history, to)
    assert ref == image
    assert (warns.lower() in warning.lower()) if warns else warning == ""


def test_rollback_without_a_previous_release_is_a_one_line_error(tmp_path):
    history = releases.History(tmp_path / "h.json", [rel("a:1", "sha256:" + "1" * 64, "1.0.0")])
    with pytest.raises(KitError, match="no previous release to return to"):
        releases.rollback_target(history, None)


@pytest.mark.parametrize("text", ["{", '{"releases": [{"nope": 1}]}', '{"format": 1}', "[]"])
def test_a_broken_history_is_a_one_line_error(tmp_path, text):
    (tmp_path / releases.HISTORY_NAME).write_text(text)
    with pytest.raises(KitError, match="cannot be read"):
        releases.load_history(tmp_path)


def test_table_rows_newest_first_with_the_serving_one_marked():
    rows = releases.table_rows([rel("a:1", "1", "1.0.0"), rel("a:2", "2", "1.1.0", migrated=True, backup="x.dump")])
    assert rows[0][0] == "*" and rows[0][3] == "a:2" and rows[0][7] == "yes" and rows[0][8] == "x.dump"
    assert rows[1][0] == "" and rows[1][3] == "a:1" and rows[1][7] == "no"


# --- the lock -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "holder, alive, verdict",
    [
        (None, True, "free"),
        (releases.Holder(10, "here", "t", ""), True, "held"),
        (releases.Holder(10, "here", "t", ""), False, "stale"),
        (releases.Holder(10, "elsewhere", "t", ""), False, "held"),  # another host's pid says nothing here
    ],
)
def test_lock_verdict(holder, alive, verdict):
    assert releases.lock_verdict(holder, "here", lambda pid: alive) == verdict


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    first = releases.Lock(tmp_path, "inv upgrade --image a:2")
    first.acquire()
    data = json.loads((tmp_path / releases.LOCK_NAME).read_text())
    assert data["pid"] == os.getpid() and data["host"] == socket.gethostname()
    with pytest.raises(releases.LockHeld, match=rf"pid {os.getpid()} on {socket.gethostname()}") as err:
        releases.Lock(tmp_path, "inv rollback").acquire()
    assert err.value.exit_code == 75 and "inv upgrade --image a:2" in err.value.what
    first.release()
    assert not (tmp_path / releases.LOCK_NAME).exists()
    with releases.Lock(tmp_path, "again"):
        assert (tmp_path / releases.LOCK_NAME).exists()
    assert not (tmp_path / releases.LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / releases.LOCK_NAME).write_text(
        json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "then", "command": "x"})
    )
    warnings: list[str] = []
    with releases.Lock(tmp_path, "inv upgrade", warn=warnings.append):
        pass
    assert warnings and f"pid {gone.pid}" in warnings[0]


# --- argv -----------------------------------------------------------------------------------------------


def test_scale_up_argv():
    stack = Compose(("docker-compose",), Path("/srv/dc.yml"), "atbb", {"ATBB_IMAGE": "x:2"})
    cmd = cmds.scale_up(stack)
    assert cmd.argv == (
        "docker-compose", "-f", "/srv/dc.yml", "-p", "atbb",
        "up", "-d", "--no-build", "--no-deps", "--no-recreate", "--scale", "atbb=2", "atbb",
    )  # fmt: skip
    assert cmd.env["ATBB_IMAGE"] == "x:2"


def test_point_edge_passes_names_as_arguments_never_as_shell_text():
    cmd = cmds.point_edge("docker", "atbb_edge_1", "atbb_atbb_3", "abc123-3")
    assert cmd.argv[:5] == ("docker", "exec", "atbb_edge_1", "sh", "-c")
    assert cmd.argv[-3:] == ("sh", "atbb_atbb_3", "abc123-3")
    assert "atbb_atbb_3" not in cmd.argv[5]
    assert "nginx -t" in cmd.argv[5] and "-s reload" in cmd.argv[5]


@pytest.mark.parametrize("upstream, label", [("a;rm -rf /", "x"), ("", "x"), ("atbb", 'x"; }'), ("atbb", "a b")])
def test_point_edge_refuses_what_is_not_a_name(upstream, label):
    with pytest.raises(ValueError):
        cmds.point_edge("docker", "edge", upstream, label)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("docker", "atbb_atbb_1", 10), ("docker", "stop", "-t", "10", "atbb_atbb_1")),
    ],
)
def test_stop_argv(args, expected):
    assert cmds.stop(*args).argv == expected


def test_warm_up_argv_passes_paths_as_arguments():
    cmd = cmds.warm_up("docker", "s_atbb_2", ["/", "/api/health"])
    assert cmd.argv[:5] == ("docker", "exec", "s_atbb_2", "node", "-e")
    assert cmd.argv[-2:] == ("/", "/api/health") and "/api/health" not in cmd.argv[5]


@pytest.mark.parametrize("path", ["api/health", "/a b", ""])
def test_warm_up_refuses_what_is_not_a_path(path):
    with pytest.raises(ValueError):
        cmds.warm_up("docker", "c", [path])


def test_remove_and_pull_argv():
    assert cmds.remove("docker", "c").argv == ("docker", "rm", "-f", "c")
    assert cmds.pull("docker", "ghcr.io/o/atbb:1.2.3").argv == ("docker", "pull", "ghcr.io/o/atbb:1.2.3")


@pytest.mark.parametrize(
    "dump, env_file, expected",
    [
        ("backups/atbb-1.dump", ".env", "inv restore backups/atbb-1.dump --force"),
        ("/srv/b/atbb 1.dump", "/srv/atbb.env", "inv restore '/srv/b/atbb 1.dump' --force --env-file /srv/atbb.env"),
    ],
)
def test_restore_command(dump, env_file, expected):
    assert cmds.restore_command(dump, env_file) == expected


@pytest.mark.parametrize(
    "revision, image_id, container, label",
    [
        ("0123456789abcdef", "sha256:ffff", "atbb_atbb_3", "0123456789ab-3"),
        ("", "sha256:abcdef0123456789", "atbb-atbb-12", "abcdef012345-12"),
        ("r1", "", "weird", "r1"),
        ("", "", "atbb_atbb_2", "unknown-2"),
    ],
)
def test_release_label(revision, image_id, container, label):
    assert cmds.release_label(revision, image_id, container) == label


# --- container facts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "attrs, test",
    [
        ({"Config": {"Healthcheck": {"Test": ["CMD", "/e", "health"]}}}, ["/e", "health"]),
        ({"Config": {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f x"]}}}, ["/bin/sh", "-c", "curl -f x"]),
        ({"Config": {"Healthcheck": {"Test": ["NONE"]}}}, None),
        ({"Config": {}}, None),
    ],
)
def test_health_test(attrs, test):
    assert up.health_test(attrs) == test


@pytest.mark.parametrize(
    "state, restarts, says",
    [
        ({"Status": "running"}, 0, None),
        ({"Status": "running", "Health": {"Status": "starting"}}, 0, None),
        ({"Status": "exited", "ExitCode": 64}, 0, "exited with code 64"),
        ({"Status": "restarting", "ExitCode": 64}, 1, "restarting"),
        ({"Status": "running", "ExitCode": 0}, 2, "restarting"),
        ({"Status": "running", "Health": {"Status": "unhealthy"}}, 0, "unhealthy"),
    ],
)
def test_crash_reason(state, restarts, says):
    reason = up.crash_reason({"State": state, "RestartCount": restarts})
    assert (reason is None) if says is None else (says in reason)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('map $host $atbb_upstream { default "atbb"; }\nmap $host $atbb_release { default ""; }\n', ("atbb", "")),
        (
            'map $host $atbb_upstream { default "s_atbb_3"; }\nmap $host $atbb_release { default "abc-3"; }\n',
            ("s_atbb_3", "abc-3"),
        ),
        ("", ("", "")),
        ("upstream x { server y; }", ("", "")),
    ],
)
def test_parse_upstream(text, expected):
    assert up.parse_upstream(text) == expected


def test_parse_upstream_reads_what_point_edge_writes(tmp_path):
    """The kit's own rewrite script, run by a real shell, produces what parse_upstream reads back."""
    script = cmds.EDGE_SCRIPT.replace("/tmp/edge", str(tmp_path)).split("; nginx -t")[0]
    subprocess.run(["sh", "-c", script, "sh", "s_atbb_7", "e2e-1.1.0-7"], check=True)
    assert up.parse_upstream((tmp_path / "upstream.conf").read_text()) == ("s_atbb_7", "e2e-1.1.0-7")


def test_facts_from_labels():
    facts = up.facts_from(
        "a:1",
        {"Id": "sha256:" + "9" * 64, "Config": {"Labels": {up.VERSION_LABEL: "1.0.0", up.REVISION_LABEL: "abc"}}},
    )
    assert (facts.version, facts.revision, facts.created) == ("1.0.0", "abc", "")
    assert "version 1.0.0" in facts.shown() and "revision abc" in facts.shown()


# --- the load generator's arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, q, expected",
    [([], 99, 0.0), ([1.0], 99, 1.0), ([float(i) for i in range(1, 101)], 99, 99.0), ([3.0, 1.0, 2.0], 50, 2.0)],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == expected


def test_load_result_counts_failures_and_socket_errors():
    result = LoadResult(
        [
            Sample(0.0, 0.01, 200, "/"),
            Sample(1.0, 0.02, 302, "/"),
            Sample(2.0, 0.5, 502, "/"),
            Sample(3.0, 1.0, 0, "/", "reset"),
        ]
    )
    assert result.total == 4 and len(result.failed) == 1 and len(result.errors) == 1
    assert result.between(0.5, 2.5).total == 2
    assert "1 failed, 1 socket errors" in result.describe()


@pytest.mark.parametrize(
    "line, done, start",
    [
        ("[7/9] switch: ok in 0.4 s", ("switch", "0.4"), None),
        ("[5/9] start new: failed in 12.0 s", ("start new", "12.0"), None),
        ("[7/9] switch: point the edge at the new container", None, "switch"),
    ],
)
def test_step_lines_are_read_back(line, done, start):
    m = STEP_DONE.match(line)
    assert ((m.group(3), m.group(5)) if m else None) == done
    s = None if m else STEP_START.match(line)
    assert (s.group(3) if s else None) == start


# --- execute(): what each failure and signal leaves behind (a fake switch, no engine) -------------------


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeSwitch:
    """Records the calls execute() makes; `fail_at` raises there (a KitError, or an exception instance)."""

    def __init__(self, fail_at: str = "", error: BaseException | None = None) -> None:
        self.fail_at, self.error = fail_at, error
        self.calls: list[str] = []
        self.old, self.new = _Named("s_atbb_1"), None
        self.confirmed = False
        self.backup, self.migrated, self.migrate_started = "", False, False
        self.old_facts = up.ImageFacts("a:1", "sha256:" + "1" * 64, "1.0.0", "r1", "")
        self.env_file = ".env"

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_at:
            raise self.error or KitError(f"{name} broke", "fix it")

    def pin_old(self):
        self._step("pin_old")

    def start_new(self, ref):
        self.new = _Named("s_atbb_2")
        self._step("start_new")

    def wait_healthy(self):
        self._step("wait_healthy")

    def warm_up(self):
        self._step("warm_up")

    def switch(self):
        self._step("switch_before")
        self.confirmed = True
        self._step("switch_after")
        return "label"

    def retire_old(self):
        self._step("retire_old")

    def revert(self):
        self.calls.append("REVERT")
        return []

    def finish_after_signal(self):
        self.calls.append("FINISH")
        return []


def _facts():
    return up.ImageFacts("a:2", "sha256:" + "2" * 64, "1.1.0", "r2", "")


def _run(tmp_path, sw, hooks_fail=""):
    def backup():
        return "backups/atbb-1.dump"

    def migrate(ref):
        if hooks_fail == "migrate":
            raise KitError("the migrator exited with code 1", "see above")
        if hooks_fail == "migrate-signal":
            from atbb_kit.infra.signals import Interrupted

            raise Interrupted("the migrator was interrupted", None, 15)

    history = releases.load_history(tmp_path)
    return up.execute(
        sw,
        up.plan("upgrade", smoke=False),
        "a:2",
        _facts,
        up.Hooks(backup=backup, migrate=migrate),
        history,
        action="upgrade",
        preflight=lambda: None,
    )


@pytest.mark.parametrize(
    "fail_at, error, cleanup, exit_code, says",
    [
        ("start_new", None, "REVERT", 1, "step 4/8 (start) failed: start_new broke. the old release (s_atbb_1) still"),
        ("wait_healthy", None, "REVERT", 1, "step 5/8 (health) failed"),
        ("switch_before", None, "REVERT", 1, "step 6/8 (switch) failed"),
        (
            "retire_old",
            None,
            "FINISH",
            1,
            "failed after the switch: retire_old broke. The new release (s_atbb_2) serves",
        ),
        ("wait_healthy", KeyboardInterrupt(), "REVERT", 130, "interrupted by SIGINT during health: the old release"),
        ("switch_after", KeyboardInterrupt(), "FINISH", 130, "during switch: the new release (s_atbb_2) serves"),
    ],
)
def test_execute_leaves_one_release_serving(tmp_path, capsys, fail_at, error, cleanup, exit_code, says):
    sw = FakeSwitch(fail_at, error)
    with pytest.raises(KitError) as err:
        _run(tmp_path, sw)
    assert cleanup in sw.calls and ({"REVERT", "FINISH"} - {cleanup}).isdisjoint(sw.calls)
    assert err.value.exit_code == exit_code
    assert says in err.value.what, err.value.what
    # Migrations ran before every one of these: the restore command is offered unless the new one serves.
    if cleanup == "REVERT":
        assert "inv restore backups/atbb-1.dump --force" in (err.value.fix or "")
    recorded = releases.load_history(tmp_path).releases
    if cleanup == "FINISH":
        assert [r.image for r in recorded] == ["a:2"]
    else:
        # The old release kept serving on a migrated database: the history says so, for a later rollback.
        (kept,) = recorded
        assert (kept.image, kept.migrated, kept.backup) == ("a:1", True, "backups/atbb-1.dump")
        assert kept.action.startswith("kept (upgrade to a:2 failed)")
    assert "upgrade: " in capsys.readouterr().out  # the summary table


@pytest.mark.parametrize(
    "hooks_fail, exit_code, says",
    [
        ("migrate", 1, "step 3/8 (migrate) failed: the migrator exited with code 1"),
        ("migrate-signal", 143, "interrupted by SIGTERM during migrate"),
    ],
)
def test_execute_when_the_migration_fails_or_is_stopped(tmp_path, hooks_fail, exit_code, says):
    sw = FakeSwitch()
    with pytest.raises(KitError) as err:
        _run(tmp_path, sw, hooks_fail)
    assert err.value.exit_code == exit_code and says in err.value.what
    assert "inv restore backups/atbb-1.dump --force" in (err.value.fix or "")
    assert "start_new" not in sw.calls
    # A migration that started counts, finished or not: the schema may be half new.
    (kept,) = releases.load_history(tmp_path).releases
    assert kept.image == "a:1" and kept.migrated


def test_execute_records_a_good_upgrade(tmp_path):
    sw = FakeSwitch()
    outcome = _run(tmp_path, sw)
    assert sw.calls == [
        "pin_old",
        "start_new",
        "wait_healthy",
        "warm_up",
        "switch_before",
        "switch_after",
        "retire_old",
    ]
    (entry,) = releases.load_history(tmp_path).releases
    assert (entry.image, entry.version, entry.migrated, entry.backup) == ("a:2", "1.1.0", True, "backups/atbb-1.dump")
    assert outcome.new_container == "s_atbb_2" and set(outcome.seconds) >= {"start", "switch", "drain"}


# --- the waits of the switch, on a fake clock ------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    return on_fake_clock(monkeypatch, up)


class ScriptedContainer:
    """The new container: each reload takes the next (status, restarts, health check's exit code) of `script`
    (the last one again once it runs out); "gone" is a container removed behind the kit's back."""

    name = "atbb-new"

    def __init__(self, script, healthcheck=("CMD", "/e", "health")) -> None:
        self.script, self.healthcheck = script, healthcheck
        self.reloads = 0
        self.checks = 0

    def reload(self) -> None:
        from docker.errors import NotFound

        self.reloads += 1
        status, restarts, self.code = self.script[min(self.reloads, len(self.script)) - 1]
        if status == "gone":
            raise NotFound("gone")
        health = {"Test": list(self.healthcheck)} if self.healthcheck else {}
        self.attrs = {
            "State": {"Status": status, "ExitCode": 3},
            "RestartCount": restarts,
            "Config": {"Healthcheck": health},
        }

    def exec_run(self, test):
        self.checks += 1
        assert test == list(self.healthcheck[1:])
        return self.code, b""

    def logs(self, tail: int) -> bytes:
        return b"listening\nboom\n"


def switch(timeout: int = 5) -> up.Switch:
    cfg = SimpleNamespace(
        compose=SimpleNamespace(project="p", host_port=8080), health=SimpleNamespace(path="/api/health", status=200)
    )
    return up.Switch(SimpleNamespace(cfg=cfg), lambda ref: None, "atbb.env", timeout=timeout, drain=0)


@pytest.mark.parametrize(
    ("script", "healthcheck", "says", "reloads", "checks"),
    [
        ([("created", 0, 1), ("running", 0, 1), ("running", 0, 0)], True, None, 3, 2),
        ([("running", 0, 0)], None, None, 1, 0),
        # 5 s at 0.5 s: the probe at 0 s and ten more, the last one after the deadline.
        ([("running", 0, 1)], True, "did not pass its health check within 5 s", 12, 12),
        ([("running", 0, 1), ("exited", 0, 1)], True, "is not healthy: it exited with code 3", 2, 1),
        ([("running", 1, 1)], True, "is not healthy: it crashed and is restarting", 1, 0),
        ([("running", 0, 1), ("gone", 0, 1)], True, "atbb-new disappeared", 2, 1),
    ],
)
def test_wait_healthy(clock, capsys, script, healthcheck, says, reloads, checks):
    sw = switch()
    sw.new = ScriptedContainer(script, ("CMD", "/e", "health") if healthcheck else None)
    if says:
        with pytest.raises(KitError, match=re.escape(says)):
            sw.wait_healthy()
    else:
        sw.wait_healthy()
        err = capsys.readouterr().err
        assert ("passes its health check" in err) == bool(healthcheck)
        assert ("has no HEALTHCHECK" in err) == (not healthcheck)
    assert (sw.new.reloads, sw.new.checks) == (reloads, checks)


@pytest.mark.parametrize(
    ("answers", "says", "asked"),
    [
        ([(0, "Connection refused"), (200, "old"), (200, "new")], None, 3),
        ([(503, "new"), (200, "new")], None, 2),
        # 20 s at 0.2 s: 101 answers in time, then one more after the deadline.
        ([(200, "old")], "within 20 s (last: HTTP 200, release old)", 102),
        ([(502, "")], "(last: HTTP 502, release none)", 102),
    ],
)
def test_confirm_edge(monkeypatch, clock, answers, says, asked):
    urls = []

    def answer(url, header):
        urls.append((url, header))
        return answers[min(len(urls), len(answers)) - 1]

    monkeypatch.setattr(up, "get_with_header", answer)
    sw = switch()
    if says:
        with pytest.raises(KitError, match=re.escape(says)):
            sw.confirm_edge("new")
    else:
        sw.confirm_edge("new")
    assert len(urls) == asked
    assert urls[0] == ("http://127.0.0.1:8080/api/health", "X-Atbb-Release")
