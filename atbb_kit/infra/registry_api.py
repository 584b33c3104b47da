"""Read-only queries to a registry's HTTP API (distribution spec v2): what a tag resolves to, right now.

`inv push` uses this to check, after each `docker push`, that the tag it just pushed points at the same
manifest digest as the first one. The docker client cannot answer that on 20.10 (no `buildx imagetools`,
`manifest inspect` is experimental) and `docker image inspect` only says what the local engine was told.

Why urllib and not a library: three requests (HEAD manifest, maybe a token, HEAD again) do not justify a
dependency, and the stdlib imports fast.

Decisions:
- Plain HTTP only for loopback registries (localhost, 127.0.0.0/8, ::1): Docker trusts those over HTTP
  without configuration, and a test registry on 127.0.0.1 speaks HTTP. Everything else is HTTPS with
  certificate checks. Loopback requests also bypass any HTTP(S)_PROXY, which would not reach them.
- Auth follows the `WWW-Authenticate` challenge like the docker client: Basic (a plain registry with an
  htpasswd file) or Bearer tokens from the realm (GHCR, Docker Hub). Credentials go to a token realm only
  over HTTPS or to the registry's own host, never in a URL, and never into an error message.
- The digest is the registry's `Docker-Content-Digest` header; when a registry omits it on HEAD, the
  manifest is fetched and hashed, which is what the header would have said.
- Floating tags (`latest`, `1.2`, `1`) are moved here too (`Repository.retag`): the manifest an immutable
  tag names is fetched as bytes and PUT under the floating tag, unchanged, so the floating tag gets the
  very same digest whether it is an image manifest or an OCI index (Docker 29's containerd store and
  multi-platform builds push indexes). No docker client or local image is involved.
- A write needs a token for `pull,push`: when a registry answers 401 with a challenge other than the one
  the current token came from (a pull-only token), the client asks the token service once more.
- A refusal keeps the registry's own error message (`{"errors": [{"code", "message"}]}`) in
  `RegistryError.detail`, so publish.py can say which GHCR setting is in the way.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from atbb_kit.core.errors import KitError

# Every manifest kind a push can produce: docker v2 and OCI, single image or multi-platform index.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# Docker Hub's API lives elsewhere than its name.
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


class RegistryError(KitError):
    """A registry did not answer, refused us, or answered something unexpected.

    `detail` is the registry's own explanation when it sent one (its error body's messages), for callers
    that turn known refusals into the setting to change.
    """

    detail: str = ""


@dataclass(frozen=True)
class Credentials:
    user: str
    # Kept out of repr so a traceback or a debug print cannot show it.
    password: str

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password=***)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


def is_loopback(registry: str) -> bool:
    host = split_host(registry)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host(registry: str) -> tuple[str, str]:
    """('127.0.0.1', '5000') from '127.0.0.1:5000'; IPv6 literals keep working ('[::1]:5000')."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host.lower(), rest.removeprefix(":")
    host, _, port = registry.partition(":")
    return host.lower(), port


def base_url(registry: str) -> str:
    registry = _API_HOSTS.get(registry.lower(), registry)
    return f"{'http' if is_loopback(registry) else 'https'}://{registry}"


