"""`inv smoke --browser` without a browser: the verdicts on recorded page loads as tables (events in,
problems and notes out), finding Chromium, the checklist lines it adds, and the task's flag checks."""

from __future__ import annotations

import re

import pytest

from atbb_kit.core.config import load_config
from atbb_kit.core.errors import KitError
from atbb_kit.ops import browser_check as bc
from atbb_kit.ops import smoke
from atbb_kit.ops.browser_check import Console, CspViolation, PageException, PageLoad, Request
from tests.conftest import ROOT, run_inv

BASE = "http://127.0.0.1:32768"
CSS = Request(f"{BASE}/static/style.css", "stylesheet", 200, "text/css; charset=utf-8", True)
JS = Request(f"{BASE}/assets/app.js", "script", 200, "application/javascript; charset=UTF-8", True)
DOC = Request(f"{BASE}/", "document", 200, "text/html", True)


def page(**kwargs) -> PageLoad:
    """A clean load of / (document, one stylesheet, one script), changed by `kwargs`."""
    fields = {"page": "/", "url": f"{BASE}/", "status": 200, "requests": (DOC, CSS, JS), "load_seconds": 0.4}
    return PageLoad(**{**fields, **kwargs})


def failed(url: str, failure: str = "net::ERR_ABORTED", kind: str = "stylesheet") -> Request:
    return Request(url, kind, None, "", False, failure)


def not_found(url: str) -> Console:
    return Console("error", "Failed to load resource: the server responded with a status of 404 (Not Found)", url)


# --- the verdict: events in, problems and notes out -------------------------------------------------------

INLINE_CSP_CONSOLE = (
    "Executing inline script violates the following Content Security Policy directive 'script-src 'self''. "
    "Either the 'unsafe-inline' keyword, a hash ('sha256-kYlN='), or a nonce ('nonce-...') is required to enable "
    "inline execution. The action has been blocked."
)
NOSNIFF_CSS_CONSOLE = (
    f"Refused to apply style from '{BASE}/static/style.css' because its MIME type ('text/plain') is not a "
    "supported stylesheet MIME type, and strict MIME checking is enabled."
)

