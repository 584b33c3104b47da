"""`inv smoke --browser`: open the configured pages in headless Chromium through nginx and judge each load.

A page can answer 200 over curl and still be broken for every visitor: a Content-Security-Policy that
blocks the framework's inline scripts, an asset served with the wrong MIME type under `nosniff`, a script
path that 404s behind the proxy, an exception thrown on load. Only a browser sees those.

Two halves, like smoke.py:
- pure: what one page load recorded (`PageLoad`: the document's status, every request the page made and
  how it ended, console messages, uncaught exceptions, CSP violation events) goes through `judge` to a
  `Verdict` (problems fail the line, notes are shown beside it). The unit tests feed it tables of events.
- `Browser`, the thin part that drives Chromium through Playwright for Python and records those events.
  Playwright is imported only there (never at `inv --list` time), and it launches the system's Chromium
  (`executable_path`): nothing is downloaded at run time and nothing of the browser goes into the image.

Decisions:
- Chromium runs on the host and loads the app container's published port on 127.0.0.1. Requests to any
  other origin are not made (aborted before they leave the browser) and listed as notes: the smoke test
  judges what the image serves and never sends traffic off the machine.
- The browser's own favicon probe (`/favicon.ico` when the page links none) is not a request of the page:
  its 404 is ignored. A page whose `<link rel=icon>` names a missing file is not caught either (Chromium
  fetches icons outside the page, where the protocol does not report them).
- Enforced CSP violations fail; report-only ones (`csp.mode: report-only`) are notes: they block nothing.
- Each page loads in a fresh browser context, as a first-time visitor with an empty cache sees it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from atbb_kit.core.errors import KitError

# Executable names looked up on PATH, in order: Debian's package first.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_CHROMIUM = "apt-get install chromium"
INSTALL_PLAYWRIGHT = "pip install -e '.[browser]'"
# After the load event, how long to wait for the network to go quiet (500 ms without a request): fetches a
# framework makes while hydrating belong to the load. A page that never goes quiet (polling) is not failed
# for it; the judging then covers what happened within this time.
IDLE_WAIT_MS = 5_000
EXPECTED_STATUS = 200
SHOWN = 160  # longest URL or message quoted in a verdict
# JavaScript MIME types (the HTML standard's list); under nosniff Chromium executes a script only with one.
JS_MIME = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/x-ecmascript",
        "application/x-javascript",
        "text/ecmascript",
        "text/javascript",
        "text/javascript1.0",
        "text/javascript1.1",
        "text/javascript1.2",
        "text/javascript1.3",
        "text/javascript1.4",
        "text/javascript1.5",
        "text/jscript",
        "text/livescript",
        "text/x-ecmascript",
        "text/x-javascript",
    }
)
ERROR_CONSOLE_TYPES = frozenset({"error", "assert"})
# Failures that say the request was cut short by the browser, not refused: a request that already has an
# answer and then ends like this (a media range request, a navigation away) is not a broken load.
ABORTED = "net::ERR_ABORTED"
OFF_ORIGIN_FAILURE = "net::ERR_BLOCKED_BY_CLIENT"
# The part of Chromium's own CSP console messages that names the mechanism.
CSP_CONSOLE = "Content Security Policy"


# ---------------------------------------------------------------------------------------------------------
# Finding Chromium and the client library (checked before the smoke run starts anything).


def find_chromium(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The first Chromium executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = which(name)
        if found:
            return found
    return None


def missing_chromium() -> KitError:
    # One literal (the guide quotes it): tests/unit/test_browser_check.py checks it names every CHROMIUM_NAMES.
    return KitError(
        "--browser: no Chromium is installed (no chromium, chromium-browser, google-chrome or google-chrome-stable "
        "on PATH)",
        f"install it: {INSTALL_CHROMIUM} (scripts/bootstrap.sh does), or run inv smoke without --browser",
    )


def playwright_installed() -> bool:
    return find_spec("playwright") is not None


def missing_playwright() -> KitError:
    return KitError(
        "--browser: the Python package playwright (the client that drives Chromium) is not installed",
        f"install the kit's browser extra: {INSTALL_PLAYWRIGHT} (no browser download: it uses the system's Chromium)",
    )


def preflight(which: Callable[[str], str | None] = shutil.which, installed: Callable[[], bool] = playwright_installed):
    """The Chromium executable `--browser` will launch; a KitError naming the install command otherwise."""
    chromium = find_chromium(which)
    if chromium is None:
        raise missing_chromium()
    if not installed():
        raise missing_playwright()
    return chromium


# ---------------------------------------------------------------------------------------------------------
# What one page load recorded, and the verdict on it: pure.


@dataclass(frozen=True)
class Request:
    """One request the page made, as it ended: its answer (status None: none came) and/or its failure."""

    url: str
    resource_type: str
    status: int | None = None
    content_type: str = ""
    nosniff: bool = False
    failure: str | None = None


@dataclass(frozen=True)
class Console:
    type: str
    text: str
    url: str = ""  # where the message points: the failed resource, or the script that logged it


@dataclass(frozen=True)
class PageException:
    name: str
    message: str
    where: str = ""  # "URL:line:column" of the first stack frame, when the stack has one


@dataclass(frozen=True)
class CspViolation:
    """A `securitypolicyviolation` event, as the page saw it."""

    directive: str  # the effective directive, e.g. script-src-elem
    blocked: str  # the blocked URL, or "inline" / "eval" / "wasm-eval"
    source: str = ""
    line: int = 0
    disposition: str = "enforce"  # or "report" (Content-Security-Policy-Report-Only)


@dataclass(frozen=True)
class PageLoad:
    page: str  # the path from atbb.yaml
    url: str  # what the browser was sent to
    status: int | None = None  # the document's final status (after redirects); None: no answer
    final_url: str = ""
    requests: tuple[Request, ...] = ()
    console: tuple[Console, ...] = ()
    exceptions: tuple[PageException, ...] = ()
    csp: tuple[CspViolation, ...] = ()
    load_seconds: float | None = None
    error: str = ""  # the navigation itself failed (connection refused, timeout)


@dataclass(frozen=True)
class Verdict:
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def shown(url: str, origin: str) -> str:
    """A URL as a person reads it in a verdict: the path for the page's own origin, whole otherwise."""
    if _origin(url) == origin:
        parts = urlsplit(url)
        url = parts.path + (f"?{parts.query}" if parts.query else "")
    return url if len(url) <= SHOWN else url[: SHOWN - 1] + "…"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN * 2 else text[: SHOWN * 2 - 1] + "…"


