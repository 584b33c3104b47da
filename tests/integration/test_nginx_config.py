"""The generated nginx config under a real nginx: routing, proxy headers, security headers, gzip, caching
and JSON access logs, against small Python upstreams on loopback.

nginx runs the way the image runs it: master as a non-root user (nobody, when the tests run as root),
no `user` directive, every writable path in one directory. Only the listen port, the upstream ports and
that directory differ from the committed file, and they come from the same render().
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from atbb_kit.core import nginx_conf
from atbb_kit.core.config import Config
from tests.conftest import NOBODY, ROOT, unprivileged_stdio

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CSS = "body { color: #333; }\n" * 40
TEXT = "atBB says hello. " * 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Upstream(BaseHTTPRequestHandler):
    """Echoes what nginx sent, with a few paths that trigger the behaviours under test."""

    protocol_version = "HTTP/1.1"  # keepalive from nginx needs HTTP/1.1 with Content-Length
    service = "?"
    seen: list

    def do_GET(self):
        self.seen.append({"path": self.path, "headers": dict(self.headers.items())})
        status, ctype, body, extra = 200, "application/json", None, {}
        if self.path.endswith("/slow"):
            time.sleep(1.5)
        if self.path.endswith("/nope"):
            status, body = 404, json.dumps({"error": "not found"})
        elif self.path.startswith("/static/") and self.path.endswith(".css"):
            ctype, body, extra = "text/css", CSS, {"Cache-Control": "no-cache"}
        elif self.path.endswith("/text"):
            ctype, body = "text/plain", TEXT
        elif self.path.endswith("/leaky"):
            extra = {"X-Powered-By": "Hono", "Content-Security-Policy": "default-src *"}
        if body is None:
            body = json.dumps({"service": self.service, "path": self.path, "headers": dict(self.headers.items())})
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _serve(name: str):
    seen: list = []
    handler = type(f"{name}Handler", (_Upstream,), {"service": name, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def _launch_nginx(cfg, workdir: Path) -> NS:
    """Render `cfg` for an unprivileged run in `workdir` and start nginx the way the entrypoint does."""
    listen = _free_port()
    workdir.chmod(0o755)
    runtime = workdir / "run"
    runtime.mkdir(mode=0o777)
    runtime.chmod(0o777)
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_conf.render(cfg, listen=listen, runtime_dir=str(runtime)))
    conf.chmod(0o644)
    log_path = workdir / "stdout.log"
    err_path = workdir / "stderr.log"
    # The image runs nginx's master as a non-root user; so do we.
    kwargs = unprivileged_stdio(log_path, err_path)
    with open(log_path, "ab") as out, open(err_path, "ab") as err:
        proc = subprocess.Popen([NGINX, "-e", "stderr", "-c", str(conf)], stdout=out, stderr=err, cwd=workdir, **kwargs)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), timeout=0.2):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"nginx did not start: {err_path.read_text()}")
        time.sleep(0.05)
    return NS(port=listen, proc=proc, log=log_path, err=err_path, runtime=runtime)


def _cfg(appview_port: int, web_port: int, **extra_services):
    """A real, validated Config: the renderer and the routing rules see what atbb.yaml would give them."""
    routes = [
        {"path": "/api/", "service": "appview"},
        {"path": "/static/", "service": "web", "cache": "immutable"},
        {"path": "/", "service": "web"},
    ]
    services = {
        "appview": {"command": ["node", "a.js"], "port": appview_port},
        "web": {"command": ["node", "w.js"], "port": web_port},
    }
    for name, port in extra_services.items():
        routes.append({"path": f"/{name}/", "service": name})
        services[name] = {"command": ["node", f"{name}.js"], "port": port}
    return Config.model_validate({"services": services, "routes": routes, "health": {"path": "/api/health"}})


@pytest.fixture(scope="module")
def stack():
    appview, appview_seen = _serve("appview")
    web, web_seen = _serve("web")
    workdir = Path(tempfile.mkdtemp(prefix="atbb-nginx-"))
    # /down/ points at a port nothing listens on: nginx must answer 502 itself.
    cfg = _cfg(appview.server_port, web.server_port, down=_free_port())
    running = _launch_nginx(cfg, workdir)
    running.appview_seen = appview_seen
    running.web_seen = web_seen
    yield running
    running.proc.terminate()
    running.proc.wait(timeout=10)
    appview.shutdown()
    web.shutdown()
    shutil.rmtree(workdir, ignore_errors=True)


def request(stack, path, method="GET", headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def echoed(body: bytes) -> dict:
    return json.loads(body)


def test_committed_config_passes_nginx_t():
    # nginx -t opens the pid file and creates the temp dirs it names; clean up only what it created.
    before = {p for p in Path("/tmp").iterdir() if p.name.startswith("nginx")}
    result = subprocess.run(
        [NGINX, "-t", "-e", "stderr", "-c", str(ROOT / "nginx" / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    for p in {p for p in Path("/tmp").iterdir() if p.name.startswith("nginx")} - before:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_master_runs_unprivileged_and_writes_only_the_runtime_dir(stack):
    status = Path(f"/proc/{stack.proc.pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    if os.geteuid() == 0:
        assert uid == str(NOBODY)
    names = {p.name for p in stack.runtime.iterdir()}
    assert {"nginx.pid", "nginx-client-body", "nginx-proxy"} <= names
    assert (stack.runtime / "nginx.pid").read_text().strip() == str(stack.proc.pid)


def test_api_prefix_reaches_appview(stack):
    resp, body = request(stack, "/api/x?y=1")
    assert resp.status == 200
    assert echoed(body)["service"] == "appview"
    assert echoed(body)["path"] == "/api/x?y=1"


@pytest.mark.parametrize("path", ["/", "/anything", "/forum/general/1", "/apix"])
def test_everything_else_reaches_web(stack, path):
    resp, body = request(stack, path)
    assert resp.status == 200
    assert echoed(body)["service"] == "web"
    assert echoed(body)["path"] == path


def test_bare_api_redirects_relatively(stack):
    resp, _ = request(stack, "/api")
    assert resp.status == 301
    # Relative: an absolute http://host:80/api/ would be wrong behind a TLS proxy.
    assert resp.getheader("Location") == "/api/"


def test_forwarding_headers_when_reached_directly(stack):
    _resp, body = request(stack, "/api/h", headers={"Host": "forum.example:8080"})
    headers = echoed(body)["headers"]
    assert headers["Host"] == "forum.example:8080"
    assert headers["X-Forwarded-Host"] == "forum.example:8080"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Real-IP"] == "127.0.0.1"
    assert len(headers["X-Request-ID"]) == 32
    # Keepalive to the upstream: nginx must not ask it to close the connection.
    assert headers.get("Connection", "").lower() != "close"


def test_forwarding_headers_behind_a_tls_proxy(stack):
    _resp, body = request(
        stack,
        "/",
        headers={
            "Host": "forum.example",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "forum.example",
            "X-Request-ID": "abc123",
        },
    )
    headers = echoed(body)["headers"]
    # The chain keeps the hop that connected; X-Real-IP is the visitor, because loopback is a trusted proxy.
    assert headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert headers["X-Real-IP"] == "203.0.113.7"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-Host"] == "forum.example"
    assert headers["X-Request-ID"] == "abc123"


def test_websocket_upgrade_is_passed_through(stack):
    _resp, body = request(stack, "/api/live", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    headers = echoed(body)["headers"]
    assert headers["Upgrade"] == "websocket"
    assert headers["Connection"].lower() == "upgrade"


SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 200), ("/api/x", 200), ("/api/nope", 404), ("/static/app.css", 200), ("/down/x", 502)],
)
def test_security_headers_on_every_response(stack, path, status):
    resp, _ = request(stack, path)
    assert resp.status == status
    for name, value in SECURITY.items():
        assert resp.getheader(name) == value, name
    csp = resp.getheader("Content-Security-Policy")
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "camera=()" in resp.getheader("Permissions-Policy")
    assert resp.getheader("Server") == "nginx"  # server_tokens off: no version


def test_upstream_copies_of_managed_headers_are_replaced(stack):
    resp, _ = request(stack, "/leaky")
    assert resp.getheader("X-Powered-By") is None
    csps = [v for k, v in resp.getheaders() if k.lower() == "content-security-policy"]
    assert len(csps) == 1
    assert "default-src 'self'" in csps[0]


def test_404_from_appview_stays_json(stack):
    resp, body = request(stack, "/api/nope")
    assert resp.status == 404
    assert resp.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {"error": "not found"}


def test_gzip_for_text_when_asked(stack):
    resp, body = request(stack, "/text", headers={"Accept-Encoding": "gzip"})
    assert resp.getheader("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in resp.getheader("Vary")
    assert gzip.decompress(body).decode() == TEXT
    plain, body = request(stack, "/text")
    assert plain.getheader("Content-Encoding") is None
    assert body.decode() == TEXT


def test_gzip_also_behind_a_proxy(stack):
    resp, _ = request(stack, "/text", headers={"Accept-Encoding": "gzip", "Via": "1.1 caddy"})
    assert resp.getheader("Content-Encoding") == "gzip"


def test_static_path_gets_long_cache_instead_of_upstream_cache_control(stack):
    resp, body = request(stack, "/static/app.css", headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    assert resp.getheader("Cache-Control") == nginx_conf.STATIC_CACHE_CONTROL
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body).decode() == CSS


def test_static_errors_are_not_cached_long(stack):
    resp, _ = request(stack, "/static/nope")
    assert resp.status == 404
    assert "max-age=31536000" not in (resp.getheader("Cache-Control") or "")


def test_pages_get_no_long_cache(stack):
    resp, _ = request(stack, "/")
    assert resp.getheader("Cache-Control") is None


def test_oversized_body_is_refused_before_upload(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    try:
        conn.putrequest("POST", "/api/upload")
        conn.putheader("Content-Length", str(11 * 1024 * 1024))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413
        assert resp.getheader("X-Content-Type-Options") == "nosniff"
    finally:
        conn.close()


def _log_lines(stack) -> list[dict]:
    return [json.loads(line) for line in stack.log.read_text().splitlines() if line.strip()]


def test_access_log_is_json_lines(stack):
    marker = "/api/log-me?q=%22quoted%22"
    request(stack, marker, headers={"User-Agent": 'evil "agent"\\', "X-Forwarded-For": "198.51.100.1"})
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        entries = [e for e in _log_lines(stack) if e["uri"] == marker]
        if entries:
            break
        time.sleep(0.05)
    entry = entries[-1]
    assert entry["source"] == "nginx"
    assert entry["status"] == 200
    assert entry["method"] == "GET"
    assert entry["user_agent"] == 'evil "agent"\\'
    assert entry["x_forwarded_for"] == "198.51.100.1"
    # nginx.trusted_proxies holds loopback: the log (and the per-client limit) see the visitor's address.
    assert entry["remote_addr"] == "198.51.100.1"
    assert entry["upstream_status"] == "200"
    assert isinstance(entry["request_time"], float | int)
    assert entry["time"].startswith("20")


def test_local_health_probe_is_not_logged_but_other_requests_are(stack):
    request(stack, "/api/health")
    request(stack, "/api/health?from=probe")
    time.sleep(0.3)
    uris = [e["uri"] for e in _log_lines(stack)]
    assert "/api/health" not in uris
    assert "/api/health?from=probe" in uris
    assert any(seen["path"] == "/api/health" for seen in stack.appview_seen)


def test_errors_go_to_stderr_not_files(stack):
    request(stack, "/down/x")
    time.sleep(0.3)
    assert "connect() failed" in stack.err.read_text()


def test_quit_lets_in_flight_requests_finish_and_refuses_new_ones():
    # What the supervisor relies on when it stops nginx first with SIGQUIT.
    appview, _ = _serve("appview")
    web, _ = _serve("web")
    # Not tmp_path: pytest's base directory is private to root, and nginx runs as nobody.
    workdir = Path(tempfile.mkdtemp(prefix="atbb-nginx-quit-"))
    running = _launch_nginx(_cfg(appview.server_port, web.server_port), workdir)
    result: dict = {}

    def slow_request():
        resp, body = request(running, "/api/slow")
        result.update(status=resp.status, body=echoed(body))

    try:
        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.4)  # the request is now waiting on the upstream
        running.proc.send_signal(signal.SIGQUIT)
        time.sleep(0.3)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
        worker.join(timeout=10)
        assert result["status"] == 200
        assert result["body"]["service"] == "appview"
        assert running.proc.wait(timeout=10) == 0
    finally:
        if running.proc.poll() is None:
            running.proc.kill()
        appview.shutdown()
        web.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