JUDGED = {
    "a clean load": (page(), [], []),
    "the favicon probe the browser makes on its own": (page(console=(not_found(f"{BASE}/favicon.ico"),)), [], []),
    "console warnings and logs": (page(console=(Console("warning", "deprecated"), Console("log", "hi"))), [], []),
    "document 404": (
        page(status=404, console=(not_found(f"{BASE}/"),)),
        ["document answered 404, expected 200"],
        [],
    ),
    "document 500 after a redirect": (
        page(status=500, final_url=f"{BASE}/login"),
        ["document answered 500, expected 200"],
        ["redirected to /login"],
    ),
    "no answer at all": (page(error="net::ERR_CONNECTION_REFUSED at http://127.0.0.1:32768/"), None, []),
    "inline script blocked by the CSP (event and console alike)": (
        page(
            csp=(CspViolation("script-src-elem", "inline", f"{BASE}/", 12),) * 2,
            console=(Console("error", INLINE_CSP_CONSOLE, f"{BASE}/"),),
        ),
        ["CSP script-src-elem blocked an inline script at / line 12"],
        [],
    ),
    "a script URL blocked by the CSP": (
        page(
            csp=(CspViolation("script-src-elem", "https://cdn.example/x.js", f"{BASE}/", 3),),
            console=(Console("error", "Refused to load the script 'https://cdn.example/x.js' because ..."),),
        ),
        ["CSP script-src-elem blocked https://cdn.example/x.js"],
        [],
    ),
    "an inline style blocked by the CSP": (
        page(csp=(CspViolation("style-src-attr", "inline", f"{BASE}/", 0),)),
        ["CSP style-src-attr blocked an inline style at /"],
        [],
    ),
    "eval blocked by the CSP": (
        page(csp=(CspViolation("script-src", "eval", f"{BASE}/assets/app.js", 1),)),
        ["CSP script-src blocked eval() at /assets/app.js line 1"],
        [],
    ),
    "a CSP console message with no event is still an error": (
        page(console=(Console("error", INLINE_CSP_CONSOLE, f"{BASE}/"),)),
        [f"console error: {INLINE_CSP_CONSOLE}"],
        [],
    ),
    "report-only violations are notes": (
        page(csp=(CspViolation("script-src-elem", "inline", f"{BASE}/", 1, "report"),)),
        [],
        ["report-only CSP script-src-elem would block an inline script at / line 1"],
    ),
    "stylesheet as text/plain under nosniff (Chromium aborts it, the console says why)": (
        page(
            requests=(DOC, failed(CSS.url), JS),
            console=(Console("error", NOSNIFF_CSS_CONSOLE, f"{BASE}/"),),
        ),
        [f"stylesheet /static/style.css blocked: {NOSNIFF_CSS_CONSOLE}"],
        [],
    ),
    "script as text/plain under nosniff": (
        page(requests=(DOC, CSS, Request(JS.url, "script", 200, "text/plain", True))),
        [
            "script /assets/app.js blocked: served as text/plain under X-Content-Type-Options: nosniff "
            "(needs a JavaScript type such as text/javascript)"
        ],
        [],
    ),
    "stylesheet with no content type under nosniff": (
        page(requests=(DOC, Request(CSS.url, "stylesheet", 200, "", True), JS)),
        [
            "stylesheet /static/style.css blocked: served as no content type under X-Content-Type-Options: nosniff "
            "(needs text/css)"
        ],
        [],
    ),
    "text/plain without nosniff is not judged by MIME": (
        page(requests=(DOC, Request(JS.url, "script", 200, "text/plain", False), CSS)),
        [],
        [],
    ),
    "script 404 (the response, the abort and the console line are one problem)": (
        page(
            requests=(DOC, CSS, Request(JS.url, "script", 404, "text/plain", True, "net::ERR_ABORTED")),
            console=(not_found(JS.url),),
        ),
        ["script /assets/app.js answered 404"],
        [],
    ),
    "image 502 and a fetch 500": (
        page(
            requests=(
                DOC,
                Request(f"{BASE}/img/logo.png", "image", 502),
                Request(f"{BASE}/api/forum?x=1", "fetch", 500),
            )
        ),
        ["image /img/logo.png answered 502", "fetch /api/forum?x=1 answered 500"],
        [],
    ),
    "a font that never answered": (
        page(requests=(DOC, failed(f"{BASE}/fonts/a.woff2", "net::ERR_CONNECTION_RESET", "font"))),
        ["font /fonts/a.woff2 failed: net::ERR_CONNECTION_RESET"],
        [],
    ),
    "an answered request cut short is not a failure": (
        page(requests=(DOC, Request(f"{BASE}/v.mp4", "media", 206, "video/mp4", True, "net::ERR_ABORTED"))),
        [],
        [],
    ),
    "another origin: not requested, a note, and its console line dropped": (
        page(
            requests=(DOC, failed("https://fonts.example/a.css", bc.OFF_ORIGIN_FAILURE)),
            console=(
                Console("error", "Failed to load resource: net::ERR_BLOCKED_BY_CLIENT", "https://fonts.example/a.css"),
            ),
        ),
        [],
        [
            "not requested (another origin; the smoke test stays on this machine): stylesheet https://fonts.example/a.css"
        ],
    ),
    "an uncaught exception names where it was thrown": (
        page(exceptions=(PageException("TypeError", "x is undefined", f"{BASE}/assets/app.js:1:120"),)),
        ["uncaught TypeError: x is undefined (at /assets/app.js:1:120)"],
        [],
    ),
    "an unhandled rejection without a stack": (
        page(exceptions=(PageException("Error", "rejected"),)),
        ["uncaught Error: rejected"],
        [],
    ),
    "console.error from the app": (
        page(console=(Console("error", "hydration mismatch", f"{BASE}/assets/app.js"),)),
        ["console error: hydration mismatch"],
        [],
    ),
    "console.assert failing": (
        page(console=(Console("assert", "Assertion failed"),)),
        ["console error: Assertion failed"],
        [],
    ),
    "a Failed-to-load line for a request the page did not report names its URL": (
        page(console=(not_found(f"{BASE}/manifest.json"),)),
        [
            "console error: Failed to load resource: the server responded with a status of 404 (Not Found) "
            "(/manifest.json)"
        ],
        [],
    ),
    "data: URLs are not requests": (
        page(requests=(DOC, failed("data:image/png;base64,xx", "net::ERR_FAILED"))),
        [],
        [],
    ),
}