def off_origin(url: str, origin: str) -> bool:
    return urlsplit(url).scheme in ("http", "https", "ws", "wss") and _origin(url) != origin


def _essence(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def mime_problem(req: Request) -> str | None:
    """Why Chromium refuses this answer under `X-Content-Type-Options: nosniff`, or None."""
    if not req.nosniff or req.status is None or not 200 <= req.status < 300:
        return None
    essence = _essence(req.content_type)
    if req.resource_type == "stylesheet" and essence != "text/css":
        return f"served as {essence or 'no content type'} under X-Content-Type-Options: nosniff (needs text/css)"
    if req.resource_type == "script" and essence not in JS_MIME:
        return (
            f"served as {essence or 'no content type'} under X-Content-Type-Options: nosniff "
            "(needs a JavaScript type such as text/javascript)"
        )
    return None


def _favicon_probe(url: str, origin: str, requested: set[str]) -> bool:
    return _origin(url) == origin and urlsplit(url).path == "/favicon.ico" and url not in requested


def _csp_problem(v: CspViolation, origin: str) -> str:
    if v.blocked in ("inline", "eval", "wasm-eval"):
        kind = "script" if v.directive.startswith("script-src") else "style" if v.directive.startswith("style") else ""
        what = {"inline": f"an inline {kind}".rstrip(), "eval": "eval()", "wasm-eval": "WebAssembly compilation"}
        at = f" at {shown(v.source, origin)}" + (f" line {v.line}" if v.line else "") if v.source else ""
        return f"CSP {v.directive} blocked {what[v.blocked]}{at}"
    return f"CSP {v.directive} blocked {shown(v.blocked, origin) or '(no URL)'}"


def judge(load: PageLoad) -> Verdict:
    """Every reason this load is broken for a visitor (problems), and what was seen but not judged (notes)."""
    if load.error:
        return Verdict((f"did not load: {_clip(load.error)}",))
    origin = _origin(load.url)
    problems: list[str] = []
    notes: list[str] = []
    # URLs a problem already names: a console message about the same URL only repeats it.
    blamed: set[str] = set()

    final = load.final_url or load.url
    if load.status != EXPECTED_STATUS:
        got = "no answer" if load.status is None else f"{load.status}"
        problems.append(f"document answered {got}, expected {EXPECTED_STATUS}")
        blamed |= {load.url, final}  # Chromium's "Failed to load resource" for it says no more
    if final != load.url:
        notes.append(f"redirected to {shown(final, origin)}")

    enforced = [v for v in load.csp if v.disposition != "report"]
    for v in _unique(enforced):
        problems.append(_csp_problem(v, origin))
        if v.blocked not in ("inline", "eval", "wasm-eval"):
            blamed.add(v.blocked)
    for v in _unique(v for v in load.csp if v.disposition == "report"):
        notes.append("report-only " + _csp_problem(v, origin).replace(" blocked ", " would block ", 1))

    requested = {r.url for r in load.requests}
    for req in load.requests:
        if urlsplit(req.url).scheme not in ("http", "https"):
            continue
        what = f"{req.resource_type} {shown(req.url, origin)}"
        if off_origin(req.url, origin):
            notes.append(f"not requested (another origin; the smoke test stays on this machine): {what}")
            blamed.add(req.url)
            continue
        if req.resource_type == "document" and req.url in (load.url, final):
            continue  # the page itself: judged by its status above
        cause = None
        if req.status is not None and req.status >= 400:
            cause = f"answered {req.status}"
        elif mime_problem(req):
            cause = f"blocked: {mime_problem(req)}"
        elif req.failure and not (req.failure == ABORTED and req.status is not None):
            why = next((c.text for c in load.console if req.url in _quoted_urls(c.text)), "")
            cause = f"blocked: {_clip(why)}" if why else f"failed: {req.failure}"
        if cause:
            problems.append(f"{what} {cause}")
            blamed.add(req.url)

    # Exceptions after what blocked the code: a blocked script is usually why the next one throws.
    for exc in load.exceptions:
        where = f" (at {shown(exc.where, origin)})" if exc.where else ""
        problems.append(_clip(f"uncaught {exc.name or 'exception'}: {exc.message}") + where)

    for msg in load.console:
        if msg.type not in ERROR_CONSOLE_TYPES:
            continue
        named = {msg.url, *_quoted_urls(msg.text)} - {""}
        if named & blamed:
            continue  # a request or CSP problem above already says it
        if CSP_CONSOLE in msg.text and load.csp:
            continue  # the violation event above says it, with its directive and place
        if msg.url and _favicon_probe(msg.url, origin, requested):
            continue
        if msg.text.startswith("Failed to load resource") and msg.url:
            problems.append(f"console error: {_clip(msg.text)} ({shown(msg.url, origin)})")
            continue
        problems.append(f"console error: {_clip(msg.text)}")
    return Verdict(tuple(_unique(problems)), tuple(_unique(notes)))


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _quoted_urls(text: str) -> list[str]:
    """URLs Chromium quotes in its console messages ('http://...' or "http://...")."""
    found = []
    for quote in ("'", '"'):
        parts = text.split(quote)
        found += [p for p in parts[1::2] if p.startswith(("http://", "https://"))]
    return found


def summary(load: PageLoad, verdict: Verdict, screenshot: str = "") -> str:
    """The table's detail for a page: status, requests, load time, the screenshot's file, notes."""
    count = sum(1 for r in load.requests if urlsplit(r.url).scheme in ("http", "https"))
    parts = [
        f"{load.status if load.status is not None else 'no answer'}",
        f"{count} request{'s' if count != 1 else ''}",
    ]
    if load.load_seconds is not None:
        parts.append(f"loaded in {load.load_seconds:.2f} s")
    if screenshot:
        parts.append(f"screenshot {screenshot}")
    detail = ", ".join(parts)
    if verdict.notes:
        detail += f"; {len(verdict.notes)} note{'s' if len(verdict.notes) != 1 else ''}: " + "; ".join(verdict.notes)
    return detail


def screenshot_name(index: int, page: str) -> str:
    """`01-root.png`, `02-b-general.png`: ordered like the checklist, readable, safe as a file name."""
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in page.strip("/")).strip("-.")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"{index:02d}-{(slug or 'root')[:60]}.png"


