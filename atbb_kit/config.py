"""Load atbb.yaml once, apply ATBB_* environment overrides and task flags, validate into frozen models.

Precedence: model default < file < environment < flag. Every leaf value remembers where it came from,
so `inv config` can say so, and every validation error names the key path (and the file line).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from atbb_kit import imageref, safe_yaml
from atbb_kit.errors import ConfigError
from atbb_kit.imageref import shown

CONFIG_NAME = "atbb.yaml"
ENV_PREFIX = "ATBB_"
# ATBB_* variables that are not config keys: flags and credentials the kit reads elsewhere.
# ATBB_IMAGE, ATBB_HOST_PORT and ATBB_ENV_FILE are docker-compose.example.yml's own variables.
NON_CONFIG_ENV = frozenset(
    {
        "ATBB_DEBUG",
        "ATBB_CONFIG",
        "ATBB_REGISTRY_TOKEN",
        "ATBB_REGISTRY_USER",
        "ATBB_IMAGE",
        "ATBB_HOST_PORT",
        "ATBB_ENV_FILE",
    }
)


# ---------------------------------------------------------------------------------------------------------
# Value types: each check raises ValueError with a message that says what a good value looks like.


def _matches(pattern: str, expected: str):
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
RelPath = Annotated[str, AfterValidator(_relative_path)]
UrlPath = Annotated[str, AfterValidator(_url_prefix)]
EnvName = Annotated[str, _matches(r"[A-Z_][A-Z0-9_]*", "an upper-case variable name like DATABASE_URL")]
Platform = Annotated[str, _matches(r"[a-z0-9]+/[a-z0-9_]+(/v[0-9]+)?", "os/arch like linux/amd64")]
IMAGE_NAME_MAX = 80
# Image references and names follow docker's own grammar (atbb_kit/imageref.py).
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


class NodeConfig(_Strict):
    version: NodeMajor = "22"
    pnpm: Semver = "9.15.9"


class ServiceConfig(_Strict):
    package: Package
    port: Port
    entry: RelPath
    static_path: UrlPath | None = None


class RouteConfig(_Strict):
    path: UrlPath
    service: str


class HealthConfig(_Strict):
    path: UrlPath = "/api/health"


class MigrateConfig(_Strict):
    command: tuple[str, ...] = Field(default=("migrate",), min_length=1)
    entry: RelPath = "apps/appview/dist/migrate.js"
    wait_timeout: int = Field(default=60, ge=1, le=3600)


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


class ComposeConfig(_Strict):
    file: RelPath = "docker-compose.example.yml"
    project: ProjectName = "atbb"
    host_port: Port = 8080
    postgres_image: ImageRef = "postgres:16-alpine"


SERVICE_NAMES = ("appview", "web")


class Config(_Strict):
    monorepo: Annotated[str, AfterValidator(lambda v: v if v == "." else _relative_path(v))] = "examples/forum"
    node: NodeConfig = NodeConfig()
    services: dict[str, ServiceConfig]
    routes: tuple[RouteConfig, ...] = Field(min_length=1)
    health: HealthConfig = HealthConfig()
    migrate: MigrateConfig = MigrateConfig()
    image: ImageConfig = ImageConfig()
    release: ReleaseConfig = ReleaseConfig()
    env: EnvConfig = EnvConfig()
    compose: ComposeConfig = ComposeConfig()

    # Cross-field rules, one small named check each; the messages name the key they blame.
    @model_validator(mode="after")
    def _services_are_the_two(self) -> Config:
        missing = [n for n in SERVICE_NAMES if n not in self.services]
        extra = [n for n in self.services if n not in SERVICE_NAMES]
        if missing or extra:
            raise ValueError(
                "services: expected exactly appview and web"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        return self

    @model_validator(mode="after")
    def _ports_are_distinct(self) -> Config:
        ports = [s.port for s in self.services.values()]
        if len(set(ports)) != len(ports):
            raise ValueError("services: appview and web need different ports")
        for name, svc in self.services.items():
            if svc.port == 80:
                raise ValueError(f"services.{name}.port: 80 is nginx's port inside the image; pick another")
        return self

    @model_validator(mode="after")
    def _routes_point_at_services(self) -> Config:
        seen: set[str] = set()
        for i, route in enumerate(self.routes):
            if route.service not in self.services:
                raise ValueError(f"routes[{i}].service: unknown service {route.service!r}; expected appview or web")
            if route.path in seen:
                raise ValueError(f"routes[{i}].path: {route.path!r} is routed twice")
            seen.add(route.path)
        if "/" not in seen:
            raise ValueError("routes: no route for '/' — add one so every other path reaches a service")
        return self

    @model_validator(mode="after")
    def _health_reaches_appview(self) -> Config:
        if self.service_for(self.health.path) != "appview":
            raise ValueError(f"health.path: {self.health.path!r} is not routed to appview")
        return self

    def service_for(self, path: str) -> str:
        """The service nginx sends `path` to: the longest matching route prefix wins, like nginx does."""
        best = max((r for r in self.routes if path.startswith(r.path)), key=lambda r: len(r.path))
        return best.service

    # Set by load_config: where the values came from, not values themselves.
    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def root(self) -> Path:
        return self._root

    def monorepo_dir(self) -> Path:
        return (self.root() / self.monorepo).resolve()

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
        if not path.is_file():
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
        elif name == "routes":
            continue  # a list of mappings has no sensible single-variable form; edit the file
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
