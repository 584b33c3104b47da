"""`inv smoke` without an engine: the checklist, its skip rules, the verdicts, the generated env, and the
signal guard, as tables; plus .github/dependabot.yml against the vendored Dependabot schema."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys

import pytest
import yaml

from atbb_kit.core.config import load_config
from atbb_kit.infra import signals
from atbb_kit.infra.console import Console
from atbb_kit.infra.http import Http
from atbb_kit.ops import smoke, stack
from atbb_kit.ops.smoke import FAIL, OK, SKIPPED, CheckFailed
from atbb_kit.tasks import namespace
from tests.conftest import ROOT, run_inv


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "atbb.yaml", environ={})


# --- the checklist ----------------------------------------------------------------------------------------

TITLES = [
    "image size within the 250 MB budget",
    "PostgreSQL is ready",
    "migration runs (exit 0)",
    "migration runs again (idempotent, exit 0)",
    "app container starts with a generated env",
    '/api/health answers 200 containing "status":"ok" from appview',
    "/ answers a page from web",
    "each of the 3 routes reaches its service",
    "HEALTHCHECK turns healthy",
    "docker stop exits 0 within 10 s",
]


def test_the_ten_lines_in_order(cfg):
    assert [c.title for c in smoke.checklist(cfg)] == TITLES


def test_needs_only_name_earlier_lines(cfg):
    seen: set[str] = set()
    for check in smoke.checklist(cfg):
        assert set(check.needs) <= seen, f"{check.key} needs a later or unknown line: {check.needs}"
        assert check.key not in seen
        seen.add(check.key)


def test_titles_follow_the_config(tmp_path):
    text = (ROOT / "atbb.yaml").read_text().replace("size_budget_mb: 250", "size_budget_mb: 400")
    (tmp_path / "atbb.yaml").write_text(text)
    titles = [c.title for c in smoke.checklist(load_config(tmp_path / "atbb.yaml", environ={}))]
    assert titles[0] == "image size within the 400 MB budget"


def test_route_probes_cover_every_route_with_a_path_only_it_serves(cfg):
    probes = smoke.route_probes(cfg)
    assert [(p.label, p.path, p.service, p.port) for p in probes] == [
        ("prefix /static/", "/static/atbb-smoke-probe", "web", 3001),
        ("prefix /api/", "/api/atbb-smoke-probe", "appview", 3000),
        ("prefix /", "/atbb-smoke-probe", "web", 3001),
    ]
    for probe in probes:
        assert cfg.service_for(probe.path, probe.host) == probe.service


def test_route_probes_follow_exact_and_host_routes(tmp_path):
    text = (
        (ROOT / "atbb.yaml")
        .read_text()
        .replace(
            "  - path: /\n    service: web\n",
            "  - path: /\n    service: web\n  - path: /api/session\n    match: exact\n    service: web\n"
            "  - path: /\n    service: appview\n    host: '*.api.example.org'\n",
        )
    )
    (tmp_path / "atbb.yaml").write_text(text)
    cfg = load_config(tmp_path / "atbb.yaml", environ={})
    probes = {(p.host, p.path): p.service for p in smoke.route_probes(cfg)}
    assert probes[(None, "/api/session")] == "web"
    assert probes[("smoke.api.example.org", "/atbb-smoke-probe")] == "appview"
    # The wildcard host still inherits the host-less /api/ route.
    assert probes[("smoke.api.example.org", "/api/atbb-smoke-probe")] == "appview"
    assert len(probes) == 8


def test_the_checklist_of_another_app_comes_from_its_config():
    board = load_config(ROOT / "examples" / "board" / "atbb.yaml", environ={})
    titles = [c.title for c in smoke.checklist(board)]
    assert titles[5] == "/api/boards answers 200 from api"
    assert titles[6] == "/ answers a page from web"
    assert titles[7] == "each of the 3 routes reaches its service"


# Which lines fail -> the status of every line. Skipped lines must not run at all.
ALL = [c.key for c in smoke.checklist(load_config(ROOT / "atbb.yaml", environ={}))]
AFTER_START = ["health", "page", "routes", "healthy", "stop"]
SKIPS = [
    ("all-pass", [], []),
    ("size-is-independent", ["size"], []),
    ("postgres", ["postgres"], ["migrate", "migrate-again", "start", *AFTER_START]),
    ("migrate", ["migrate"], ["migrate-again", "start", *AFTER_START]),
    ("migrate-again-alone", ["migrate-again"], []),
    ("start", ["start"], AFTER_START),
    ("health-skips-healthy-only", ["health"], ["healthy"]),
    ("page-alone", ["page"], []),
    ("routes-alone", ["routes"], []),
    ("healthy-alone", ["healthy"], []),
    ("stop-alone", ["stop"], []),
    ("two-independent", ["size", "page"], []),
    ("health-and-routes", ["health", "routes"], ["healthy"]),
]


@pytest.mark.parametrize(("failing", "skipped"), [c[1:] for c in SKIPS], ids=[c[0] for c in SKIPS])
def test_failures_skip_exactly_their_dependants(cfg, failing, skipped):
    ran: list[str] = []

    def action(key):
        def run():
            ran.append(key)
            if key in failing:
                raise CheckFailed(f"{key} broke", "evidence")
            return f"{key} fine"

        return run

    outcomes = smoke.run_checklist(smoke.checklist(cfg), {k: action(k) for k in ALL})
    status = {o.check.key: o.status for o in outcomes}
    expected = {k: FAIL if k in failing else SKIPPED if k in skipped else OK for k in ALL}
    assert status == expected
    assert ran == [k for k in ALL if k not in skipped], "a skipped line ran"
    for o in outcomes:
        if o.status == SKIPPED:
            assert o.detail.startswith("needs: ")
        if o.status == FAIL:
            assert (o.detail, o.reason) == (f"{o.check.key} broke", "evidence")


def test_listed_errors_fail_the_line_and_others_propagate(cfg):
    checks = smoke.checklist(cfg)[:3]
    outcomes = smoke.run_checklist(
        checks,
        {"size": lambda: "ok", "postgres": lambda: (_ for _ in ()).throw(OSError("engine gone")), "migrate": None},
        errors=(CheckFailed, OSError),
    )
    assert [o.status for o in outcomes] == [OK, FAIL, SKIPPED]
    assert (outcomes[1].detail, outcomes[1].reason) == ("OSError: engine gone", "")  # said once, not twice

    # An interrupt is not a failed line: it stops the loop, and the lines finished so far are kept.
    done: list[smoke.CheckResult] = []

    def interrupted():
        raise signals.SignalReceived(signal.SIGINT)

    with pytest.raises(signals.SignalReceived):
        smoke.run_checklist(checks, {"size": lambda: "ok", "postgres": interrupted}, outcomes=done)
    assert [o.check.key for o in done] == ["size"]


# --- the verdict ------------------------------------------------------------------------------------------


def outcomes_with(cfg, **statuses):
    return [smoke.CheckResult(c, statuses.get(c.key.replace("-", "_"), OK)) for c in smoke.checklist(cfg)]


VERDICTS = [
    ("all-ok", {}, None),
    (
        "one-failed",
        {"health": FAIL},
        'smoke: 1 of 10 checks failed: /api/health answers 200 containing "status":"ok" from appview',
    ),
    (
        "failed-and-skipped",
        {"health": FAIL, "routes": FAIL, "healthy": SKIPPED},
        'smoke: 2 of 10 checks failed, 1 skipped: /api/health answers 200 containing "status":"ok" from appview; '
        "each of the 3 routes reaches its service",
    ),
    ("only-skipped-is-still-a-failure", {"stop": SKIPPED}, "smoke: 1 of 10 checks were skipped"),
]


@pytest.mark.parametrize(("statuses", "message"), [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS])
def test_verdict(cfg, statuses, message):
    error = smoke.verdict(outcomes_with(cfg, **statuses))
    if message is None:
        assert error is None
    else:
        assert error is not None and error.what == message
        assert error.exit_code != 0


def test_the_error_line_reads_as_designed(cfg):
    # What the user sees through the kit's one error boundary.
    error = smoke.verdict(outcomes_with(cfg, health=FAIL))
    assert str(error) == (
        'smoke: 1 of 10 checks failed: /api/health answers 200 containing "status":"ok" from appview'
        " — see the reason above"
    )


def test_printer_prints_the_line_then_the_reason(cfg):
    out = io.StringIO()
    check = smoke.checklist(cfg)[5]
    smoke.Printer(Console(progress_stream=out)).finished(
        6, 10, smoke.CheckResult(check, FAIL, 1.25, "HTTP 500, expected 200", "body\nmore")
    )
    smoke.Printer(Console(progress_stream=out)).finished(
        9, 10, smoke.CheckResult(smoke.checklist(cfg)[8], SKIPPED, 0, "needs: x")
    )
    assert out.getvalue().splitlines() == [
        '[ 6/10] FAIL    /api/health answers 200 containing "status":"ok" from appview — HTTP 500, expected 200'
        " (1.2 s)",
        "        body",
        "        more",
        "[ 9/10] skipped HEALTHCHECK turns healthy — needs: x",
    ]


def test_run_id_is_found_in_the_output():
    assert smoke.run_id_from("x\n==> smoke run 0a1b2c3d: img with pg; ...\n") == "0a1b2c3d"
    assert smoke.run_id_from("nothing here") is None


# --- verdicts on answers ----------------------------------------------------------------------------------

JSON = {"content-type": "application/json; charset=UTF-8"}
HTML = {"content-type": "text/html; charset=UTF-8"}
PAGE = b"<!doctype html>\n<html lang='en'><body>Forum</body></html>"

TEXT = {"content-type": "text/plain; charset=UTF-8"}

HEALTH = [
    # (id, answer, health.status, health.body, expected failure)
    ("ok", Http(200, JSON, b'{"status":"ok","database":"up"}'), 200, '"status":"ok"', None),
    ("plain-ok", Http(200, TEXT, b"[]"), 200, None, None),
    ("500", Http(500, JSON, b'{"status":"broken"}'), 200, None, "HTTP 500, expected 200"),
    ("db-down-503", Http(503, JSON, b'{"status":"error"}'), 200, None, "HTTP 503, expected 200: the service"),
    ("404", Http(404, HTML, PAGE), 200, None, "HTTP 404, expected 200: is health.path a path the app serves"),
    ("body-missing", Http(200, JSON, b'{"status":"degraded"}'), 200, '"status":"ok"', 'does not contain "status":"ok"'),
    ("other-status", Http(204, TEXT, b""), 204, None, None),
]
PAGES = [
    ("ok", Http(200, HTML, PAGE), None),
    ("upper-case-tag", Http(200, HTML, b"<!DOCTYPE html><HTML></HTML>"), None),
    ("redirect", Http(302, {"location": "/login"}, b""), None),
    ("502", Http(502, HTML, b"<html>Bad Gateway</html>"), "HTTP 502, expected a page"),
    ("404", Http(404, HTML, PAGE), "HTTP 404, expected a page"),
    ("fragment", Http(200, HTML, b"<p>hi</p>"), "no <html> element"),
]


@pytest.mark.parametrize(("resp", "status", "body", "expected"), [c[1:] for c in HEALTH], ids=[c[0] for c in HEALTH])
def test_judge_health(resp, status, body, expected):
    problem = smoke.judge_health(resp, status, body)
    if expected is None:
        assert problem is None, problem.summary
    else:
        assert problem is not None and expected in problem.summary, problem and problem.summary
        # The evidence: the status and the start of the body, so the reader sees what answered.
        assert problem.reason.startswith(f"HTTP {resp.status} (")


@pytest.mark.parametrize(("resp", "expected"), [c[1:] for c in PAGES], ids=[c[0] for c in PAGES])
def test_judge_page(resp, expected):
    problem = smoke.judge_page(resp)
    if expected is None:
        assert problem is None, problem.summary
    else:
        assert problem is not None and expected in problem.summary
        assert problem.reason.startswith(f"HTTP {resp.status} (")


PROBE = smoke.RouteProbe("prefix /api/", None, "/api/atbb-smoke-probe", "appview", 3000)
ROUTE_CASES = [
    ("reached", 404, {"upstream_addr": "127.0.0.1:3000"}, None),
    ("retried-then-reached", 404, {"upstream_addr": "127.0.0.1:3001, 127.0.0.1:3000"}, None),
    ("wrong-service", 404, {"upstream_addr": "127.0.0.1:3001"}, "reached 127.0.0.1:3001, expected appview"),
    ("nginx-itself", 404, {"upstream_addr": ""}, "nginx answered 404 itself"),
    ("server-error", 500, {"upstream_addr": "127.0.0.1:3000"}, "appview answered 500"),
    ("not-logged", 404, None, "nginx logged no line"),
]


@pytest.mark.parametrize(
    ("status", "logged", "expected"), [c[1:] for c in ROUTE_CASES], ids=[c[0] for c in ROUTE_CASES]
)
def test_judge_route(status, logged, expected):
    problem = smoke.judge_route(PROBE, status, logged)
    if expected is None:
        assert problem is None, problem.summary
    else:
        assert problem is not None and expected in problem.summary, problem and problem.summary


def test_evidence_is_cut_to_200_characters_on_one_line():
    resp = Http(500, HTML, b"<html>\n" + b"x" * 500)
    assert len(resp.excerpt()) == 201 and "\n" not in resp.excerpt()


@pytest.mark.parametrize(
    ("code", "seconds", "expected"),
    [
        (0, 0.3, None),
        (0, 10.0, "SIGKILL"),
        (137, 10.2, "SIGKILL"),
        (1, 0.4, "exited 1 after 0.4 s, expected 0"),
        (143, 2.0, "exited 143"),
    ],
)
def test_judge_stop(code, seconds, expected):
    problem = smoke.judge_stop(code, seconds)
    assert (problem is None) if expected is None else (expected in problem.summary)


@pytest.mark.parametrize(
    ("size", "budget", "fails"),
    [(249_999_999, 250, False), (250_000_000, 250, False), (250_000_001, 250, True)],
)
def test_judge_size(size, budget, fails):
    problem = smoke.judge_size(size, budget)
    assert (problem is not None) == fails
    if fails:
        assert "over image.size_budget_mb=250" in problem.summary


# --- signals ----------------------------------------------------------------------------------------------


def test_smoke_is_a_task_with_its_flags():
    assert "smoke" in namespace.task_names
    flags = {name for arg in namespace["smoke"].get_arguments() for name in arg.names}
    assert {"image", "keep", "timeout"} <= flags


def test_a_bad_timeout_is_refused_before_anything_runs():
    proc = run_inv("smoke", "--timeout", "0", "--image", "does-not-matter:1")
    assert proc.returncode == 2
    assert "error: --timeout '0': expected a whole number from 1 to 3600" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- .github/dependabot.yml -------------------------------------------------------------------------------

DEPENDABOT = ROOT / ".github" / "dependabot.yml"


@pytest.fixture(scope="module")
def dependabot() -> dict:
    return yaml.safe_load(DEPENDABOT.read_text())


def _dirs(entry: dict) -> list[str]:
    return entry.get("directories") or [entry["directory"]]


def test_dependabot_passes_the_vendored_schema():
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.dependabot", str(DEPENDABOT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dependabot_covers_the_four_ecosystems_where_they_live(dependabot):
    assert dependabot["version"] == 2
    where = {u["package-ecosystem"]: _dirs(u) for u in dependabot["updates"]}
    assert set(where) == {"github-actions", "pip", "npm", "docker"}
    assert "/" in where["github-actions"]
    assert where["pip"] == ["/"]
    assert "/examples/forum" in where["npm"]
    assert where["docker"] == ["/docker"]
    for entry in dependabot["updates"]:
        for folder in _dirs(entry):
            assert (ROOT / folder.lstrip("/")).is_dir(), f"{entry['package-ecosystem']}: {folder} does not exist"


def test_dependabot_stays_quiet(dependabot):
    for entry in dependabot["updates"]:
        name = entry["package-ecosystem"]
        assert entry["schedule"]["interval"] == "weekly", name
        assert 1 <= entry["open-pull-requests-limit"] <= 5, name
        groups = list(entry["groups"].values())
        assert any(g["patterns"] == ["*"] and set(g["update-types"]) == {"minor", "patch"} for g in groups), name


def test_dependabot_sees_every_composite_action(dependabot):
    # Dependabot reads a local action only when its directory is listed: a new action must be added.
    actions = {f"/{p.parent.relative_to(ROOT)}" for p in (ROOT / ".github" / "actions").glob("*/action.yml")}
    listed = set(next(_dirs(u) for u in dependabot["updates"] if u["package-ecosystem"] == "github-actions"))
    assert actions and actions <= listed


def test_dependabot_sees_every_npm_lockfile(dependabot):
    skip = {"node_modules", ".venv", "build", ".git"}
    lockfiles = [
        p
        for name in ("pnpm-lock.yaml", "package-lock.json")
        for p in ROOT.rglob(name)
        if not skip & set(p.relative_to(ROOT).parts)
    ]
    listed = set(next(_dirs(u) for u in dependabot["updates"] if u["package-ecosystem"] == "npm"))
    assert lockfiles
    for lock in lockfiles:
        assert f"/{lock.parent.relative_to(ROOT)}" in listed, f"{lock} is not watched"


def test_dependabot_documents_why_the_base_image_is_not_updated():
    # While the Dockerfile takes its base from an ARG, Dependabot cannot see it: the file must say so.
    if re.search(r"^FROM \$\{?NODE_BASE", (ROOT / "docker" / "Dockerfile").read_text(), re.M):
        text = DEPENDABOT.read_text()
        assert "LIMITATION" in text and "NODE_BASE" in text and "image.base" in text


@pytest.mark.parametrize(
    ("raw", "lines"),
    [
        (b"migrate: done (2 applied)\n", ["migrate: done (2 applied)"]),
        # drizzle-kit's spinner: redraws its line with ESC[2K ESC[1G, colours around the tick.
        (
            b"[\xe2\xa3\xb7] applying migrations...\x1b[2K\x1b[1G[\x1b[32m\xe2\x9c\x93\x1b[39m] migrations applied!\n",
            ["[\u2713] migrations applied!"],
        ),
        (b"a\r\nprogress 10%\rprogress 100%\n\n", ["a", "progress 100%"]),
    ],
)
def test_plain_lines_show_what_a_terminal_would(raw, lines):
    assert stack.plain_lines(raw) == lines