# ---------------------------------------------------------------------------------------------------------
# The thin part: Chromium through Playwright.


class BrowserFailed(Exception):
    """The browser could not do what was asked (not start, not navigate); `summary` for the table."""

    def __init__(self, summary: str, reason: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.reason = reason


# Reports each `securitypolicyviolation` to the binding; Playwright injects it into every document before
# the page's own scripts, outside the page's CSP.
_CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__atbbCspViolation({
    directive: e.effectiveDirective || e.violatedDirective || '',
    blocked: e.blockedURI || '',
    source: e.sourceFile || '',
    line: e.lineNumber || 0,
    disposition: e.disposition || 'enforce',
  });
});
"""
_LOAD_TIME = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return nav && nav.loadEventEnd > 0 ? nav.loadEventEnd / 1000 : null;
}"""


@dataclass
class _Recorder:
    """Collects one page's events as Playwright delivers them."""

    requests: dict[int, list[Any]] = field(default_factory=dict)  # id(request) -> [request, fields]
    console: list[Console] = field(default_factory=list)
    exceptions: list[PageException] = field(default_factory=list)
    csp: list[CspViolation] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        self.requests.setdefault(id(request), [request, {"url": request.url, "type": request.resource_type}])

    def on_response(self, response: Any) -> None:
        self.on_request(response.request)
        headers = response.headers  # lower-case names
        self.requests[id(response.request)][1].update(
            status=response.status,
            content_type=headers.get("content-type", ""),
            nosniff=headers.get("x-content-type-options", "").strip().lower() == "nosniff",
        )

    def on_failed(self, request: Any) -> None:
        self.on_request(request)
        self.requests[id(request)][1]["failure"] = request.failure or "failed"

    def on_console(self, message: Any) -> None:
        self.console.append(Console(message.type, message.text, (message.location or {}).get("url", "")))

    def on_page_error(self, error: Any) -> None:
        stack = getattr(error, "stack", "") or ""
        where = next((ln.strip()[3:].strip("()") for ln in stack.splitlines() if ln.strip().startswith("at ")), "")
        # "at fn (URL:1:2)" -> keep the location only
        if " (" in where:
            where = where.rsplit(" (", 1)[1]
        self.exceptions.append(PageException(getattr(error, "name", "") or "Error", error.message, where))

    def on_csp(self, data: dict[str, Any]) -> None:
        self.csp.append(
            CspViolation(
                str(data.get("directive", "")),
                str(data.get("blocked", "")),
                str(data.get("source", "")),
                int(data.get("line") or 0),
                str(data.get("disposition", "enforce")),
            )
        )

    def load(self, page: str, url: str, **kwargs: Any) -> PageLoad:
        requests = tuple(
            Request(
                f["url"],
                f["type"],
                f.get("status"),
                f.get("content_type", ""),
                f.get("nosniff", False),
                f.get("failure"),
            )
            for _, f in self.requests.values()
        )
        return PageLoad(
            page,
            url,
            requests=requests,
            console=tuple(self.console),
            exceptions=tuple(self.exceptions),
            csp=tuple(self.csp),
            **kwargs,
        )


