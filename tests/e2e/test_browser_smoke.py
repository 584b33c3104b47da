"""`inv smoke --browser` against real images in a real Chromium: both bundled examples pass, and an image
built to break each failure class (an nginx CSP that blocks the inline scripts, a stylesheet served as
text/plain under nosniff, a script path that 404s, a page that throws on load) fails on its page's line,
naming the blocked URL or the error, and still leaves nothing behind.

The broken images are the example images plus one change (a Dockerfile FROM the built image), like
tests/e2e/test_smoke.py's. The first test drives the same recorder against a local HTTP server, without
Docker, so a Chromium or Playwright change shows up there first with a plain page to read.
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import uuid
from pathlib import Path

import pytest

from atbb_kit.core.errors import KitError
from atbb_kit.ops import browser_check, smoke
from tests.conftest import ROOT, run_inv
from tests.e2e.conftest import board_images

E2E_LABEL = {"atbb.smoke.e2e": "browser"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return browser_check.preflight()
    except KitError as exc:
        reason = f"{exc.what} — {exc.fix}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(
                f"{reason} (CI=true: browser tests must run, not skip; run scripts/bootstrap.sh)", pytrace=False
            )
        pytest.skip(reason)


# --- the recorder, against a local server (no Docker) -----------------------------------------------------

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
LOCAL = {
    "/clean": ("text/html", "<!doctype html><html><head><link rel=stylesheet href='/ok.css'></head><body>ok"
               "<script src='/ok.js'></script></body></html>", {}),
    "/csp": ("text/html", "<!doctype html><html><body><script>document.title='ran'</script></body></html>",
             {"Content-Security-Policy": "script-src 'self'"}),
    "/sniff": ("text/html", "<!doctype html><html><head><link rel=stylesheet href='/plain.css'></head><body>x"
               "</body></html>", {}),
    "/missing": ("text/html", "<!doctype html><html><body><script src='/gone.js'></script></body></html>", {}),
    "/throw": ("text/html", "<!doctype html><html><body><script>throw new TypeError('thrown on load')</script>"
               "</body></html>", {}),
    "/elsewhere": ("text/html", "<!doctype html><html><body><img src='http://192.0.2.1/a.png'></body></html>", {}),
    "/ok.css": ("text/css", "body{color:#333}", {}),
    "/ok.js": ("text/javascript", "document.body.dataset.ok = '1'", {}),
    "/plain.css": ("text/plain", "body{color:red}", {}),
}  # fmt: skip


class _Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        content_type, body, headers = LOCAL.get(self.path, ("text/plain", "not found", {}))
        self.send_response(200 if self.path in LOCAL else 404)
        for name, value in {"Content-Type": content_type, **NOSNIFF, **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


LOCAL_VERDICTS = {
    "/clean": [],
    "/csp": ["CSP script-src-elem blocked an inline script at /csp line 1"],
    "/sniff": ["stylesheet /plain.css blocked: Refused to apply style from '{base}/plain.css' because its MIME "
               "type ('text/plain') is not a supported stylesheet MIME type, and strict MIME checking is enabled."],
    "/missing": ["script /gone.js answered 404"],
    "/throw": ["uncaught TypeError: thrown on load (at /throw:1:...)"],
    "/elsewhere": [],  # another origin: a note, never a request off this machine
}  # fmt: skip


def test_the_recorder_sees_each_failure_class_in_a_real_chromium(chromium, local_server, tmp_path):
    browser = browser_check.Browser(chromium, timeout=60)
    version = browser.start()
    try:
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", version)
        for i, path in enumerate(LOCAL_VERDICTS, 1):
            shot = tmp_path / browser_check.screenshot_name(i, path)
            load = browser.load(local_server, path, shot)
            verdict = browser_check.judge(load)
            expected = [p.replace("{base}", local_server) for p in LOCAL_VERDICTS[path]]
            got = [re.sub(r":1:\d+\)$", ":1:...)", p) for p in verdict.problems]
            assert got == expected, path
            assert load.status == 200
            assert shot.read_bytes().startswith(PNG)
            if path == "/elsewhere":
                assert verdict.notes == (
                    "not requested (another origin; the smoke test stays on this machine): "
                    "image http://192.0.2.1/a.png",
                )
    finally:
        browser.close()


# --- the bundled examples pass ----------------------------------------------------------------------------


def _mine(client, run_id: str) -> list[str]:
    return smoke.make_stack(client, None, run_id=run_id).leftovers()


def _smoke(image: str, env: dict[str, str], *extra: str):
    proc = run_inv("smoke", "--image", image, "--browser", *extra, env=env, timeout=900)
    run_id = smoke.run_id_from(proc.stderr)
    assert run_id, proc.stderr[-4000:]
    return proc, run_id


def test_the_forum_passes_in_chromium(docker_client, built_image, test_images, chromium, tmp_path):
    shots = tmp_path / "shots"
    proc, run_id = _smoke(built_image, test_images, "--output", str(shots))
    assert proc.returncode == 0, proc.stderr[-4000:]
    err = proc.stderr
    assert f"screenshots go to {shots}/" in err
    assert re.search(r"^\[ 9/12\] ok\s+HEALTHCHECK turns healthy", err, re.M)
    assert re.search(
        rf"^\[10/12\] ok\s+headless Chromium starts — Chromium \d+[.\d]* \({re.escape(chromium)}\)", err, re.M
    )
    assert re.search(
        r"^\[11/12\] ok\s+/ loads in Chromium without errors — 200, \d+ requests, loaded in \d+\.\d\d s, "
        r"screenshot 01-root\.png",
        err,
        re.M,
    )
    assert re.search(r"^\[12/12\] ok\s+docker stop exits 0", err, re.M)
    assert "smoke: all 12 checks passed" in err
    assert "/ loads in Chromium without errors" in proc.stdout  # the table
    assert (shots / "01-root.png").read_bytes().startswith(PNG)
    assert _mine(docker_client, run_id) == []


def test_the_board_passes_in_chromium_with_screenshots_in_the_default_folder(
    docker_client, board_image, test_images, chromium
):
    proc, run_id = _smoke(board_image, board_images(test_images))
    folder = ROOT / "build" / "smoke" / run_id
    try:
        assert proc.returncode == 0, proc.stderr[-4000:]
        for i, page in enumerate(["/", "/b/general"], 11):
            assert re.search(
                rf"^\[{i}/13\] ok\s+{re.escape(page)} loads in Chromium without errors — 200, ", proc.stderr, re.M
            )
        assert "smoke: all 13 checks passed" in proc.stderr
        assert f"==> screenshots: build/smoke/{run_id}/" in proc.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["01-root.png", "02-b-general.png"]
        assert all(p.read_bytes().startswith(PNG) for p in folder.iterdir())
    finally:
        for p in folder.glob("*.png"):
            p.unlink()
        if folder.is_dir():
            folder.rmdir()
    assert _mine(docker_client, run_id) == []


# --- images broken on purpose -----------------------------------------------------------------------------


def _read(client, image: str, path: str) -> str:
    return client.containers.run(image, ["cat", path], remove=True, labels=E2E_LABEL).decode()


def _conf_path(client, image: str) -> str:
    env = dict(item.split("=", 1) for item in client.images.get(image).attrs["Config"]["Env"])
    return env.get("NGINX_CONF", "/etc/nginx/nginx.conf")


def _csp_without_inline(client, image: str, folder: Path) -> tuple[str, list[str]]:
    """The board's nginx CSP without 'unsafe-inline' for scripts: React Router's hydration scripts are inline."""
    conf = _conf_path(client, image)
    original = _read(client, image, conf)
    broken, count = re.subn(r"script-src 'self' 'unsafe-inline'", "script-src 'self'", original)
    assert count >= 1, "the image's nginx.conf sends no script-src 'self' 'unsafe-inline' to replace"
    (folder / "nginx.conf").write_text(broken)
    return f"FROM {image}\nCOPY nginx.conf {conf}\n", [r"CSP script-src-elem blocked an inline script at /\S* line \d+"]


def _stylesheet_as_text_plain(client, image: str, folder: Path) -> tuple[str, list[str]]:
    """The forum's /static/ answers come back as text/plain (nosniff stays on): its stylesheet is refused."""
    conf = _conf_path(client, image)
    original = _read(client, image, conf)
    patch = '\\1\n            proxy_hide_header Content-Type;\n            add_header Content-Type "text/plain" always;'
    broken, count = re.subn(r"(location /static/ \{)", patch, original)
    assert count == 1, "the image's nginx.conf has no single `location /static/` block"
    assert 'add_header X-Content-Type-Options "nosniff" always;' in broken
    (folder / "nginx.conf").write_text(broken)
    return f"FROM {image}\nCOPY nginx.conf {conf}\n", [
        r"stylesheet /static/style\.css\S* blocked: .*MIME type \('text/plain'\) is not a supported stylesheet"
    ]