def _opener(loopback: bool) -> urllib.request.OpenerDirector:
    # An empty ProxyHandler turns proxies off; otherwise urllib honours HTTP(S)_PROXY and NO_PROXY.
    return urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """('bearer', {'realm': ..., 'service': ..., 'scope': ...}) from a WWW-Authenticate header."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class _Client:
    def __init__(self, registry: str, credentials: Credentials | None, timeout: float) -> None:
        self.registry = registry
        self.url = base_url(registry)
        self.credentials = credentials
        self.timeout = timeout
        self.opener = _opener(is_loopback(registry))
        self.authorization: str | None = None
        self.challenge = ""

    def request(self, method: str, path: str, headers: Mapping[str, str], data: bytes | None = None):
        """(status, headers, body) of one request, following an auth challenge.

        A second, different challenge (a pull token used for a push: the scope grows to `pull,push`) is
        followed once more; the same challenge again means the credentials are not enough.
        """
        status, resp_headers, body = self._send(method, self.url + path, headers, data=data)
        challenge = resp_headers.get("WWW-Authenticate", "") if status == 401 else ""
        if status == 401 and (self.authorization is None or challenge != self.challenge):
            self.authorization = self._authorize(challenge)
            self.challenge = challenge
            rewind = getattr(data, "seek", None)
            if rewind is not None:
                rewind(0)  # a file body was read by the first attempt
            status, resp_headers, body = self._send(method, self.url + path, headers, data=data)
        return status, resp_headers, body

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], auth: str | None = None, data: bytes | None = None
    ):
        # Only http(s) URLs get here: base_url() makes them, and _token() checks the realm's scheme.
        req = urllib.request.Request(url, method=method, headers=dict(headers), data=data)  # noqa: S310
        authorization = auth or self.authorization
        if authorization:
            # Unredirected: a blob download may be redirected to a storage host, which must not get it.
            req.add_unredirected_header("Authorization", authorization)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers, resp.read() if method != "HEAD" else b""
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read() if method != "HEAD" else b""
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError(
                f"registry {self.registry} is not reachable ({_short(reason)})",
                "check image.registry (ATBB_IMAGE_REGISTRY) and that the registry is up",
            ) from None

    def _authorize(self, challenge: str) -> str:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise self._refused("needs credentials")
            return self.credentials.basic()
        if scheme == "bearer" and params.get("realm"):
            return "Bearer " + self._token(params)
        raise RegistryError(
            f"registry {self.registry} asked for an unsupported authentication ({challenge[:60] or 'none'})",
            "report it with the registry's name",
        )

    def _token(self, params: Mapping[str, str]) -> str:
        realm = params["realm"]
        parts = urllib.parse.urlsplit(realm)
        # The realm comes from the registry: a file: or ftp: URL must not make us read local files.
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(
                f"registry {self.registry} named an unusable token service ({realm[:80]})",
                "check image.registry; a registry's token realm must be an http(s) URL",
            )
        same_host = parts.netloc.lower() == urllib.parse.urlsplit(self.url).netloc.lower()
        query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
        url = realm + ("&" if "?" in realm else "?") + query if query else realm
        # Anonymous tokens are fine for public images; credentials only over TLS or to the registry itself.
        auth = self.credentials.basic() if self.credentials and (parts.scheme == "https" or same_host) else None
        status, _, body = self._send("GET", url, {"Accept": "application/json"}, auth=auth)
        if status in (401, 403):
            raise self._refused("unauthorized")
        if status != 200:
            raise RegistryError(f"registry {self.registry}'s token service answered HTTP {status}", "retry later")
        try:
            data = json.loads(body)
            return str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"registry {self.registry}'s token service sent no token", "retry later") from None

    def _refused(self, why: str) -> RegistryError:
        return RegistryError(
            f"registry {self.registry} refused the query ({why})",
            "check ATBB_REGISTRY_USER/ATBB_REGISTRY_TOKEN (the token needs read access)",
        )


def manifest_digest(
    registry: str,
    repository: str,
    reference: str,
    *,
    credentials: Credentials | None = None,
    timeout: float = 20.0,
) -> str | None:
    """The digest `repository:reference` resolves to in `registry`, or None when the tag does not exist.

    `repository` is the path inside the registry (`acme/atbb`), `reference` a tag or a digest.
    """
    return Repository(registry, repository, credentials=credentials, timeout=timeout).digest(reference)


def error_messages(body: bytes) -> str:
    """The registry's own explanation from an error body (`{"errors": [{"code", "message"}]}`), one line."""
    try:
        errors = json.loads(body or b"{}").get("errors") or []
    except (ValueError, AttributeError):
        return ""
    parts = []
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict):
            code, message = str(err.get("code") or "").lower(), str(err.get("message") or "")
            parts.append(f"{code}: {message}" if code and not message.lower().startswith(code) else message)
    return "; ".join(p for p in parts if p)[:300]