@pytest.mark.parametrize("case", list(JUDGED))
def test_judge(case):
    load, problems, notes = JUDGED[case]
    verdict = bc.judge(load)
    if problems is None:  # the navigation failed: one problem that quotes the error
        assert verdict.problems == (f"did not load: {load.error}",)
    else:
        assert list(verdict.problems) == problems
    assert list(verdict.notes) == notes
    assert verdict.ok is (not verdict.problems)


def test_every_problem_is_one_line_and_bounded():
    long = "x" * 5000
    load = page(
        console=(Console("error", long + "\n" + long),),
        exceptions=(PageException("Error", long),),
        requests=(DOC, Request(f"{BASE}/{long}.js", "script", 404)),
    )
    for problem in bc.judge(load).problems:
        assert "\n" not in problem
        assert len(problem) < 400, problem


MIME = [
    # (resource type, status, content type, nosniff) -> refused?
    ("stylesheet", 200, "text/css", True, False),
    ("stylesheet", 200, "text/css; charset=utf-8", True, False),
    ("stylesheet", 200, "TEXT/CSS", True, False),
    ("stylesheet", 200, "text/plain", True, True),
    ("stylesheet", 200, "text/plain", False, False),
    ("stylesheet", 304, "text/plain", True, False),
    ("script", 200, "text/javascript", True, False),
    ("script", 200, "application/javascript; charset=UTF-8", True, False),
    ("script", 200, "application/x-javascript", True, False),
    ("script", 200, "application/json", True, True),
    ("script", 200, "text/html", True, True),
    ("script", 404, "text/html", True, False),  # judged as a 404, not as a MIME problem
    ("image", 200, "text/plain", True, False),
    ("fetch", 200, "text/plain", True, False),
]


@pytest.mark.parametrize(("kind", "status", "content_type", "nosniff", "refused"), MIME)
def test_mime_problem(kind, status, content_type, nosniff, refused):
    req = Request(f"{BASE}/x", kind, status, content_type, nosniff)
    assert (bc.mime_problem(req) is not None) is refused


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{BASE}/assets/a.js", "/assets/a.js"),
        (f"{BASE}/api/x?y=1", "/api/x?y=1"),
        ("http://127.0.0.1:9/a.js", "http://127.0.0.1:9/a.js"),  # another port is another origin
        ("https://cdn.example/a.js", "https://cdn.example/a.js"),
        (f"{BASE}/" + "a" * 300, "/" + "a" * (bc.SHOWN - 2) + "…"),
    ],
)
def test_shown(url, expected):
    assert bc.shown(url, f"{BASE}".lower()) == expected


@pytest.mark.parametrize(
    ("index", "path", "name"),
    [
        (1, "/", "01-root.png"),
        (2, "/b/general", "02-b-general.png"),
        (3, "/search?q=a b", "03-search-q-a-b.png"),
        (12, "/../../etc/passwd", "12-etc-passwd.png"),
        (4, "/" + "x" * 200, "04-" + "x" * 60 + ".png"),
    ],
)
def test_screenshot_name(index, path, name):
    assert bc.screenshot_name(index, path) == name