def _script_404(client, image: str, folder: Path) -> tuple[str, list[str]]:
    """The board's built route module for / is gone: its <script type=module> import 404s through nginx."""
    assets = "/app/apps/web/build/client/assets"
    listing = client.containers.run(image, ["ls", assets], remove=True, labels=E2E_LABEL).decode()
    home = next(name for name in listing.split() if name.startswith("home-") and name.endswith(".js"))
    dockerfile = f"FROM {image}\nUSER 0\nRUN rm {assets}/{home}\nUSER 10001:10001\n"
    return dockerfile, [rf"script /assets/{re.escape(home)} answered 404"]


def _throws_on_load(client, image: str, folder: Path) -> tuple[str, list[str]]:
    """The forum's page starts with an inline script that throws (its CSP allows inline scripts)."""
    render = "/app/apps/web/dist/render.js"
    assert _read(client, image, render).count("<body>") == 1, f"{render} has no single <body> to patch"
    script = '<script>throw new Error("thrown on load by atbb-e2e-browser")</script>'
    dockerfile = (
        f"FROM {image}\nUSER 0\n"
        f"RUN sed -i 's|<body>|<body>{script}|' {render} && grep -qF 'atbb-e2e-browser' {render}\n"
        "USER 10001:10001\n"
    )
    return dockerfile, [r"uncaught Error: thrown on load by atbb-e2e-browser \(at /:\d+:\d+\)"]


