"""Load atbb.yaml once, apply ATBB_* environment overrides and task flags, validate into frozen models.

Precedence: model default < file < environment < flag. Every leaf value remembers where it came from,
so `inv config` can say so, and every validation error names the key path (and the file line).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from atbb_kit.core import imageref, routing, safe_yaml
from atbb_kit.core.errors import ConfigError
from atbb_kit.core.imageref import shown

CONFIG_NAME = "atbb.yaml"
ENV_PREFIX = "ATBB_"
# ATBB_* variables that are not config keys: flags and credentials the kit reads elsewhere.
# ATBB_IMAGE, ATBB_HOST_PORT and ATBB_ENV_FILE are docker-compose.example.yml's own variables (and the stack's).
NON_CONFIG_ENV = frozenset(
    {
        "ATBB_DEBUG",
        "ATBB_CONFIG",
        "ATBB_REGISTRY_TOKEN",
        "ATBB_REGISTRY_USER",
        "ATBB_IMAGE",
        "ATBB_HOST_PORT",
        "ATBB_ENV_FILE",
        # docker-stack.example.yml's own (issue 20).
        "ATBB_REPLICAS",
        "ATBB_EDGE_CONF_HASH",
    }
)


# ---------------------------------------------------------------------------------------------------------
# Value types: each check raises ValueError with a message that says what a good value looks like.


def _matches(pattern: str, expected: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}, got {shown(value)}")
        return value

    return AfterValidator(check)


def _image_name(value: str) -> str:
    # With the registry (at most 100) and the owner (at most 64), the whole name stays within docker's 255.
    if len(value) > IMAGE_NAME_MAX:
        raise ValueError(f"expected at most {IMAGE_NAME_MAX} characters, got {len(value)}")
    imageref.check_path(value)  # its ValueError says what is wrong
    return value


def _image_ref(value: str) -> str:
    imageref.parse(value)  # its ValueError says what is wrong
    return value


def _registry(value: str) -> str:
    if len(value) > 100:
        raise ValueError(f"expected a registry host of at most 100 characters, got {len(value)}")
    first = value.split("/", 1)[0]
    # docker reads `name/...` as a Docker Hub account unless the first part has a dot or a port, or is
    # localhost: a registry without one would silently push to Docker Hub.
    if "/" in value or not ("." in first or ":" in first or first == "localhost"):
        raise ValueError(f"expected a registry host like ghcr.io or localhost:5000, got {shown(value)}")
    reason = imageref.problem(f"{value}/x")
    if reason:
        raise ValueError(f"expected a registry host like ghcr.io or localhost:5000, got {shown(value)}: {reason}")
    return value


def _owner(value: str) -> str:
    # Lower-cased, it is one part of the repository name: single . _ - between letters and digits.
    if value and (len(value) > 64 or imageref.problem(f"{value.lower()}/atbb")):
        raise ValueError(
            "expected a GitHub user or organisation name (letters and digits, single - . _ between them, at most "
            f"64 characters), or empty; got {shown(value)}"
        )
    return value


def _whole_number(value: Any) -> Any:
    # pydantic reads true as 1: a budget of "yes" must not become 1 MB.
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _relative_path(value: str) -> str:
    p = PurePosixPath(value)
    if not value or p.is_absolute() or ".." in p.parts:
        raise ValueError(f"expected a path relative to atbb.yaml without '..', got {value!r}")
    return value


def _url_prefix(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected a URL path starting with '/', got {value!r}")
    if any(ch.isspace() or ch in "{};\"'" for ch in value):
        raise ValueError(f"URL path {value!r} holds a character nginx cannot take (space, quote, brace, ;)")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        if "host bits set" in str(exc):
            wide = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"{shown(value)} has host bits set; write the network, {wide}") from None
        raise ValueError(f"expected an address or network like 10.0.0.0/8 or ::1, got {shown(value)}") from None


IpNetwork = Annotated[str, AfterValidator(_network)]
# The address ranges Docker, Kubernetes and a host's own proxy reach the container from.
PRIVATE_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
RelPath = Annotated[str, AfterValidator(_relative_path)]
UrlPath = Annotated[str, AfterValidator(_url_prefix)]
EnvName = Annotated[str, _matches(r"[A-Z_][A-Z0-9_]*", "an upper-case variable name like DATABASE_URL")]
Platform = Annotated[str, _matches(r"[a-z0-9]+/[a-z0-9_]+(/v[0-9]+)?", "os/arch like linux/amd64")]
IMAGE_NAME_MAX = 80
# Image references and names follow docker's own grammar (atbb_kit/core/imageref.py).
ImageName = Annotated[str, AfterValidator(_image_name)]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
Registry = Annotated[str, AfterValidator(_registry)]
Owner = Annotated[str, AfterValidator(_owner)]
SizeBudget = Annotated[int, BeforeValidator(_whole_number), Field(gt=0, le=10_000)]
Semver = Annotated[str, _matches(r"[0-9]+\.[0-9]+\.[0-9]+", "an exact version like 9.15.9")]
NodeMajor = Annotated[str, _matches(r"[0-9]{2}", "a Node.js major version like 22")]
Package = Annotated[str, _matches(r"(@[a-z0-9._-]+/)?[a-z0-9._-]+", "a package name like @atbb/appview")]
ProjectName = Annotated[str, _matches(r"[a-z0-9][a-z0-9_-]*", "lower-case letters, digits, _ and -")]


class _Strict(BaseModel):
    # Unknown keys are errors: a typo must never silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class NodeConfig(_Strict):
    version: NodeMajor = "22"
    pnpm: Semver = "9.15.9"


# Reserved words of the service table: they name the kit's own processes or placeholders.
RESERVED_SERVICE_NAMES = frozenset({"nginx", "port", "host", "migrate"})
# One name per process; used in nginx upstream names and shell variable names, so kept plain.
ServiceName = Annotated[str, _matches(r"[a-z][a-z0-9_]{0,31}", "a lower-case name like appview or web_2")]
HostName = Annotated[
    str,
    _matches(
        r"(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*",
        "a lower-case host name like forum.example.org (or *.example.org)",
    ),
]
HeaderName = Annotated[str, _matches(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", "an HTTP header name like X-Frame-Options")]


def _argument(value: str) -> str:
    if not value or any(ord(ch) < 32 for ch in value):
        raise ValueError(f"expected a non-empty argument without control characters, got {value!r}")
    return value


def _header_value(value: str) -> str:
    # The value lands inside double quotes in nginx.conf: these would end the string or be read as a
    # variable instead of failing loudly.
    bad = sorted({ch for ch in value if ch in '"\\$' or ord(ch) < 32})
    if not value.strip() or bad:
        shown = ", ".join(repr(ch) for ch in bad) or "an empty value"
        raise ValueError(f"a header value cannot hold {shown}; got {value!r}")
    return value


def _runtime_pattern(value: str) -> str:
    if any(ch.isspace() or ch in "'\"\\$`;&|<>(){}[]" for ch in value):
        raise ValueError(f"expected a path pattern without spaces, quotes or shell characters, got {value!r}")
    return _relative_path(value)


def _cwd(value: str) -> str:
    return value if value == "." else _relative_path(value)


Argument = Annotated[str, AfterValidator(_argument)]
HeaderValue = Annotated[str, AfterValidator(_header_value)]
RuntimePattern = Annotated[str, AfterValidator(_runtime_pattern)]
Cwd = Annotated[str, AfterValidator(_cwd)]
EnvValue = Annotated[str, AfterValidator(_argument)]

# {port}, {host}, {NAME.port}, {NAME.url}; {{ and }} stand for literal braces.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def placeholders(value: str) -> list[str | None]:
    """The placeholders in an env value, in order; None for a lone brace (an error to report)."""
    found: list[str | None] = []
    for m in PLACEHOLDER.finditer(value):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        found.append(m.group(1) if token.startswith("{") and token.endswith("}") else None)
    return found


_MOVED_SERVICE_KEYS = {
    "entry": "`entry` was replaced by `command`, an argument list: command: [node, {value}]",
    "static_path": "`static_path` moved to routes: add `- {{path: {value}, service: <this service>, "
    "cache: immutable}}` to routes",
}


class ServiceConfig(_Strict):
    package: Package | None = None
    command: tuple[Argument, ...] = Field(min_length=1, max_length=64)
    cwd: Cwd = "."
    port: Port | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, max_length=64)
    grace: int = Field(default=5, ge=1, le=120)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        # The first version's two-service shape: say what replaced each key instead of "unknown key".
        if isinstance(data, dict):
            for key, template in _MOVED_SERVICE_KEYS.items():
                if key in data:
                    raise ValueError(template.format(value=data[key]))
        return data

    @field_validator("env", mode="before")
    @classmethod
    def _numbers_as_text(cls, env: Any) -> Any:
        # `PORT: 3000` in YAML is a number; an environment value is always text (booleans stay errors).
        if isinstance(env, dict):
            return {k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for k, v in env.items()}
        return env


class RouteConfig(_Strict):
    path: UrlPath
    service: ServiceName
    # exact: this one path; prefix: the path and everything below it.
    match: Literal["prefix", "exact"] = "prefix"
    host: HostName | None = None
    cache: Literal["immutable"] | None = None


class CspConfig(_Strict):
    mode: Literal["enforce", "report-only", "app", "remove"] = "enforce"
    policy: HeaderValue = DEFAULT_CSP


class HealthConfig(_Strict):
    path: UrlPath = "/api/health"
    # Default: whichever service routes[] send `path` to.
    service: ServiceName | None = None
    status: int = Field(default=200, ge=100, le=599)
    body: Annotated[str, AfterValidator(_argument), Field(max_length=200)] | None = None


class MigrateConfig(_Strict):
    # Empty: the app has no migrations; `docker run IMAGE migrate` says so and exits 0.
    command: tuple[Argument, ...] = Field(default=(), max_length=64)
    cwd: Cwd = "."
    package: Package | Literal[""] = ""
    wait_timeout: int = Field(default=60, ge=1, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _old_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("entry" in data or list(data.get("command") or []) == ["migrate"]):
            entry = data.get("entry", "<your migrator script>")
            raise ValueError(
                "migrate.command is now the migration command itself (baked into the image), and "
                f"migrate.entry is gone: write command: [node, {entry}]"
            )
        return data


class BrowserSmokeConfig(_Strict):
    # Paths `inv smoke --browser` opens in headless Chromium through nginx, each judged on its console,
    # exceptions, CSP reports and subresource loads.
    pages: tuple[UrlPath, ...] = Field(default=("/",), min_length=1, max_length=32)


class SmokeConfig(_Strict):
    browser: BrowserSmokeConfig = BrowserSmokeConfig()


class RuntimeConfig(_Strict):
    include: tuple[RuntimePattern, ...] = Field(default=("*/dist",), min_length=1, max_length=64)


class NginxConfig(_Strict):
    conf: RelPath = "nginx/nginx.conf"
    worker_connections: int = Field(default=4096, ge=512, le=65536)
    client_header_timeout: int = Field(default=10, ge=1, le=300)
    client_body_timeout: int = Field(default=30, ge=1, le=600)
    send_timeout: int = Field(default=30, ge=1, le=600)
    keepalive_timeout: int = Field(default=65, ge=0, le=600)
    client_max_body_size_mb: int = Field(default=10, ge=1, le=10_000)
    requests_per_client: int = Field(default=512, ge=0, le=100_000)
    trusted_proxies: tuple[IpNetwork, ...] = Field(default=PRIVATE_NETWORKS, max_length=64)


class ImageConfig(_Strict):
    registry: Registry = "ghcr.io"
    owner: Owner = ""
    name: ImageName = "atbb"
    base: ImageRef = "node:22-alpine"
    platforms: tuple[Platform, ...] = Field(default=("linux/amd64",), min_length=1)
    size_budget_mb: SizeBudget = 250
    title: str = "atBB"
    description: str = "A forum built on the AT Protocol"
    licenses: str = "MIT"


class ReleaseConfig(_Strict):
    default_branch: Annotated[str, _matches(r"[A-Za-z0-9._/-]+", "a git branch name like main")] = "main"
    sha_length: int = Field(default=7, ge=7, le=40)


class EnvConfig(_Strict):
    required: tuple[EnvName, ...] = (
        "DATABASE_URL",
        "FORUM_DID",
        "PDS_URL",
        "OAUTH_PUBLIC_URL",
        "SESSION_SECRET",
    )
    optional: tuple[EnvName, ...] = ("JETSTREAM_URL", "SESSION_TTL_DAYS", "LOG_LEVEL")
    secret: tuple[EnvName, ...] = ("DATABASE_URL", "SESSION_SECRET")


DockerNetwork = Annotated[str, _matches(r"|[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", "a Docker network name, or empty")]


def _file_path(value: str) -> str:
    # A file the kit reads, never a build-context path, so it may sit above the config file (an example's
    # config pointing at the kit's own Compose file).
    p = PurePosixPath(value)
    if not value or p.is_absolute():
        raise ValueError(f"expected a path relative to atbb.yaml, got {value!r}")
    return value


class ComposeConfig(_Strict):
    file: Annotated[str, AfterValidator(_file_path)] = "docker-compose.example.yml"
    project: ProjectName = "atbb"
    host_port: Port = 8080
    postgres_image: ImageRef = "postgres:16-alpine"
    network: DockerNetwork = ""


# Headers nginx sets unless atbb.yaml says otherwise; listing one in `headers:` overrides its entry only.
DEFAULT_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
# Headers that only make sense as nginx or the protocol sets them; a policy for them would break responses.
UNMANAGED_HEADERS = frozenset(
    {
        "content-security-policy",
        "content-security-policy-report-only",
        "content-type",
        "content-length",
        "connection",
        "transfer-encoding",
        "upgrade",
        "keep-alive",
        "date",
        "server",
        "location",
        "set-cookie",
    }
)


class Config(_Strict):
    monorepo: Annotated[str, AfterValidator(lambda v: v if v == "." else _relative_path(v))] = "examples/forum"
    node: NodeConfig = NodeConfig()
    services: dict[ServiceName, ServiceConfig] = Field(min_length=1, max_length=16)
    routes: tuple[RouteConfig, ...] = Field(min_length=1, max_length=128)
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=lambda: dict(DEFAULT_HEADERS), max_length=32)
    csp: CspConfig = CspConfig()
    health: HealthConfig = HealthConfig()
    migrate: MigrateConfig = MigrateConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    nginx: NginxConfig = NginxConfig()
    smoke: SmokeConfig = SmokeConfig()
    image: ImageConfig = ImageConfig()
    release: ReleaseConfig = ReleaseConfig()
    env: EnvConfig = EnvConfig()
    compose: ComposeConfig = ComposeConfig()

    @model_validator(mode="before")
    @classmethod
    def _merge_default_headers(cls, data: Any) -> Any:
        # A file that tunes one header keeps the kit's defaults for the others; `app` or `remove` drops one.
        if isinstance(data, dict) and isinstance(data.get("headers"), dict):
            given = {str(k).lower() for k in data["headers"]}
            merged = {k: v for k, v in DEFAULT_HEADERS.items() if k.lower() not in given}
            data = {**data, "headers": {**merged, **data["headers"]}}
        return data

    # Cross-field rules, one small named check each; the messages name the key they blame.
    @model_validator(mode="after")
    def _service_names_are_free(self) -> Config:
        for name in self.services:
            if name in RESERVED_SERVICE_NAMES:
                raise ValueError(f"services.{name}: {name!r} is reserved by the kit; rename the service")
        return self

    @model_validator(mode="after")
    def _ports_are_distinct(self) -> Config:
        owner: dict[int, str] = {}
        for name, svc in self.services.items():
            if svc.port is None:
                continue
            if svc.port == 80:
                raise ValueError(f"services.{name}.port: 80 is nginx's port inside the image; pick another")
            if svc.port in owner:
                raise ValueError(f"services.{name}.port: {svc.port} is already services.{owner[svc.port]}.port")
            owner[svc.port] = name
        return self

    @model_validator(mode="after")
    def _env_placeholders_resolve(self) -> Config:
        for name, svc in self.services.items():
            for var, value in svc.env.items():
                for token in placeholders(value):
                    problem = self._placeholder_problem(name, svc, token)
                    if problem:
                        raise ValueError(f"services.{name}.env.{var}: {problem}")
        return self

    def _placeholder_problem(self, name: str, svc: ServiceConfig, placeholder: str | None) -> str | None:
        token = placeholder
        if token is None:
            return "a lone { or }; write {{ or }} for a literal brace"
        if token == "host":  # noqa: S105 - a placeholder name, not a credential
            return None
        if token == "port":  # noqa: S105
            return None if svc.port else f"{{port}} but services.{name} has no port"
        other, _, attr = token.partition(".")
        if attr not in ("port", "url"):
            return f"unknown placeholder {{{token}}}; expected {{port}}, {{host}}, {{NAME.port}} or {{NAME.url}}"
        if other not in self.services:
            return f"{{{token}}} names no service; known: {', '.join(self.services)}"
        if self.services[other].port is None:
            return f"{{{token}}}: services.{other} has no port"
        return None

    @model_validator(mode="after")
    def _routes_point_at_services(self) -> Config:
        seen: set[tuple[str | None, str, str]] = set()
        for i, route in enumerate(self.routes):
            if route.service not in self.services:
                known = ", ".join(self.services)
                raise ValueError(f"routes[{i}].service: unknown service {route.service!r}; expected one of {known}")
            if self.services[route.service].port is None:
                raise ValueError(f"routes[{i}].service: services.{route.service} has no port, so it cannot be routed")
            key = (route.host, route.match, route.path)
            if key in seen:
                raise ValueError(f"routes[{i}].path: {route.match} {route.path!r} is routed twice")
            seen.add(key)
        if (None, "prefix", "/") not in seen:
            raise ValueError("routes: no prefix route for '/' without host — add one so every path reaches a service")
        return self

    @model_validator(mode="after")
    def _headers_are_policies(self) -> Config:
        seen: set[str] = set()
        for name in self.headers:
            low = name.lower()
            if low in seen:
                raise ValueError(f"headers.{name}: listed twice (header names ignore case)")
            seen.add(low)
            if low in UNMANAGED_HEADERS:
                hint = "use the csp: section" if low.startswith("content-security") else "nginx or the app owns it"
                raise ValueError(f"headers.{name}: not a header the kit can set ({hint})")
        return self

    @model_validator(mode="after")
    def _health_is_routed(self) -> Config:
        routed = self.service_for(self.health.path)
        wanted = self.health.service
        if wanted is not None and wanted not in self.services:
            raise ValueError(f"health.service: unknown service {wanted!r}; expected one of {', '.join(self.services)}")
        if wanted is not None and routed != wanted:
            raise ValueError(f"health.path: {self.health.path!r} is routed to {routed}, not health.service {wanted}")
        return self

    def health_service(self) -> str:
        return self.health.service or self.service_for(self.health.path)

    def service_for(self, path: str, host: str | None = None) -> str:
        """The service nginx sends `path` (for `host`) to; see atbb_kit/core/routing.py for the rules."""
        return routing.resolve(self.routes, path, host).service

    # Set by load_config: where the values came from, not values themselves.
    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _file: Path | None = PrivateAttr(default=None)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def root(self) -> Path:
        return self._root

    def file(self) -> Path:
        return self._file or self.root() / CONFIG_NAME

    def monorepo_dir(self) -> Path:
        return (self.root() / self.monorepo).resolve()

    def nginx_conf_path(self) -> Path:
        return (self.root() / self.nginx.conf).resolve()

    def sources(self) -> dict[str, str]:
        return dict(self._sources)


# ---------------------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class _FileData:
    data: dict[str, Any]
    lines: dict[str, int]  # key path -> 1-based line in the file


def find_config(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("ATBB_CONFIG"):
        path = Path(environ["ATBB_CONFIG"])
        try:
            is_file = path.is_file()
        except OSError as exc:  # a name longer than the file system allows, or similar
            shown = str(path) if len(str(path)) <= 80 else str(path)[:77] + "..."
            raise ConfigError(
                f"ATBB_CONFIG points at {shown}, which cannot be read ({exc.strerror})", "fix the path or unset it"
            ) from None
        if not is_file:
            raise ConfigError(f"ATBB_CONFIG points at {path}, which is not a file", "fix the path or unset it")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    raise ConfigError(f"no {CONFIG_NAME} in {here} or its parents", "run from the kit's folder or set ATBB_CONFIG")


def _key_path(parent: str, key: Any) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _walk(node: yaml.Node, path: str, lines: dict[str, int], name: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = _key_path(path, key)
            if key in seen:
                raise ConfigError(
                    f"{name}:{key_node.start_mark.line + 1}: {child}: duplicate key",
                    "keep one of the two entries",
                )
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, name)


def _read_file(path: Path) -> _FileData:
    name = path.name
    try:
        with path.open("rb") as fh:
            raw = fh.read(safe_yaml.MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check the path and its permissions") from None
    if len(raw) > safe_yaml.MAX_BYTES:
        raise ConfigError(
            f"{name} is larger than {safe_yaml.MAX_BYTES // 1024} KiB (the kit's own is about 10 KiB)",
            "check that it is the kit's atbb.yaml (ATBB_CONFIG names another file)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})", "save the file as UTF-8"
        ) from None
    try:
        # Bounds first (aliases, size once expanded, nesting): PyYAML itself has none.
        safe_yaml.check(text, name)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{name}{where}: not valid YAML ({problem})", "fix the syntax at that line") from None
    except (ValueError, OverflowError) as exc:  # a scalar PyYAML cannot convert, e.g. an int of 5000 digits
        raise ConfigError(f"{name}: a value cannot be read ({str(exc)[:120]})", "shorten or quote it") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping of keys at the top level", "see the keys in the kit's atbb.yaml")
    lines: dict[str, int] = {}
    if node is not None:
        _walk(node, "", lines, name)
    return _FileData(data, lines)


def _leaf_paths(model: type[BaseModel], data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Key paths an environment variable may set, with the field's annotation."""
    for name, field in model.model_fields.items():
        path = _key_path(prefix, name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaf_paths(ann, (data or {}).get(name) or {}, path)
        elif name == "services":
            for svc, svc_data in ((data or {}).get(name) or {}).items():
                if isinstance(svc_data, dict):
                    yield from _leaf_paths(ServiceConfig, svc_data, f"{path}.{svc}")
        elif name == "routes" or getattr(ann, "__origin__", None) is dict:
            continue  # lists of mappings and free-form maps have no sensible single-variable form
        else:
            yield path, ann


def env_name(path: str) -> str:
    return ENV_PREFIX + path.upper().replace(".", "_")


def _is_sequence(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is tuple


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        nxt = data.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            data[key] = nxt
        data = nxt
    data[keys[-1]] = value


def _apply_env(data: dict[str, Any], environ: Mapping[str, str], sources: dict[str, str]) -> None:
    known = {env_name(path): (path, ann) for path, ann in _leaf_paths(Config, data)}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in NON_CONFIG_ENV:
            continue
        if var not in known:
            close = [k for k in known if k.startswith(var[: len(var) - 2])][:1]
            hint = f"did you mean {close[0]}?" if close else "unset it, or see `inv config` for the keys"
            raise ConfigError(f"{var} does not name a config key", hint)
        path, ann = known[var]
        raw = environ[var]
        value: Any = [item.strip() for item in raw.split(",") if item.strip()] if _is_sequence(ann) else raw
        _set_path(data, path, value)
        sources[path] = f"env {var}"


def _apply_flags(data: dict[str, Any], overrides: Mapping[str, Any], sources: dict[str, str]) -> None:
    for path, value in overrides.items():
        if value is None:
            continue
        _set_path(data, path, value)
        sources[path] = "flag"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for "the key itself is bad": the path already ends at it
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _key_path(out, part)
    return out


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (a typo? see the commented keys in the kit's atbb.yaml)"
    if kind == "missing":
        return "required key is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if kind in {"less_than_equal", "greater_than_equal", "greater_than", "less_than"}:
        return f"{msg[0].lower()}{msg[1:]}, got {err.get('input')!r}"
    return f"{msg[0].lower()}{msg[1:]}"


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path.rsplit("[", 1)[0]
    return path.rsplit(".", 1)[0] if "." in path else ""


def _locate(path: str, lines: Mapping[str, int], sources: Mapping[str, str], name: str) -> str:
    """Prefix naming where a bad value came from: the env variable, a flag, or the file line."""
    probe = path
    while probe:
        src = sources.get(probe)
        if src and src.startswith("env "):
            return f"{src[4:]} ({path})"
        if src == "flag":
            return f"flag ({path})"
        if probe in lines:
            return f"{name}:{lines[probe]}: {path}"
        probe = _parent(probe)
    return f"{name}: {path}" if path else name


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    environ = os.environ if environ is None else environ
    path = path or find_config(environ=environ)
    file = _read_file(path)
    data = file.data
    sources = {p: f"file {path.name}:{line}" for p, line in file.lines.items()}
    _apply_env(data, environ, sources)
    _apply_flags(data, overrides or {}, sources)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = _message(err)
            loc = _format_loc(tuple(err["loc"]))
            # Model-level checks name their own key path at the start of the message.
            if not loc and ": " in msg:
                loc, msg = msg.split(": ", 1)
            problems.append(f"{_locate(loc, file.lines, sources, path.name)}: {msg}")
        from_env = all(p.startswith(ENV_PREFIX) or p.startswith("flag") for p in problems)
        fix = (
            "correct the variable or flag, or unset it to use atbb.yaml"
            if from_env
            else f"edit {path.name} at the line shown (every key is commented in the kit's atbb.yaml)"
        )
        raise ConfigError("\n".join(problems), fix) from None
    cfg._root = path.parent.resolve()
    cfg._file = path.resolve()
    cfg._sources = sources
    return cfg


def effective_items(cfg: Config) -> list[tuple[str, Any, str]]:
    """(key path, value, source) for every leaf, in file order where possible."""
    sources = cfg.sources()
    out: list[tuple[str, Any, str]] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                visit(getattr(value, name), _key_path(path, name))
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, _key_path(path, key))
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                visit(item, f"{path}[{i}]")
        else:
            out.append((path, value, sources.get(path, "default")))

    visit(cfg, "")
    return out
