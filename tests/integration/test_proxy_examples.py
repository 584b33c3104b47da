"""The reverse-proxy examples the deployment guide shows, under the real tools: Caddy validates and adapts
docs/Caddyfile.example offline; nginx accepts docs/nginx-proxy.conf.example in a main config and proxies
through it with TLS; docs/traefik.example.yml is valid YAML, a valid Compose file, and merges with the
Compose example. Also the one nginx line the guide quotes from a runtime that refuses port 80.

Nothing here needs the network or a Docker engine. Every process runs on free loopback ports with its
state in a temporary folder, and is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, unprivileged_stdio
from tests.unit.test_docs import FOREIGN_LINES, quoted_lines

DOCS = ROOT / "docs"
CADDYFILE = DOCS / "Caddyfile.example"
NGINX_SITE = DOCS / "nginx-proxy.conf.example"
TRAEFIK = DOCS / "traefik.example.yml"
DOMAIN = "forum.example.com"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _config():
    from atbb_kit.core.config import load_config

    return load_config(path=ROOT / "atbb.yaml", environ={})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def open_tmp():
    """A scratch folder other users can traverse: nginx's workers (and the unprivileged master below) run as
    `nobody` when the tests run as root, and pytest's own tmp_path sits under a folder private to root."""
    path = Path(tempfile.mkdtemp(prefix="atbb-docs-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{tool} is not installed (scripts/bootstrap.sh installs it)", pytrace=False)
        pytest.skip(f"{tool} is not installed")
    return path


# ---------------------------------------------------------------------------------------------------------
# Caddy


def caddy_env(home: Path) -> dict[str, str]:
    """Caddy keeps its CA and certificates under XDG_DATA_HOME: a scratch folder, not the user's."""
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }


def _caddy_on_example(verb: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`caddy validate` or `caddy adapt` on docs/Caddyfile.example, offline, in a private home."""
    return subprocess.run(
        [_require("caddy"), verb, "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=caddy_env(tmp_path),
        timeout=60,
        check=False,
    )


def test_caddyfile_validates_offline(tmp_path):
    result = _caddy_on_example("validate", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_caddyfile_proxies_the_domain_to_the_host_port(tmp_path):
    result = _caddy_on_example("adapt", tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    config = json.loads(text)
    routes = config["apps"]["http"]["servers"]["srv0"]["routes"]
    assert routes[0]["match"] == [{"host": [DOMAIN]}]
    assert f'"dial":"localhost:{_config().compose.host_port}"' in text.replace(" ", "")
    assert '"Strict-Transport-Security":["max-age=31536000"]' in text.replace(" ", "")
    # tls internal as shipped; the guide says to delete it for Let's Encrypt.
    assert '"module":"internal"' in text.replace(" ", "")


# ---------------------------------------------------------------------------------------------------------
# nginx


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for DOMAIN, standing in for certbot's."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        [
            shutil.which("openssl") or "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={DOMAIN}",
            "-addext",
            f"subjectAltName=DNS:{DOMAIN}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    cert.chmod(0o644)
    key.chmod(0o644)
    return cert, key


def nginx_harness(work: Path, site: str) -> Path:
    """A main nginx.conf, like a distribution's, that includes `site` (written next to it)."""
    work.chmod(0o755)
    run = work / "run"
    run.mkdir(mode=0o777, exist_ok=True)
    run.chmod(0o777)
    (work / "site.conf").write_text(site)
    main = f"""
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {run}/client-body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {work}/site.conf;
}}
"""
    conf = work / "nginx.conf"
    conf.write_text(main)
    return conf


def site_with(tmp: Path, **ports: int) -> str:
    """The example with certbot's files replaced by a fresh certificate and, when given, the listen ports
    and the upstream port replaced by free loopback ones (the rest stays as operators get it)."""
    cert, key = make_cert(tmp)
    text = NGINX_SITE.read_text(encoding="utf-8")
    text = text.replace(f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem", str(cert))
    text = text.replace(f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem", str(key))
    if ports:
        webroot = tmp / "certbot"
        (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
        (webroot / ".well-known" / "acme-challenge" / "token").write_text("challenge-answer")
        for p in (webroot, webroot / ".well-known", webroot / ".well-known" / "acme-challenge"):
            p.chmod(0o755)
        text = text.replace("/var/www/certbot", str(webroot))
        text = text.replace("    listen [::]:80;\n", "").replace("    listen [::]:443 ssl http2;\n", "")
        text = text.replace("listen 80;", f"listen 127.0.0.1:{ports['http']};")
        text = text.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{ports['https']} ssl http2;")
        text = text.replace(f"server 127.0.0.1:{_config().compose.host_port};", f"server 127.0.0.1:{ports['app']};")
    return text


def test_nginx_site_upstream_is_the_host_port():
    text = NGINX_SITE.read_text(encoding="utf-8")
    assert f"server 127.0.0.1:{_config().compose.host_port};" in text
    assert text.count(f"server_name {DOMAIN};") == 2


def test_nginx_site_passes_nginx_t(tmp_path):
    conf = nginx_harness(tmp_path, site_with(tmp_path))
    result = subprocess.run(
        [NGINX, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class _Echo(BaseHTTPRequestHandler):
    """Stands in for the container: answers with the request line and headers it received."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with DOMAIN as the TLS server name, as a browser resolving DOMAIN here would."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"did not start: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def nginx_proxy(open_tmp):
    tmp_path = open_tmp
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    ports = {"http": _free_port(), "https": _free_port(), "app": upstream.server_port}
    conf = nginx_harness(tmp_path, site_with(tmp_path, **ports))
    log = tmp_path / "nginx.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([NGINX, "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)], stdout=out, stderr=out)
    try:
        _wait_port(ports["https"], proc, log)
        yield ports, tmp_path / "fullchain.pem"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        upstream.shutdown()


def test_nginx_site_terminates_tls_and_forwards(nginx_proxy):
    ports, cert = nginx_proxy
    context = ssl.create_default_context(cafile=str(cert))
    conn = _Pinned(DOMAIN, ports["https"], context=context, timeout=5)
    conn.request("GET", "/api/health?x=1", headers={"Host": DOMAIN})
    resp = conn.getresponse()
    seen = json.loads(resp.read())
    conn.close()
    assert resp.status == 200
    assert resp.getheader("Strict-Transport-Security") == "max-age=31536000"
    assert seen["path"] == "/api/health?x=1"
    headers = seen["headers"]
    assert headers["Host"] == DOMAIN
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-Host"] == DOMAIN
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert len(headers["X-Request-ID"]) == 32


def test_nginx_site_redirects_http_but_answers_acme(nginx_proxy):
    ports, _ = nginx_proxy
    conn = http.client.HTTPConnection("127.0.0.1", ports["http"], timeout=5)
    conn.request("GET", "/forum?page=2", headers={"Host": DOMAIN})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 301
    assert resp.getheader("Location") == f"https://{DOMAIN}/forum?page=2"
    conn.request("GET", "/.well-known/acme-challenge/token", headers={"Host": DOMAIN})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"challenge-answer")
    conn.close()


def test_guide_quotes_what_nginx_prints_when_port_80_is_refused(open_tmp):
    """The image's nginx.conf, as an unprivileged user on a host that keeps ports below 1024 privileged:
    the runtime the guide's port-80 entry is about."""
    from atbb_kit.core import nginx_conf

    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 80:
        pytest.skip("this host lets every user bind port 80, so the refusal cannot be reproduced")
    run = open_tmp / "run"
    run.mkdir(mode=0o777)
    run.chmod(0o777)
    conf = open_tmp / "nginx.conf"
    conf.write_text(nginx_conf.render(_config(), listen=80, runtime_dir=str(run)))
    conf.chmod(0o644)
    out, err = open_tmp / "stdout.log", open_tmp / "stderr.log"
    kwargs = unprivileged_stdio(out, err)
    with out.open("ab") as stdout, err.open("ab") as stderr:
        result = subprocess.run(
            [NGINX, "-e", "stderr", "-c", str(conf)], stdout=stdout, stderr=stderr, timeout=30, check=False, **kwargs
        )
    said = err.read_text()
    assert result.returncode != 0, said
    assert any(FOREIGN_LINES["nginx-bind"].fullmatch(line) for line in said.splitlines()), said
    quoted = [line for line, _ in quoted_lines() if FOREIGN_LINES["nginx-bind"].fullmatch(line)]
    assert quoted, "the guide quotes nginx's bind error"


# ---------------------------------------------------------------------------------------------------------
# Traefik


def test_traefik_example_is_clean_yaml():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-d",
            "{extends: default, rules: {line-length: {max: 120}, document-start: disable}}",
            str(TRAEFIK),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_traefik_example_is_a_valid_compose_file():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(TRAEFIK)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def traefik_labels(service: dict) -> dict[str, str]:
    labels = service["labels"]
    if isinstance(labels, dict):
        return {k: str(v) for k, v in labels.items()}
    return dict(item.split("=", 1) for item in labels)


def test_traefik_routes_the_domain_to_the_container_port():
    data = yaml.safe_load(TRAEFIK.read_text(encoding="utf-8"))
    compose = yaml.safe_load((ROOT / _config().compose.file).read_text(encoding="utf-8"))
    assert set(data["services"]) - {"traefik"} <= set(compose["services"]), "overrides only existing services"
    labels = traefik_labels(data["services"]["atbb"])
    assert labels["traefik.enable"] == "true"
    assert labels["traefik.http.routers.atbb.rule"] == f"Host(`{DOMAIN}`)"
    assert labels["traefik.http.routers.atbb.tls.certresolver"] in " ".join(data["services"]["traefik"]["command"])
    # Traefik talks to the container itself over the stack's network: nginx's port 80, not the host port.
    assert labels["traefik.http.services.atbb.loadbalancer.server.port"] == "80"


def test_traefik_example_merges_with_the_compose_example(tmp_path):
    compose = shutil.which("docker-compose")
    base = [compose] if compose else None
    if base is None and shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
        base = ["docker", "compose"] if probe.returncode == 0 else None
    if base is None:
        _require("docker-compose")
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    result = subprocess.run(
        [*base, "-f", _config().compose.file, "-f", str(TRAEFIK.relative_to(ROOT)), "-p", "atbb-docs", "config"],
        cwd=ROOT,
        env={**os.environ, "ATBB_ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    merged = yaml.safe_load(result.stdout)
    atbb = merged["services"]["atbb"]
    assert traefik_labels(atbb)["traefik.enable"] == "true"
    assert atbb["read_only"] is True  # the example's hardening survives the merge
    assert "traefik" in merged["services"]
    assert "letsencrypt" in merged["volumes"]