# case -> (which example, how to break it, pages whose lines fail)
BROKEN = {
    "csp-blocks-inline-scripts": ("board", _csp_without_inline, ["/", "/b/general"]),
    "stylesheet-as-text-plain": ("forum", _stylesheet_as_text_plain, ["/"]),
    "script-404": ("board", _script_404, ["/"]),
    "throws-on-load": ("forum", _throws_on_load, ["/"]),
}


@pytest.fixture(params=sorted(BROKEN))
def broken(request, docker_client, test_images, tmp_path):
    example, make, pages = BROKEN[request.param]
    base = request.getfixturevalue("board_image" if example == "board" else "built_image")
    env = board_images(test_images) if example == "board" else test_images
    dockerfile, patterns = make(docker_client, base, tmp_path)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    tag = f"atbb-e2e-browser-broken:{request.param}-{uuid.uuid4().hex[:6]}"
    docker_client.images.build(path=str(tmp_path), tag=tag, rm=True, forcerm=True, labels=E2E_LABEL)
    yield tag, env, pages, patterns
    docker_client.images.remove(tag, force=True)


def test_a_broken_page_fails_its_line_naming_the_url_or_error(docker_client, broken, chromium, tmp_path):
    image, env, pages, patterns = broken
    proc, run_id = _smoke(image, env, "--output", str(tmp_path / "shots"))
    err = proc.stderr
    assert proc.returncode == 1, err[-4000:]
    total = int(re.findall(r"^\[\s*\d+/(\d+)\]", err, re.M)[0])
    titles = [f"{page} loads in Chromium without errors" for page in pages]
    error = next(line for line in err.splitlines() if line.startswith("error: smoke:"))
    assert error == (
        f"error: smoke: {len(pages)} of {total} checks failed: {'; '.join(titles)} — see the reason above"
    ), error
    for title in titles:
        failed = re.search(rf"^\[\s*\d+/{total}\] FAIL\s+{re.escape(title)} — (.*)$", err, re.M)
        assert failed, title
        print(failed.group(0))  # shown with -s, or beside a failure
        # The line names the cause, and the reason under it lists every problem.
        assert re.match(patterns[0], failed.group(1)), failed.group(1)
    # Every curl-level line passed, the app still stopped cleanly, and its screenshot shows what broke.
    assert re.search(r"^\[ 9/\d+\] ok\s+HEALTHCHECK turns healthy", err, re.M)
    assert re.search(rf"^\[{total}/{total}\] ok\s+docker stop exits 0", err, re.M)
    assert (tmp_path / "shots" / "01-root.png").read_bytes().startswith(PNG)
    assert _mine(docker_client, run_id) == []