def test_summary_names_status_requests_load_time_and_screenshot():
    load = page()
    assert (
        bc.summary(load, bc.judge(load), "01-root.png") == "200, 3 requests, loaded in 0.40 s, screenshot 01-root.png"
    )
    redirected = page(final_url=f"{BASE}/login", requests=(DOC,), load_seconds=None)
    assert bc.summary(redirected, bc.judge(redirected)) == "200, 1 request; 1 note: redirected to /login"


# --- finding Chromium and the client ----------------------------------------------------------------------


def which_of(*present: str):
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("present", "found"),
    [
        (("chromium",), "/usr/bin/chromium"),
        (("google-chrome", "chromium"), "/usr/bin/chromium"),  # Debian's package first
        (("chromium-browser",), "/usr/bin/chromium-browser"),
        (("google-chrome-stable",), "/usr/bin/google-chrome-stable"),
        ((), None),
    ],
)
def test_find_chromium(present, found):
    assert bc.find_chromium(which_of(*present)) == found


def test_preflight_names_the_install_command_for_what_is_missing():
    assert bc.preflight(which_of("chromium"), lambda: True) == "/usr/bin/chromium"
    with pytest.raises(KitError) as no_browser:
        bc.preflight(which_of(), lambda: True)
    assert "no Chromium is installed" in no_browser.value.what
    assert all(re.search(rf"\b{re.escape(name)}\b", no_browser.value.what) for name in bc.CHROMIUM_NAMES)
    assert "apt-get install chromium" in (no_browser.value.fix or "")
    with pytest.raises(KitError) as no_client:
        bc.preflight(which_of("chromium"), lambda: False)
    assert "playwright" in no_client.value.what
    assert "pip install -e '.[browser]'" in (no_client.value.fix or "")


def test_the_browser_extra_is_what_the_message_names():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("playwright") for dep in project["optional-dependencies"]["browser"])
    # The test extra (bootstrap, CI) carries it too, so --browser runs wherever the tests run.
    assert "atbb-kit[browser]" in project["optional-dependencies"]["test"]


# --- the checklist lines --browser adds ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg():
    return load_config(ROOT / "atbb.yaml", environ={})


@pytest.fixture(scope="module")
def board():
    return load_config(ROOT / "examples" / "board" / "atbb.yaml", environ={})


def test_without_browser_the_ten_lines_are_unchanged(cfg):
    assert smoke.checklist(cfg) == smoke.checklist(cfg, browser=False)
    assert len(smoke.checklist(cfg)) == 10


def test_browser_lines_come_after_the_healthcheck_and_before_the_stop(cfg, board):
    ten = smoke.checklist(cfg)
    lines = smoke.checklist(board, browser=True)
    keys = [c.key for c in lines]
    assert keys == [c.key for c in ten[:-1]] + ["chromium", "browser-1", "browser-2", "stop"]
    titles = [c.title for c in lines]
    assert titles[9:12] == [
        "headless Chromium starts",
        "/ loads in Chromium without errors",
        "/b/general loads in Chromium without errors",
    ]
    by_key = {c.key: c for c in lines}
    # Chromium only once every curl-level line of the app passed; each page only once Chromium started.
    assert set(by_key["chromium"].needs) == {"page", "routes", "healthy"}
    assert by_key["browser-1"].needs == by_key["browser-2"].needs == ("chromium",)
    assert by_key["stop"].needs == ("start",)


def test_a_failed_curl_line_skips_the_browser_but_not_the_stop(board):
    checks = smoke.checklist(board, browser=True)
    ran: list[str] = []

    def action(key):
        def run():
            ran.append(key)
            if key == "healthy":
                raise smoke.CheckFailed("unhealthy")
            return "ok"

        return run

    outcomes = smoke.run_checklist(checks, {c.key: action(c.key) for c in checks})
    status = {o.check.key: o.status for o in outcomes}
    assert status["chromium"] == status["browser-1"] == status["browser-2"] == smoke.SKIPPED
    assert status["stop"] == smoke.OK
    assert "chromium" not in ran
    assert "HEALTHCHECK turns healthy" in next(o.detail for o in outcomes if o.check.key == "chromium")