class Browser:
    """One headless Chromium for the run; each `load` gets a fresh context (empty cache and storage)."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.executable = executable
        self.timeout_ms = timeout * 1000
        self._playwright: Any = None
        self._browser: Any = None
        self.version = ""

    def start(self) -> str:
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise BrowserFailed(missing_playwright().what, missing_playwright().fix or "") from None
        try:
            self._playwright = sync_playwright().start()
            # Playwright passes --no-sandbox (chromium_sandbox defaults off), which root needs, plus its
            # flags that turn off background networking, component updates and first-run screens.
            self._browser = self._playwright.chromium.launch(
                executable_path=self.executable, headless=True, timeout=self.timeout_ms
            )
        except Error as exc:
            self.close()
            raise BrowserFailed(f"{self.executable} did not start", _clip(str(exc))) from None
        self.version = self._browser.version
        return self.version

    def load(self, base_url: str, page: str, screenshot: Path | None = None) -> PageLoad:
        from playwright.sync_api import Error
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        url = base_url.rstrip("/") + page
        origin = _origin(url)
        rec = _Recorder()
        context = self._browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            context.set_default_timeout(self.timeout_ms)
            context.expose_function("__atbbCspViolation", rec.on_csp)
            context.add_init_script(_CSP_LISTENER)

            def route(r: Any) -> None:
                if off_origin(r.request.url, origin):
                    r.abort("blockedbyclient")
                else:
                    r.continue_()

            context.route("**/*", route)
            tab = context.new_page()
            tab.on("request", rec.on_request)
            tab.on("response", rec.on_response)
            tab.on("requestfailed", rec.on_failed)
            tab.on("console", rec.on_console)
            tab.on("pageerror", rec.on_page_error)
            started = time.monotonic()
            try:
                response = tab.goto(url, wait_until="load")
            except Error as exc:
                return rec.load(page, url, error=str(exc).splitlines()[0])
            wall = time.monotonic() - started
            with contextlib.suppress(PlaywrightTimeout):  # still busy (polling): judged on what it did so far
                tab.wait_for_load_state("networkidle", timeout=IDLE_WAIT_MS)
            measured = tab.evaluate(_LOAD_TIME)
            if screenshot is not None:
                tab.screenshot(path=str(screenshot), full_page=True)
            return rec.load(
                page,
                url,
                status=response.status if response is not None else None,
                final_url=tab.url,
                load_seconds=float(measured) if measured is not None else wall,
            )
        except Error as exc:
            raise BrowserFailed(f"Chromium failed on {page}: {_clip(str(exc).splitlines()[0])}", str(exc)) from None
        finally:
            with contextlib.suppress(Error):
                context.close()

    def close(self) -> None:
        """Stop Chromium and the Playwright driver; never raises (it runs during cleanup)."""
        # A driver that is already gone (Ctrl-C reaches its process group too) is the goal reached, not an
        # error; asyncio would still print its "Future exception was never retrieved" at exit.
        failed = False
        for stop in (getattr(self._browser, "close", None), getattr(self._playwright, "stop", None)):
            if stop is None:
                continue
            try:
                stop()
            except Exception:
                failed = True
        if failed:
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        self._browser = self._playwright = None
