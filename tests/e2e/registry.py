"""A real registry for push tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1:<free port>,
with htpasswd (bcrypt) auth, plus the few helpers the push tests share (a tiny image, git repos, docker
calls with a private DOCKER_CONFIG).

Docker trusts plain HTTP on 127.0.0.0/8 without daemon configuration, so no TLS is needed. The registry
keeps its storage in a folder the test owns, so it can be stopped and started again on the same port and
storage to prove what survived a failed push.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unavailable(reason: str) -> None:
    """Fail under CI (a skipped push suite must never pass CI), skip loudly on a laptop."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: e2e tests must run, not skip; run scripts/bootstrap.sh)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/bootstrap.sh")


def free_port() -> int:
    # Bind to port 0 and let the kernel choose; the tiny window before the registry binds it is acceptable
    # for tests (a clash shows up as a registry that fails to start, with its log in the message).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """One registry process; `start()` and `stop()` may be called repeatedly (same port, same storage)."""

    def __init__(self, workdir: Path, user: str = "ci-bot", password: str | None = None) -> None:
        for tool in ("docker-registry", "htpasswd"):
            if shutil.which(tool) is None:
                unavailable(f"{tool} is not installed (Debian packages docker-registry and apache2-utils)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.user = user
        # A random password per registry: a leak check that greps for it cannot match by accident.
        self.password = password or f"pw-{uuid.uuid4().hex}"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = self.dir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.log = self.dir / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", self.user, self.password], capture_output=True, text=True, check=True
        ).stdout
        (self.dir / "htpasswd").write_text(htpasswd)
        (self.dir / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: info\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
            f"auth:\n  htpasswd:\n    realm: atbb-test\n    path: {self.dir / 'htpasswd'}\n"
        )

    def start(self, timeout: float = 20.0) -> Registry:
        if self._proc is not None:
            return self
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                ["docker-registry", "serve", str(self.dir / "config.yml")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self._proc.returncode}: {self.log.read_text()[-2000:]}")
            if self.status("/v2/", auth=False) in (200, 401):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry on {self.host} did not answer in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # The port must be closed before a test relies on "registry down".
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.status("/v2/", auth=False) is not None:
            time.sleep(0.1)

    def _request(self, method: str, path: str, auth: bool, headers: dict[str, str] | None = None):
        req = urllib.request.Request(f"http://{self.host}{path}", method=method, headers=headers or {})
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        # No proxy: an HTTP(S)_PROXY in the environment could not reach 127.0.0.1 anyway.
        return _NO_PROXY.open(req, timeout=5)

    def status(self, path: str, auth: bool = True) -> int | None:
        """HTTP status of GET path, or None when nothing listens."""
        try:
            with self._request("GET", path, auth) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def digest(self, repository: str, tag: str) -> str | None:
        """What `repository:tag` resolves to in the registry now (Docker-Content-Digest), None if absent.

        Written independently of atbb_kit.infra.registry_api so the tests do not check the kit against itself.
        """
        try:
            with self._request("HEAD", f"/v2/{repository}/manifests/{tag}", True, {"Accept": MANIFEST_TYPES}) as r:
                return r.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    # --- writing through the HTTP API, as buildx --push or a containerd-store engine would --------------

    def _send(self, method: str, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        req = urllib.request.Request(f"http://{self.host}{path}", method=method, data=data, headers=headers)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        with _NO_PROXY.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers)

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload one blob (monolithic: POST an upload, PUT it with its digest); return the digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, headers = self._send("POST", f"/v2/{repository}/blobs/uploads/", b"", {"Content-Length": "0"})
        location = headers["Location"]
        location = (
            location
            if location.startswith("/")
            else urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl()
        )
        sep = "&" if "?" in location else "?"
        self._send("PUT", f"{location}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
        return digest

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        _, headers = self._send("PUT", f"/v2/{repository}/manifests/{reference}", body, {"Content-Type": media_type})
        return headers["Docker-Content-Digest"]

    def push_oci_index(self, repository: str, tag: str, marker: str = "") -> str:
        """An OCI image index like Docker 29's containerd store or `buildx --push` publishes: a runnable
        linux/amd64 image, a linux/arm64 one, and a provenance attestation manifest. Returns its digest."""
        oci_manifest = "application/vnd.oci.image.manifest.v1+json"
        index_type = "application/vnd.oci.image.index.v1+json"
        entries = []
        for arch in ("amd64", "arm64"):
            tar_bytes = _tar({"hello.txt": f"atbb index test {arch} {marker} {uuid.uuid4()}\n".encode()})
            layer = gzip.compress(tar_bytes, mtime=0)
            config = json.dumps(
                {
                    "architecture": arch,
                    "os": "linux",
                    "config": {"Cmd": ["/hello.txt"]},
                    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
                }
            ).encode()
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": oci_manifest,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": self.put_blob(repository, config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": self.put_blob(repository, layer),
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            digest = self.put_manifest(repository, "sha256:" + hashlib.sha256(manifest).hexdigest(), oci_manifest,
                                       manifest)  # fmt: skip
            entries.append(
                {
                    "mediaType": oci_manifest,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [entries[0]]}).encode()
        empty = b"{}"
        attestation = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": oci_manifest,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": self.put_blob(repository, empty),
                    "size": len(empty),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.in-toto+json",
                        "digest": self.put_blob(repository, statement),
                        "size": len(statement),
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
                    }
                ],
            }
        ).encode()
        att_digest = self.put_manifest(
            repository, "sha256:" + hashlib.sha256(attestation).hexdigest(), oci_manifest, attestation
        )
        entries.append(
            {
                "mediaType": oci_manifest,
                "digest": att_digest,
                "size": len(attestation),
                "annotations": {
                    "vnd.docker.reference.digest": entries[0]["digest"],
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
        )
        index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries}).encode()
        return self.put_manifest(repository, tag, index_type, index)

    def content_type(self, repository: str, tag: str) -> str:
        with self._request("GET", f"/v2/{repository}/manifests/{tag}", True, {"Accept": MANIFEST_TYPES}) as r:
            return r.headers["Content-Type"]


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def docker(*args: str, config: Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the docker client with the test's own DOCKER_CONFIG, never the machine's /root/.docker."""
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    proc = subprocess.run(
        [DOCKER, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def tiny_image(ref: str, *, config: Path) -> str:
    """A few-hundred-byte image made by `docker import` (no pull is possible here; a stand-in base would
    cost a 100 MB push). Its content is unique per call, so two calls give two different digests."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"atbb push test {uuid.uuid4()}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    proc = subprocess.run(
        [DOCKER, "import", "--change", 'CMD ["/hello.txt"]', "-", ref],
        input=buf.getvalue(),
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return docker("image", "inspect", "--format", "{{.Id}}", ref, config=config).stdout.strip()


def remove_image(*refs: str, config: Path) -> None:
    docker("image", "rm", "--force", *refs, config=config, check=False)


# --- a scratch kit checkout ------------------------------------------------------------------------------

GIT_ENV = {
    # The developer's git config (signing, hooks, default branch) must not leak into these repositories.
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    env.update(GIT_ENV, GIT_CEILING_DIRECTORIES=str(repo.parent))
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def kit_repo(path: Path, tag: str | None = "v1.2.3") -> Path:
    """A git repository holding the kit's atbb.yaml and tasks.py, committed on main; with `tag`, HEAD is
    detached at that tag, the way a release is checked out.

    __pycache__ and build/ are ignored like in the real repository: invoke imports tasks.py, and the .pyc
    it writes (or the digest files `inv push --by-digest` writes) would otherwise make the tree dirty and
    `inv push` would (rightly) refuse.
    """
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "atbb.yaml", path / "atbb.yaml")
    shutil.copy(ROOT / "tasks.py", path / "tasks.py")
    (path / ".gitignore").write_text("__pycache__/\nbuild/\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "kit")
    if tag:
        # Outside Actions a branch wins over tags on the same commit; a release is built from its tag.
        git(path, "tag", tag)
        git(path, "checkout", "-q", "--detach", tag)
    return path


# --- a loopback proxy in front of the registry that can refuse chosen requests --------------------------


class FaultyProxy:
    """Forwards every request to `registry` unchanged, except those `fault(method, path, headers)` answers
    itself with (status, JSON body): an injected failure at one exact step, on a real registry."""

    def __init__(self, registry: Registry, fault) -> None:
        import http.client
        import http.server
        import threading

        upstream = registry.host
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                injected = fault(self.command, self.path, headers)
                if injected is not None:
                    status, payload = injected
                    proxy.injected.append(f"{self.command} {self.path}")
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        continue
                    self.send_header(key, value.replace(f"//{upstream}", f"//{proxy.host}"))
                self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else
                                                       int(resp.getheader("Content-Length") or 0)))  # fmt: skip
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.injected: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def registry_error(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


def arm64_image(ref: str, workdir: Path, *, config: Path) -> None:
    """A tiny image whose config says linux/arm64: BuildKit builds `FROM scratch` + COPY for another
    platform without running anything, so no emulation is involved. It cannot run here; it only has to
    be an honest arm64 image manifest for the index."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "hello.txt").write_text(f"atbb arm64 stand-in {uuid.uuid4()}\n")
    (workdir / "Dockerfile").write_text('FROM scratch\nCOPY hello.txt /hello.txt\nCMD ["/hello.txt"]\n')
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_BUILDKIT": "1"}
    proc = subprocess.run(
        ["/usr/bin/docker" if Path("/usr/bin/docker").exists() else DOCKER, "build", "-q", "--platform",
         "linux/arm64", "-t", ref, str(workdir)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    platform = docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", ref, config=config).stdout
    assert platform.strip() == "linux/arm64", platform


def get_json(registry: Registry, repository: str, reference: str, kind: str = "manifests") -> dict:
    """A manifest or blob as JSON, read independently of the kit."""
    with registry._request("GET", f"/v2/{repository}/{kind}/{reference}", True, {"Accept": MANIFEST_TYPES}) as r:
        return json.loads(r.read())


def tag_list(registry: Registry, repository: str) -> list[str]:
    """The repository's tags; [] when it has none (distribution answers 404 for a repository without tags)."""
    try:
        return list(get_json(registry, repository, "list", kind="tags").get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