def _body_media_type(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    return str(data.get("mediaType") or "") if isinstance(data, dict) else ""


class Repository:
    """One repository of one registry, with one authenticated client for a series of requests."""

    def __init__(
        self, registry: str, repository: str, *, credentials: Credentials | None = None, timeout: float = 20.0
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.client = _Client(registry, credentials, timeout)

    def _path(self, kind: str, reference: str) -> str:
        return f"/v2/{self.repository}/{kind}/{urllib.parse.quote(reference, safe=':')}"

    def digest(self, reference: str) -> str | None:
        """What `reference` (a tag or a digest) resolves to now, or None when the tag does not exist."""
        path = self._path("manifests", reference)
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        status, resp_headers, body = self.client.request("HEAD", path, headers)
        if status == 200 and _DIGEST.fullmatch(resp_headers.get("Docker-Content-Digest", "")):
            return resp_headers["Docker-Content-Digest"]
        if status == 200:
            status, resp_headers, body = self.client.request("GET", path, headers)
            if status == 200:
                return "sha256:" + hashlib.sha256(body).hexdigest()
        if status == 404:
            return None
        raise self._failed(status, body, f"{self.repository}:{reference}", "query")

    def manifest(self, reference: str) -> tuple[str, bytes]:
        """(media type, exact bytes) of the manifest `reference` names: an image manifest or an index."""
        status, resp_headers, body = self.client.request(
            "GET", self._path("manifests", reference), {"Accept": ", ".join(MANIFEST_TYPES)}
        )
        if status == 200:
            # The type it was pushed with; the body's own mediaType when a registry sends a generic one.
            media_type = resp_headers.get("Content-Type", "").split(";")[0].strip()
            if media_type not in MANIFEST_TYPES:
                media_type = _body_media_type(body) or media_type
            return media_type, body
        if status == 404:
            raise RegistryError(
                f"registry {self.registry} has no {self.repository}:{reference}",
                "push that tag first (`inv push --only immutable`)",
            )
        raise self._failed(status, body, f"{self.repository}:{reference}", "query")

    def tags(self) -> list[str]:
        """Every tag of the repository (following `Link` pagination); [] when the repository does not exist."""
        found: list[str] = []
        path = f"/v2/{self.repository}/tags/list?n=1000"
        for _ in range(1000):
            status, resp_headers, body = self.client.request("GET", path, {"Accept": "application/json"})
            if status == 404:
                return found
            if status != 200:
                raise self._failed(status, body, f"the tags of {self.repository}", "query")
            try:
                found += [str(t) for t in json.loads(body).get("tags") or []]
            except (ValueError, AttributeError):
                raise RegistryError(f"registry {self.registry} sent an unreadable tag list", "retry later") from None
            link = _NEXT_LINK.search(resp_headers.get("Link", "") or "")
            if not link:
                return found
            nxt = urllib.parse.urlsplit(link[1])
            path = nxt.path + (f"?{nxt.query}" if nxt.query else "")
        return found

    def retag(self, source: str, tag: str) -> str:
        """Point `tag` at the manifest `source` names (same bytes, so the same digest); return that digest."""
        media_type, body = self.manifest(source)
        self._ask_for_push_scope()
        status, resp_headers, answer = self.client.request(
            "PUT", self._path("manifests", tag), {"Content-Type": media_type}, data=body
        )
        if status in (200, 201):
            digest = resp_headers.get("Docker-Content-Digest", "")
            return digest if _DIGEST.fullmatch(digest) else "sha256:" + hashlib.sha256(body).hexdigest()
        raise self._failed(status, answer, f"{self.repository}:{tag}", "write")

    # --- writing images and indexes (inv push --by-digest, inv release) -------------------------------

    def blob(self, digest: str, limit: int = 4 << 20) -> bytes:
        """A small blob (an image config) by digest, checked against that digest."""
        status, _, body = self.client.request("GET", self._path("blobs", digest), {"Accept": "*/*"})
        if status == 404:
            raise RegistryError(f"registry {self.registry} has no blob {digest} in {self.repository}",
                                "push the image again (`inv push --by-digest`)")  # fmt: skip
        if status != 200:
            raise self._failed(status, body, f"blob {digest}", "query")
        if len(body) > limit or "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise RegistryError(f"registry {self.registry} sent a blob that does not match {digest}", "retry later")
        return body

    def referrers(self, digest: str) -> list[dict] | None:
        """The OCI 1.1 referrers API's descriptors for `digest`; None when the registry has no such API."""
        status, _, body = self.client.request(
            "GET", f"/v2/{self.repository}/referrers/{digest}", {"Accept": "application/vnd.oci.image.index.v1+json"}
        )
        if status in (404, 405, 400):
            return None
        if status != 200:
            raise self._failed(status, body, f"the referrers of {digest}", "query")
        try:
            return [m for m in json.loads(body).get("manifests") or [] if isinstance(m, dict)]
        except (ValueError, AttributeError):
            return None

    def has_blob(self, digest: str) -> bool:
        status, _, body = self.client.request("HEAD", self._path("blobs", digest), {})
        if status in (200, 404):
            return status == 200
        raise self._failed(status, body, f"blob {digest}", "query")

    def put_blob(self, digest: str, size: int, data) -> None:
        """Upload one blob in a single request (POST an upload, PUT its bytes with the digest).

        `data` is bytes or a binary file object of `size` bytes (a layer can be hundreds of MB).
        """
        self._ask_for_push_scope()
        status, headers, body = self.client.request(
            "POST", f"/v2/{self.repository}/blobs/uploads/", {"Content-Length": "0"}, data=b""
        )
        if status not in (201, 202):
            raise self._failed(status, body, f"an upload to {self.repository}", "write")
        location = urllib.parse.urlsplit(headers.get("Location", ""))
        if location.netloc and location.netloc.lower() != urllib.parse.urlsplit(self.client.url).netloc.lower():
            raise RegistryError(
                f"registry {self.registry} sent an upload to another host ({location.netloc})",
                "report it with the registry's name",
            )
        query = [*urllib.parse.parse_qsl(location.query, keep_blank_values=True), ("digest", digest)]
        path = location.path + "?" + urllib.parse.urlencode(query)
        if hasattr(data, "seek"):
            data.seek(0)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        status, _, body = self.client.request("PUT", path, headers, data=data)
        if status not in (201, 204):
            raise self._failed(status, body, f"blob {digest}", "write")

    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str:
        """PUT a manifest or an index under a tag or its own digest; return the digest the registry reports.

        A registry that does not take the media type (an index on a registry without OCI support) answers
        400 MANIFEST_INVALID / UNSUPPORTED or 415: that refusal gets its own message.
        """
        return self.put_manifest_answer(reference, media_type, body)[0]

    def put_manifest_answer(self, reference: str, media_type: str, body: bytes) -> tuple[str, Mapping[str, str]]:
        """put_manifest, plus the response headers (OCI-Subject says the registry indexes referrers)."""
        self._ask_for_push_scope()
        status, resp_headers, answer = self.client.request(
            "PUT", self._path("manifests", reference), {"Content-Type": media_type}, data=body
        )
        if status in (200, 201):
            digest = resp_headers.get("Docker-Content-Digest", "")
            digest = digest if _DIGEST.fullmatch(digest) else "sha256:" + hashlib.sha256(body).hexdigest()
            return digest, resp_headers
        detail = error_messages(answer)
        if status == 415 or (status == 400 and re.search(r"manifest_invalid|unsupported", detail.lower())):
            kind = "image indexes" if "index" in media_type or "list" in media_type else "this manifest type"
            err = RegistryError(
                f"registry {self.registry} does not accept {kind} ({media_type}: HTTP {status}"
                + (f", {detail}" if detail else "")
                + ")",
                "publish to a registry that supports OCI image indexes (GHCR, Docker Hub, distribution 2.7+)",
            )
            err.detail = detail
            raise err
        raise self._failed(status, answer, f"{self.repository}:{reference}", "write")

    def _ask_for_push_scope(self) -> None:
        """Trade a pull token for a `pull,push` one before writing, the way the docker client does: some
        registries answer a write with a pull token by 403, not by a new challenge."""
        scheme, params = parse_challenge(self.client.challenge)
        if scheme != "bearer" or not params.get("realm") or not params.get("scope", "").endswith(":pull"):
            return
        params["scope"] = f"repository:{self.repository}:pull,push"
        self.client.authorization = "Bearer " + self.client._token(params)
        self.client.challenge = "Bearer " + ",".join(f'{k}="{v}"' for k, v in params.items())

    def _failed(self, status: int, body: bytes, what: str, action: str) -> RegistryError:
        detail = error_messages(body)
        if status in (401, 403):
            why = "unauthorized" if status == 401 else "denied"
            if action == "write":
                err = RegistryError(
                    f"registry {self.registry} refused to write {what} ({detail or why})",
                    "the token needs write access to the package (packages: write in GitHub Actions)",
                )
            else:
                err = self.client._refused(why)
        else:
            err = RegistryError(
                f"registry {self.registry} answered HTTP {status} for {what}" + (f" ({detail})" if detail else ""),
                "retry later, or check the registry's status page",
            )
        err.detail = detail
        return err


def split_reference(ref: str) -> tuple[str, str, str]:
    """(registry, repository, tag) of a full reference `registry/owner/name:tag`."""
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:
        raise ValueError(f"{ref!r} has no tag")
    registry, _, repository = name.partition("/")
    if not repository or not ("." in registry or ":" in registry or registry == "localhost"):
        raise ValueError(f"{ref!r} does not start with a registry host")
    return registry, repository, tag


def _short(reason: object) -> str:
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    # "[Errno 111] Connection refused" reads better as "connection refused".
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return (text[:1].lower() + text[1:])[:120]