class FakeBrowser:
    def __init__(self, load: PageLoad) -> None:
        self.result = load
        self.asked: list[tuple[str, str]] = []

    def load(self, base_url, page, screenshot):
        self.asked.append((base_url, page))
        return self.result


class FakeApp:
    def __init__(self) -> None:
        self.attrs = {"State": {"Status": "running"}}

    def reload(self):
        pass


def _run(board, load: PageLoad, tmp_path) -> smoke.SmokeRun:
    stack = smoke.make_stack(None, board)
    run = smoke.SmokeRun(stack, board, "img", chromium="/usr/bin/chromium", screenshots=tmp_path)
    run.app, run.url, run.browser = FakeApp(), BASE, FakeBrowser(load)
    return run


def test_a_page_line_fails_naming_the_cause_and_lists_every_problem(board, tmp_path):
    broken = page(
        requests=(DOC, Request(JS.url, "script", 404)),
        exceptions=(PageException("TypeError", "boom"),),
    )
    run = _run(board, broken, tmp_path)
    with pytest.raises(smoke.CheckFailed) as failure:
        run.actions()["browser-1"]()
    # What blocked the code comes first: the missing script is why the next one throws.
    assert failure.value.summary == "script /assets/app.js answered 404 (and 1 more)"
    assert failure.value.reason.splitlines()[:2] == ["script /assets/app.js answered 404", "uncaught TypeError: boom"]
    assert run.browser.asked == [(BASE, "/")]


def test_a_clean_page_line_says_what_it_loaded(board, tmp_path):
    run = _run(board, page(), tmp_path)
    assert run.actions()["browser-2"]() == "200, 3 requests, loaded in 0.40 s, screenshot 02-b-general.png"
    assert run.browser.asked == [(BASE, "/b/general")]


def test_without_chromium_the_run_has_no_browser_actions(cfg):
    run = smoke.SmokeRun(smoke.make_stack(None, cfg), cfg, "img")
    assert list(run.actions()) == [c.key for c in smoke.checklist(cfg)]


# --- the task's flags ---------------------------------------------------------------------------------------


def test_browser_flags_exist():
    from atbb_kit.tasks import namespace

    names = {n for arg in namespace["smoke"].get_arguments() for n in arg.names}
    assert {"browser", "output"} <= names


def test_output_without_browser_is_refused_before_anything_runs():
    proc = run_inv("smoke", "--output", "shots", "--image", "does-not-matter:1")
    assert proc.returncode == 2
    assert "error: --output is where --browser saves its screenshots — add --browser, or drop --output" in proc.stderr


def test_browser_without_chromium_fails_with_the_install_command(tmp_path):
    # A PATH with no browser on it (the interpreter is called by its full path).
    proc = run_inv("smoke", "--browser", "--image", "does-not-matter:1", env={"PATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    what, _, fix = line.partition(" — ")
    assert re.fullmatch(r"error: --browser: no Chromium is installed \(no chromium, .* on PATH\)", what), line
    assert fix.startswith("install it: apt-get install chromium "), line


# --- inv doctor's row ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "client", "level", "says", "fix"),
    [
        ("/usr/bin/chromium", True, "ok", "/usr/bin/chromium, for inv smoke --browser", ""),
        (None, True, "warn", "not installed", "apt-get install chromium (only inv smoke --browser needs it)"),
        (None, False, "warn", "not installed", "apt-get install chromium (only inv smoke --browser needs it)"),
        ("/usr/bin/chromium", False, "warn", "playwright", "pip install -e '.[browser]'"),
    ],
)
def test_doctor_says_whether_chromium_is_there(path, client, level, says, fix):
    from atbb_kit.ops import doctor

    finding = doctor.chromium_finding(path, client)
    assert finding.check == "Chromium"
    assert finding.level.value == level  # a missing browser never fails doctor: only --browser needs it
    assert says in finding.detail
    assert finding.fix == fix
    assert "Chromium" in [c.title for c in doctor.CHECKS]
