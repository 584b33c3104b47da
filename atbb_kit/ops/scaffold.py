"""`inv init`: a first atbb.yaml for an existing pnpm workspace, drafted from its files alone.

It reads the root package.json (`packageManager`, `engines.node`, `name`), pnpm-workspace.yaml's globs,
each workspace package's package.json (`name`, `scripts`, `main`, `files`, dependencies) and the source
files of the packages that become services (which environment variables they read, the port they
default to, a health route). Every guess is said as a note, and the notes are also written as
`# check:` comments next to the key they concern. Nothing here writes a file or starts a process: the
task prints or writes what `propose` returns.

Rules, each small and named below:
- A service per app package: one with a `start` script, or with a `main` that no other workspace package
  depends on. Its command is the start script split into an argv without a shell; a script that chains
  commands, pipes, redirects, expands variables or sets environment variables is refused (the service is
  written commented out, with the reason). `cwd` is the package folder, where `pnpm start` runs it.
- Ports: a `--port N` in the command, a framework's default (react-router-serve and next: 3000, from
  PORT), a `PORT ?? N` default in the sources, else a free one when the sources read PORT or a *_PORT
  variable; none otherwise (a worker).
- Environment: a *_PORT variable the sources read becomes `{port}`; a *_URL or *_PORT variable whose name
  holds another service's name becomes `{NAME.url}` or `{NAME.port}`.
- Routes: /api/ to an api-ish package (name ending in api, appview, server, backend) when there is a
  web-ish one (a web framework dependency, or a name ending in web, www, site, frontend, ui, client), and
  / to the web-ish one; the framework's hashed asset folder gets long-lived caching.
- runtime.include: */dist, the output folders the build scripts name, and the `files` entries of
  package.json that exist in the sources (data read at run time).
- migrate: a db:migrate or migrate script; when its tool is a devDependency (drizzle-kit), that package
  is migrate.package, deployed with all its dependencies.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from atbb_kit.core import imageref
from atbb_kit.core.config import DEFAULT_CSP, DEFAULT_HEADERS, load_config
from atbb_kit.core.errors import KitError

CONFIG_NAME = "atbb.yaml"
WORKSPACE_FILE = "pnpm-workspace.yaml"
DEFAULT_NODE = "22"
DEFAULT_PNPM = "9.15.9"
FIRST_FREE_PORT = 3000
MAX_PACKAGES = 200
# Sources read per package: enough for the files an app's entry and config live in, bounded for monorepos
# that vendor large generated files.
MAX_SOURCE_FILE = 512 * 1024
MAX_SOURCE_TOTAL = 8 * 1024 * 1024
SOURCE_SUFFIXES = frozenset({".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"})
SKIP_DIRS = frozenset(
    {
        "node_modules",
        "dist",
        "build",
        ".next",
        ".output",
        ".turbo",
        ".react-router",
        ".git",
        "coverage",
        "test",
        "tests",
        "__tests__",
        "public",
    }
)
# Names the shell or a launcher reads, not the app's configuration.
IGNORED_ENV = frozenset({"PORT", "HOST", "HOSTNAME", "NODE_ENV", "TZ", "PATH", "HOME", "CI", "DEBUG"})
API_SUFFIXES = ("api", "appview", "server", "backend")
WEB_SUFFIXES = ("web", "www", "site", "frontend", "ui", "client")
WEB_FRAMEWORKS = frozenset(
    {"next", "react-router", "@react-router/serve", "@react-router/dev", "@remix-run/serve", "nuxt", "astro"}
)
RESERVED_SERVICE_NAMES = frozenset({"nginx", "port", "host", "migrate"})
MIGRATE_SCRIPTS = ("db:migrate", "migrate", "db:migrate:deploy", "migrate:deploy")
SECRET_HINTS = ("SECRET", "PASSWORD", "TOKEN", "PRIVATE_KEY", "API_KEY", "DATABASE_URL")


# ---------------------------------------------------------------------------------------------------------
# Commands: a package.json script as an argv, or why not


_OPERATOR_CHARS = ";&|<>()"
_OPERATORS = {
    "&&": "chains commands (&&)",
    "||": "chains commands (||)",
    ";": "chains commands (;)",
    "|": "pipes its output (|)",
    "&": "runs a command in the background (&)",
    ">": "redirects output (>)",
    ">>": "redirects output (>>)",
    "<": "redirects input (<)",
    "(": "uses a subshell",
    ")": "uses a subshell",
}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def split_script(script: str) -> tuple[list[str] | None, str | None]:
    """The argv a package.json script runs, or (None, why it needs a shell): the kit runs commands without
    one, so anything a shell would interpret is refused rather than guessed."""
    if "$" in script or "`" in script:
        return None, "expands a variable or a command ($ or `)"
    if "\n" in script:
        return None, "spans several lines"
    lexer = shlex.shlex(script, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        return None, "has an unclosed quote"
    for token in tokens:
        if token and all(ch in _OPERATOR_CHARS for ch in token):
            return None, _OPERATORS.get(token, f"uses the shell operator {token}")
    if not tokens:
        return None, "is empty"
    if _ASSIGNMENT.match(tokens[0]):
        return None, f"sets an environment variable ({tokens[0]})"
    if tokens[0] in ("cross-env", "env", "dotenv"):
        return None, f"sets environment variables through {tokens[0]}"
    return tokens, None


def _resolve_script(pkg: Package, script: str, depth: int = 0) -> tuple[list[str] | None, str | None]:
    """split_script, following `pnpm run X` / `npm run X` / `pnpm exec T` inside the same package."""
    if depth > 3:
        return None, "runs scripts that run each other more than three deep"
    argv, why = split_script(script)
    if argv is None:
        return None, why
    head = argv[0]
    if head in ("pnpm", "npm", "yarn"):
        rest = argv[1:]
        if rest and rest[0] in ("exec", "x") and head == "pnpm" and len(rest) > 1:
            return rest[1:], None
        if rest and rest[0] == "run":
            rest = rest[1:]
        elif head == "npm" and rest[:1] != ["start"]:
            return None, f"runs `{' '.join(argv)}`"
        if rest and rest[0] in pkg.scripts:
            inner, why = _resolve_script(pkg, pkg.scripts[rest[0]], depth + 1)
            return (None, why) if inner is None else ([*inner, *rest[1:]], None)
        return None, f"runs `{' '.join(argv)}`, which is not a script of this package"
    if head in ("npx", "pnpx"):
        return None, f"runs {head}, which may download the tool at start"
    return argv, None


# ---------------------------------------------------------------------------------------------------------
# Reading the workspace


@dataclass
class Package:
    dir: str  # posix path relative to the workspace root ("." for the root)
    data: dict[str, Any]

    @property
    def name(self) -> str:
        value = self.data.get("name")
        return value if isinstance(value, str) else ""

    @property
    def scripts(self) -> dict[str, str]:
        value = self.data.get("scripts")
        return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}

    def deps(self, *kinds: str) -> set[str]:
        found: set[str] = set()
        for kind in kinds or ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
            value = self.data.get(kind)
            if isinstance(value, dict):
                found.update(str(k) for k in value)
        return found

    @property
    def files(self) -> list[str]:
        value = self.data.get("files")
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    @property
    def main(self) -> str | None:
        value = self.data.get("main")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def label(self) -> str:
        return self.name or self.dir


def _read_json(path: Path, root: Path) -> dict[str, Any]:
    rel = path.relative_to(root).as_posix()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KitError(f"cannot read {rel}: {exc.strerror}", "check the file and its permissions") from None
    except (UnicodeDecodeError, ValueError) as exc:
        line = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise KitError(f"{rel}{line}: not valid JSON", "fix the file (pnpm would refuse it too)") from None
    if not isinstance(data, dict):
        raise KitError(f"{rel}: expected a JSON object", "fix the file (pnpm would refuse it too)")
    return data


def _workspace_globs(root: Path) -> list[str]:
    path = root / WORKSPACE_FILE
    if not path.is_file():
        raise KitError(
            f"no {WORKSPACE_FILE} in {root}: inv init drafts atbb.yaml for a pnpm workspace",
            "run it in the app's root folder or pass --monorepo PATH (a single-package app needs a "
            f"{WORKSPACE_FILE} listing its folders first)",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise KitError(f"{WORKSPACE_FILE}{where}: cannot be read as YAML", "fix the file (pnpm reads it too)") from None
    globs = data.get("packages") if isinstance(data, dict) else None
    if not isinstance(globs, list) or not all(isinstance(g, str) for g in globs) or not globs:
        raise KitError(
            f"{WORKSPACE_FILE} lists no packages (a `packages:` list of folder globs)",
            'add e.g. packages: ["apps/*", "packages/*"]',
        )
    return globs


def _glob_matches(rel: str, pattern: str) -> bool:
    # pnpm's globs: `*` within one folder, `**` across folders.
    regex = re.escape(pattern.strip("/")).replace(r"\*\*", "\x00").replace(r"\*", "[^/]*").replace("\x00", ".*")
    return re.fullmatch(regex, rel) is not None


def _workspace_packages(root: Path, globs: Sequence[str], notes: Notes) -> list[Package]:
    include = [g.strip().removeprefix("./") for g in globs if not g.strip().startswith("!")]
    exclude = [g.strip()[1:].removeprefix("./") for g in globs if g.strip().startswith("!")]
    found: dict[str, Package] = {}
    for pattern in include:
        if not pattern or pattern.startswith("/") or ".." in PurePosixPath(pattern).parts:
            notes.add("workspace", f"{WORKSPACE_FILE}: skipped the glob {pattern!r} (outside the workspace)")
            continue
        for manifest in sorted(root.glob(f"{pattern.rstrip('/')}/package.json")):
            folder = manifest.parent
            rel = folder.relative_to(root).as_posix()
            if rel == "." or "node_modules" in folder.relative_to(root).parts or rel in found:
                continue
            if any(_glob_matches(rel, ex) for ex in exclude):
                continue
            if len(found) >= MAX_PACKAGES:
                notes.add("workspace", f"more than {MAX_PACKAGES} packages: only the first {MAX_PACKAGES} were read")
                break
            try:
                found[rel] = Package(rel, _read_json(manifest, root))
            except KitError as exc:
                notes.add("workspace", f"{exc.what}: package skipped")
    return sorted(found.values(), key=lambda p: p.dir)


# ---------------------------------------------------------------------------------------------------------
# Sources: what a package reads from its environment


_ENV_READ = re.compile(r"\benv(?:\.|\[\s*['\"])([A-Z][A-Z0-9_]*)\b")
_QUOTED_NAME = re.compile(r"['\"]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['\"]")
_PORT_DEFAULT = re.compile(r"\b((?:[A-Z][A-Z0-9]*_)*PORT)\b['\"]?\]?\s*\)?\s*(?:\?\?|\|\|)\s*['\"]?(\d{2,5})\b")
_HEALTH_PATH = re.compile(r"""(['"`])(/(?:[\w.-]+/)*[\w.-]*health[\w.-]*)\1""")


@dataclass
class Sources:
    reads: set[str] = field(default_factory=set)
    port_defaults: dict[str, int] = field(default_factory=dict)
    health_paths: list[tuple[str, str]] = field(default_factory=list)  # (path, file)
    api_paths: bool = False  # some literal starts with /api/
    required: set[str] = field(default_factory=set)  # in a `required: [...]` list or a "NAME is not set" message


def _source_files(folder: Path) -> Iterable[Path]:
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(current) / name
            if path.suffix in SOURCE_SUFFIXES and not re.search(r"\.(test|spec)\.|\.d\.[mc]?ts$", name):
                yield path


def read_sources(folder: Path) -> Sources:
    out = Sources()
    total = 0
    quoted: set[str] = set()
    texts: list[str] = []
    for path in _source_files(folder):
        try:
            size = path.stat().st_size
            if size > MAX_SOURCE_FILE or total + size > MAX_SOURCE_TOTAL:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        total += size
        texts.append(text)
        out.reads.update(_ENV_READ.findall(text))
        names = _QUOTED_NAME.findall(text)
        # Quoted names in a file that reads the environment by a computed key (env[name]) are variables.
        (out.reads if re.search(r"\benv\[\s*[A-Za-z_]", text) else quoted).update(names)
        for var, port in _PORT_DEFAULT.findall(text):
            out.port_defaults.setdefault(var, int(port))
        for _, found in _HEALTH_PATH.findall(text):
            out.health_paths.append((found, path.relative_to(folder).as_posix()))
        out.api_paths = out.api_paths or bool(re.search(r"""['"`]/api(/|['"`])""", text))
        for listed in re.findall(r"\brequired\s*:\s*\[([^\]]*)\]", text):
            out.required.update(_QUOTED_NAME.findall(listed) + re.findall(r"['\"]([A-Z][A-Z0-9]*)['\"]", listed))
        out.required.update(re.findall(r"['\"`]([A-Z][A-Z0-9_]*) (?:is not set|is required|must be set)\b", text))
    # Elsewhere a quoted NAME_WITH_UNDERSCORES is a variable when it is also read as a property
    # (config.NAME), as config helpers that take a list of names do; else it is more likely a constant.
    joined = "\n".join(texts)
    out.reads.update(n for n in quoted if re.search(rf"\.{n}\b", joined))
    out.reads.update(var for var in out.port_defaults)
    return out


# ---------------------------------------------------------------------------------------------------------
# Notes: what the user must check, each attached to the key it concerns


@dataclass
class Notes:
    items: list[tuple[str, str]] = field(default_factory=list)  # (section, text)

    def add(self, section: str, text: str) -> None:
        if (section, text) not in self.items:
            self.items.append((section, text))

    def of(self, section: str) -> list[str]:
        return [text for s, text in self.items if s == section]

    def all(self, order: Sequence[str] = ()) -> list[str]:
        """Every note, those of the sections in `order` first and in that order (the file's order)."""
        rank = {section: i for i, section in enumerate(order)}
        ranked = sorted(enumerate(self.items), key=lambda item: (rank.get(item[1][0], len(rank)), item[0]))
        return [text for _, (_, text) in ranked]


# ---------------------------------------------------------------------------------------------------------
# Services


@dataclass
class Service:
    name: str
    package: Package
    command: list[str] | None
    refused: str | None = None
    script: str = ""
    port: int | None = None
    soft_port: bool = True  # the app takes it from PORT or a variable the kit sets: movable on a clash
    needs_port: bool = False
    env: dict[str, str] = field(default_factory=dict)
    sources: Sources = field(default_factory=Sources)
    framework: str | None = None

    @property
    def cwd(self) -> str:
        return self.package.dir

    @property
    def tail(self) -> str:
        base = (self.package.name.rsplit("/", 1)[-1] or PurePosixPath(self.package.dir).name).lower()
        return re.split(r"[-_.]", base)[-1]

    @property
    def webish(self) -> bool:
        return bool(self.package.deps() & WEB_FRAMEWORKS) or self.framework is not None or self.tail in WEB_SUFFIXES

    @property
    def apiish(self) -> bool:
        return self.tail in API_SUFFIXES


def _plain_name(package: Package) -> str:
    base = package.name.rsplit("/", 1)[-1] if package.name else PurePosixPath(package.dir).name
    return re.sub(r"[^a-z0-9_]+", "_", base.lower()).strip("_")


def service_name(package: Package, taken: set[str]) -> str:
    """The package name without its scope, as a service name: lower case, unique, not a reserved word."""
    name = _plain_name(package)[:28] or "app"
    if not name[0].isalpha():
        name = f"svc_{name}"[:28]
    if name in RESERVED_SERVICE_NAMES:
        name = f"{name}_app"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _is_library(package: Package, packages: Sequence[Package]) -> bool:
    return bool(package.name) and any(package.name in other.deps() for other in packages if other is not package)


def app_packages(packages: Sequence[Package]) -> list[Package]:
    return [p for p in packages if "start" in p.scripts or (p.main and not _is_library(p, packages))]


def _port_argument(argv: Sequence[str]) -> int | None:
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--port", "-p") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--port="):
            value = arg.split("=", 1)[1]
        if value is not None and value.isdigit() and 0 < int(value) < 65536:
            return int(value)
    return None


# Servers started by a framework CLI: (first words, default port, whether it reads PORT, asset prefix).
FRAMEWORK_SERVERS = (
    (("react-router-serve",), 3000, True, "/assets/"),
    (("remix-serve",), 3000, True, None),
    (("next", "start"), 3000, True, "/_next/static/"),
    (("vite", "preview"), 4173, False, "/assets/"),
)


def _framework(argv: Sequence[str]) -> tuple[str, int, bool, str | None] | None:
    for words, port, reads_port, assets in FRAMEWORK_SERVERS:
        if tuple(argv[: len(words)]) == words:
            return " ".join(words), port, reads_port, assets
    return None


def _make_service(package: Package, root: Path, taken: set[str], notes: Notes) -> Service:
    name = service_name(package, taken)
    if name != _plain_name(package):
        notes.add(
            f"services.{name}",
            f"services.{name}: named after {package.label}, changed to be a unique, unreserved lower-case name; "
            "rename it freely",
        )
    script = package.scripts.get("start")
    if script is not None:
        argv, why = _resolve_script(package, script)
    else:
        main = (package.main or "").removeprefix("./")
        argv, why, script = ["node", main], None, f"node {main} (its main; it has no start script)"
    svc = Service(name, package, argv, refused=why, script=script)
    svc.sources = read_sources(root / package.dir)
    if argv is None:
        notes.add(
            f"services.{name}",
            f"services.{name}: {package.label}'s start script {script!r} {why}; the kit runs commands without "
            f"a shell, so write services.{name}.command yourself (an argument list; variables go in env:)",
        )
        return svc
    fw = _framework(argv)
    explicit = _port_argument(argv)
    if fw:
        svc.framework = fw[0]
    if explicit:
        svc.port, svc.soft_port = explicit, False
    elif fw:
        svc.port, svc.soft_port = fw[1], fw[2]
        note = f"{fw[0]} listens on {fw[1]} by default" + (" and reads PORT" if fw[2] else "; it ignores PORT")
        notes.add(f"services.{name}", f"services.{name}.port: {note}")
    elif "PORT" in svc.sources.port_defaults:
        svc.port = svc.sources.port_defaults["PORT"]
    tool = argv[0]
    dev_only = tool in package.deps("devDependencies") and tool not in package.deps("dependencies")
    if dev_only:
        notes.add(
            f"services.{name}",
            f"services.{name}: {tool} is a devDependency of {package.label}, and the image installs production "
            "dependencies only: start the built output instead (e.g. node dist/index.js)",
        )
    return svc


def _names_service(var: str, suffix: str, services: Sequence[Service], own: Service) -> Service | None:
    words = f"_{var.removesuffix(suffix)}_"
    for other in services:
        if other is not own and other.command is not None and f"_{other.name.upper()}_" in words:
            return other
    return None


def _wire_ports(services: Sequence[Service], notes: Notes) -> None:
    """Own *_PORT variables and PORT make a service listen; clashes of movable ports get the next free one."""
    live = [s for s in services if s.command is not None]
    for svc in live:
        own_vars = [
            v
            for v in sorted(svc.sources.reads)
            if v.endswith("_PORT") and _names_service(v, "_PORT", live, svc) is None
        ]
        for var in own_vars:
            svc.env[var] = "{port}"
            if svc.port is None and var in svc.sources.port_defaults:
                svc.port = svc.sources.port_defaults[var]
            notes.add(
                f"services.{svc.name}", f"services.{svc.name}.env.{var}: {var} read in its sources, set to its port"
            )
        if own_vars or "PORT" in svc.sources.reads:
            svc.needs_port = True
    used: dict[int, Service] = {}
    for svc in sorted(live, key=lambda s: s.soft_port):  # fixed ports first
        if svc.port is None:
            continue
        if svc.port in used or svc.port == 80:
            if svc.soft_port:
                svc.port = None
                svc.needs_port = True
            else:
                clash = "nginx's port" if svc.port == 80 else f"services.{used[svc.port].name}'s too"
                notes.add(
                    f"services.{svc.name}",
                    f"services.{svc.name}.port: {svc.port} is fixed by its command and is {clash}; change one",
                )
                continue
        if svc.port is not None:
            used[svc.port] = svc
    for svc in live:
        if svc.port is None and svc.needs_port:
            port = FIRST_FREE_PORT
            while port in used:
                port += 1
            svc.port = port
            used[port] = svc
            notes.add(
                f"services.{svc.name}",
                f"services.{svc.name}.port: {port} picked (any free port works: the kit tells the service through "
                "PORT or the env placeholders)",
            )
        elif svc.port is None:
            notes.add(
                f"services.{svc.name}",
                f"services.{svc.name}: no port found (no --port, PORT or *_PORT in its start script or sources), so "
                "it has none and no route, like a worker; add port: if it serves HTTP",
            )


def _wire_urls(services: Sequence[Service], notes: Notes) -> None:
    live = [s for s in services if s.command is not None]
    for svc in live:
        for var in sorted(svc.sources.reads):
            for suffix, attr in (("_URL", "url"), ("_PORT", "port")):
                if not var.endswith(suffix):
                    continue
                other = _names_service(var, suffix, live, svc)
                if other is not None and other.port is not None:
                    svc.env[var] = f"{{{other.name}.{attr}}}"
                    notes.add(
                        f"services.{svc.name}",
                        f"services.{svc.name}.env.{var}: read in its sources and names services.{other.name}, so "
                        f"set to {{{other.name}.{attr}}}",
                    )


# ---------------------------------------------------------------------------------------------------------
# Routes and health


@dataclass(frozen=True)
class Route:
    path: str
    service: str
    cache: str | None = None
    match: str = "prefix"
    host: str | None = None


def propose_routes(services: Sequence[Service], notes: Notes) -> list[Route]:
    ported = [s for s in services if s.command is not None and s.port is not None]
    if not ported:
        return []
    webs = [s for s in ported if s.webish and not s.apiish]
    apis = [s for s in ported if s.apiish and s not in webs]
    routes: list[Route] = []
    root = webs[0] if webs else (apis[0] if apis else ported[0])
    if webs and apis:
        api = apis[0]
        routes.append(Route("/api/", api.name))
        if not api.sources.api_paths:
            notes.add(
                "routes",
                f"routes: /api/ goes to {api.name}, whose sources name no /api/ path: nginx passes the path "
                "unchanged, so check that the API serves its routes under /api/",
            )
    elif not webs:
        notes.add("routes", f"routes: no web-ish package among the services, so / goes to {root.name}")
    fw = _framework(root.command or [])
    assets = fw[3] if fw else None
    if assets is None and "@react-router/dev" in root.package.deps():
        assets = "/assets/"
    if assets:
        routes.append(Route(assets, root.name, cache="immutable"))
        notes.add(
            "routes",
            f"routes: {assets} is cached for a year (immutable): {root.framework or 'the framework'}'s build "
            "hashes those file names",
        )
    routes.append(Route("/", root.name))
    routed = {r.service for r in routes}
    for svc in ported:
        if svc.name not in routed:
            notes.add("routes", f"routes: services.{svc.name} has a port but no route; add one if it serves browsers")
    return routes


def _resolve(routes: Sequence[Route], path: str) -> str | None:
    best = None
    for r in routes:
        if path.startswith(r.path) and (best is None or len(r.path) > len(best.path)):
            best = r
    return best.service if best else None


def propose_health(services: Sequence[Service], routes: Sequence[Route], notes: Notes) -> dict[str, Any] | None:
    if not routes:
        return None
    by_name = {s.name: s for s in services}
    for svc in services:
        for path, file in svc.sources.health_paths:
            if _resolve(routes, path) == svc.name:
                notes.add(
                    "health",
                    f"health: {path} found in {svc.package.dir}/{file}; check it answers 200 without a login "
                    "(health.body can require a substring)",
                )
                return {"path": path, "service": svc.name, "status": 200}
    api = next((r.service for r in routes if r.path == "/api/"), None)
    path = "/api/health" if api else "/"
    service = _resolve(routes, path) or routes[-1].service
    owner = by_name[service].package.label
    notes.add(
        "health",
        f"health.path: {path} is a guess (no health route found in {owner}'s sources); use a path that answers "
        "200 only when the app and its database work",
    )
    return {"path": path, "service": service, "status": 200}


# ---------------------------------------------------------------------------------------------------------
# Migrations


def propose_migrate(packages: Sequence[Package], root_pkg: Package, notes: Notes) -> dict[str, Any]:
    found = [(key, pkg) for key in MIGRATE_SCRIPTS for pkg in packages if key in pkg.scripts]
    if not found:
        notes.add("migrate", "migrate: no db:migrate or migrate script in any package, so none is set")
        return {}
    key, pkg = found[0]
    others = sorted({p.label for _, p in found[1:] if p is not pkg})
    if others:
        notes.add("migrate", f"migrate: {pkg.label}'s {key} chosen; {', '.join(others)} also have one")
    script = pkg.scripts[key]
    argv, why = _resolve_script(pkg, script)
    if argv is None:
        notes.add(
            "migrate",
            f"migrate: {pkg.label}'s {key} script {script!r} {why}; write migrate.command yourself (an argument list)",
        )
        return {}
    tool = argv[0]
    if tool in pkg.deps("devDependencies") and tool not in pkg.deps("dependencies") and pkg.name:
        notes.add(
            "migrate",
            f"migrate.package: {tool} is a devDependency of {pkg.label}, so the build deploys that package with all "
            "its dependencies and runs the command there; pnpm deploy copies only its `files` "
            f"({', '.join(pkg.files) or 'none listed: everything'}), which must hold the migrations and their config",
        )
        return {"command": argv, "cwd": ".", "package": pkg.name, "from": f"{pkg.label} script {key}"}
    if tool != "node" and tool not in pkg.deps("dependencies") | root_pkg.deps("dependencies"):
        notes.add("migrate", f"migrate: {tool} is not a dependency of {pkg.label}; check the image has it")
    return {"command": argv, "cwd": pkg.dir, "package": "", "from": f"{pkg.label} script {key}"}


# ---------------------------------------------------------------------------------------------------------
# Runtime files


_OUT_FLAGS = {"--outDir", "--outdir", "--out-dir", "-d"}
_FRAMEWORK_OUTPUT = {
    ("react-router", "build"): "build",
    ("remix", "build"): "build",
    ("remix", "vite:build"): "build",
    ("next", "build"): ".next",
    ("nuxt", "build"): ".output",
    ("nuxi", "build"): ".output",
}
_NOT_RUNTIME = re.compile(r"(?i)(readme|license|licence|changelog|package\.json)(\..*)?|.*\.(md|d\.ts)")


def _tsconfig_out_dir(folder: Path, argv: Sequence[str]) -> str | None:
    name = "tsconfig.json"
    for i, arg in enumerate(argv):
        if arg in ("-p", "--project") and i + 1 < len(argv):
            name = argv[i + 1]
    path = folder / name
    if path.is_dir():
        path = path / "tsconfig.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(r'"outDir"\s*:\s*"([^"]+)"', text)
    return found.group(1) if found else None


def build_outputs(pkg: Package, root: Path) -> list[str]:
    """Folders a package's build script writes, relative to the package, as far as its words say."""
    script = pkg.scripts.get("build", "")
    words = script.replace("&&", " ; ").replace("||", " ; ").split()
    out: list[str] = []
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if (word, nxt) in _FRAMEWORK_OUTPUT:
            out.append(_FRAMEWORK_OUTPUT[(word, nxt)])
        flag, eq, value = word.partition("=")
        if flag in _OUT_FLAGS and (eq or nxt):
            out.append((value if eq else nxt).strip("'\""))
        if word == "tsc":
            end = words.index(";", i) if ";" in words[i:] else len(words)
            out_dir = _tsconfig_out_dir(root / pkg.dir, words[i:end])
            if out_dir:
                out.append(out_dir)
    return [PurePosixPath(o.removeprefix("./")).as_posix() for o in out if o and not o.startswith(("/", ".."))]


def propose_runtime(
    packages: Sequence[Package], root: Path, migrate_package: str, notes: Notes
) -> tuple[list[str], list[str]]:
    """runtime.include, and the host build folders the image builds itself (for .dockerignore)."""
    include: list[str] = []
    host_builds: list[str] = []
    dist = False
    for pkg in packages:
        text = json.dumps({k: pkg.data.get(k) for k in ("main", "exports", "files", "types", "bin", "module")})
        if "dist" in text or re.search(
            r"\b(tsc|tsup|vite build|rollup|esbuild|unbuild)\b", pkg.scripts.get("build", "")
        ):
            dist = True
        for folder in build_outputs(pkg, root):
            if folder == "dist":
                dist = True
                continue
            path = f"{pkg.dir}/{folder}"
            if path not in include:
                include.append(path)
                host_builds.append(path)
                notes.add("runtime", f"runtime.include: {path}, which {pkg.label}'s build script writes")
            if folder == ".next":
                notes.add(
                    "runtime",
                    f"runtime.include: next start also reads {pkg.dir}/public and next.config.*; add them if present",
                )
        if pkg.name and pkg.name == migrate_package:
            continue  # deployed whole for the migration: its files travel with it
        for entry in pkg.files:
            entry = entry.strip().removeprefix("./").rstrip("/")
            first = PurePosixPath(entry).parts[0] if entry else ""
            if (
                not entry
                or entry.startswith(("!", "/"))
                or ".." in PurePosixPath(entry).parts
                or re.search(r"[*?\[\]{}\s'\"$`;&|<>()]", entry)
                or first in ("dist", "src", "test", "tests", "docs")
                or _NOT_RUNTIME.fullmatch(PurePosixPath(entry).name)
                or not (root / pkg.dir / entry).exists()
            ):
                continue
            path = f"{pkg.dir}/{entry}"
            if path not in include:
                include.append(path)
                notes.add("runtime", f"runtime.include: {path}, listed in {pkg.label}'s package.json files")
    if not dist:
        notes.add("runtime", "runtime.include: no package seems to build to dist/, but */dist is kept; drop it if so")
    return ["*/dist", *include], host_builds


# ---------------------------------------------------------------------------------------------------------
# Root settings


def node_major(engines: Any, notes: Notes) -> str:
    spec = engines.get("node") if isinstance(engines, dict) else None
    if not isinstance(spec, str):
        notes.add("node", f"node.version: {DEFAULT_NODE} (package.json has no engines.node)")
        return DEFAULT_NODE
    spec = spec.strip()
    exact = re.fullmatch(r"[\^~=v]?\s*(\d+)(?:\.(?:\d+|x|\*))*", spec)
    if exact and len(exact.group(1)) == 2:
        return exact.group(1)
    floor = re.fullmatch(r">=?\s*v?(\d+)(?:\.\d+)*", spec)
    if floor and len(floor.group(1)) == 2:
        major = max(int(floor.group(1)), int(DEFAULT_NODE))
        notes.add("node", f"node.version: {major}, which engines.node {spec!r} allows")
        return str(major)
    notes.add("node", f"node.version: {DEFAULT_NODE}; engines.node {spec!r} names no single major, check it allows it")
    return DEFAULT_NODE


def pnpm_version(manager: Any, notes: Notes) -> str:
    if isinstance(manager, str):
        found = re.fullmatch(r"pnpm@(\d+\.\d+\.\d+)(?:\+.*)?", manager.strip())
        if found:
            return found.group(1)
        notes.add("node", f"node.pnpm: packageManager is {manager!r}, not pnpm@X.Y.Z; {DEFAULT_PNPM} (the kit's) set")
        return DEFAULT_PNPM
    notes.add(
        "node",
        f"node.pnpm: {DEFAULT_PNPM} (the kit's default): package.json has no packageManager; set both to the pnpm "
        "that wrote pnpm-lock.yaml",
    )
    return DEFAULT_PNPM


def default_branch(root: Path, notes: Notes) -> str:
    """The branch whose pushes publish `latest`: origin's HEAD when git knows it, else the checked-out one."""
    git = root / ".git"
    for path, what in ((git / "refs" / "remotes" / "origin" / "HEAD", "origin's default"), (git / "HEAD", "")):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        found = re.fullmatch(r"ref: refs/(?:remotes/origin|heads)/([A-Za-z0-9._/-]+)", text)
        if found:
            if not what:
                notes.add("release", f"release.default_branch: {found.group(1)}, the branch checked out now")
            return found.group(1)
    notes.add("release", "release.default_branch: main (git names no branch here)")
    return "main"


def image_name(root_pkg: Package, folder: Path) -> str:
    for raw in (root_pkg.name.rsplit("/", 1)[-1], folder.resolve().name, "app"):
        name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:80]
        if name and not imageref.problem(f"x/{name}"):
            return name
    return "app"


def env_names(services: Sequence[Service], migrate_pkg: Package | None, root: Path) -> tuple[list, list, list]:
    wired = {var for s in services for var in s.env}
    reads: set[str] = set()
    told: set[str] = set()
    for svc in services:
        reads |= svc.sources.reads
        told |= svc.sources.required
    if migrate_pkg is not None:
        migrator = read_sources(root / migrate_pkg.dir)
        reads |= migrator.reads
        told |= migrator.required
        for config in sorted((root / migrate_pkg.dir).glob("*.config.*")):
            try:
                reads |= set(_ENV_READ.findall(config.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    names = sorted(n for n in reads - wired - IGNORED_ENV if not n.endswith("_PORT"))
    required = [n for n in names if n in told or n == "DATABASE_URL"]
    optional = [n for n in names if n not in required]
    secret = [n for n in names if any(h in n for h in SECRET_HINTS)]
    if "DATABASE_URL" in names:
        secret.append("POSTGRES_PASSWORD")
    return required, optional, sorted(set(secret))


# ---------------------------------------------------------------------------------------------------------
# YAML text, in the style of the kit's own atbb.yaml: a short comment per section


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./+=-]*")


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text):
        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text)


def flow(values: Sequence[Any], indent: str = "", key: str = "", width: int = 110) -> str:
    """A flow sequence; past `width`, continued on lines indented under `indent` (YAML folds them)."""
    items = [scalar(v) for v in values]
    lines, current = [], f"{indent}{key}["
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if len(current) + len(piece) + 1 > width and not current.endswith("["):
            lines.append(current.rstrip())
            current = f"{indent}    {piece}"
        else:
            current = f"{current}{'' if current.endswith('[') else ' '}{piece}"
    lines.append(current + "]")
    return "\n".join(lines)[len(indent) + len(key) :]


def long_string(value: str, indent: str, key: str, width: int = 110) -> str:
    """A double-quoted scalar broken at spaces past `width`: YAML folds each break back into one space."""
    lines, current = [], f"{indent}{key}"
    for i, word in enumerate(json.dumps(value).split(" ")):
        if i and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = f"{indent}  {word}"
        else:
            current = f"{current} {word}" if i else current + word
    lines.append(current)
    return "\n".join(lines)


def one_line(text: str) -> str:
    """Text for a comment: control characters (a newline would end the comment) become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text)


def _comment(text: str, indent: str = "", width: int = 110) -> list[str]:
    lines: list[str] = []
    words = text.split()
    current = ""
    for word in words:
        if current and len(indent) + 2 + len(current) + 1 + len(word) > width:
            lines.append(f"{indent}# {current}")
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(f"{indent}# {current}")
    return lines


def _checks(notes: Notes, section: str, indent: str = "") -> list[str]:
    out: list[str] = []
    for text in notes.of(section):
        out += _comment(f"check: {text}", indent)
    return out


@dataclass
class Draft:
    root_name: str
    node: str
    pnpm: str
    services: list[Service]
    routes: list[Route]
    health: dict[str, Any] | None
    migrate: dict[str, Any]
    runtime: list[str]
    image: dict[str, str]
    env: tuple[list[str], list[str], list[str]]
    project: str
    branch: str


def render(draft: Draft, notes: Notes) -> str:
    out: list[str] = [
        f"# atbb.yaml for {one_line(draft.root_name)}, drafted by `inv init` from the workspace's package.json",
        "# files and sources. Every key is explained in the kit's own atbb.yaml; `# check:` lines are guesses",
        "# to confirm (delete them once done). Precedence: this file < ATBB_* environment variables < task flags.",
        "",
        "# The monorepo is this folder.",
        "monorepo: .",
        "",
        "node:",
        "  # Node.js major of the image and CI (the base image below carries the same one).",
        *_checks(notes, "node", "  "),
        f"  version: {scalar(draft.node)}",
        "  # pnpm that installs and builds; equal to `packageManager` in package.json.",
        f"  pnpm: {json.dumps(draft.pnpm)}",
        "",
        "# The processes inside the image, started in this order and stopped in the reverse order; any one",
        "# exiting ends the container. Commands are argument lists run without a shell from cwd (the package",
        "# folder, as `pnpm start` runs them); a service without a port has no route (a worker).",
        "services:",
    ]
    for svc in draft.services:
        checks = _checks(notes, f"services.{svc.name}", "  ")
        if svc.command is None:
            out += checks
            out += [
                f"  # {svc.name}:",
                f"  #   package: {json.dumps(svc.package.name)}",
                f"  #   command: [...]   # from the start script: {one_line(svc.script)}",
                f"  #   cwd: {svc.cwd}",
            ]
            continue
        out += checks
        out += [f"  {svc.name}:"]
        if svc.package.name:
            out.append(f"    package: {json.dumps(svc.package.name)}")
        out += [f"    command: {flow(svc.command)}", f"    cwd: {scalar(svc.cwd)}"]
        if svc.port is not None:
            out.append(f"    port: {svc.port}")
        if svc.env:
            out.append("    env:")
            out += [f"      {var}: {json.dumps(value)}" for var, value in svc.env.items()]
    out += [
        "",
        "# nginx routing: an `exact` route wins for its one path, else the longest `prefix` that matches.",
        "# `inv routes` prints the table; `inv routes --check PATH` answers for one path.",
        *_checks(notes, "routes"),
    ]
    if draft.routes:
        out.append("routes:")
        for r in draft.routes:
            out += [f"  - path: {scalar(r.path)}", f"    service: {r.service}"]
            if r.cache:
                out.append(f"    cache: {r.cache}")
    else:
        out.append("routes: []")
    out += [
        "",
        "# Security headers nginx adds to every response: a value to set, `app` (the app's own) or `remove`.",
        "headers:",
        *[f"  {name}: {scalar(value)}" for name, value in DEFAULT_HEADERS.items()],
        "",
        "# Content-Security-Policy: enforce, report-only, app (pass the app's own) or remove. This default",
        "# allows the inline scripts server-rendering frameworks emit for hydration.",
        "csp:",
        "  mode: enforce",
        "  policy: >-",
        *_wrap_policy(DEFAULT_CSP),
        "",
        "# What healthy means for the image HEALTHCHECK, Compose and `inv smoke`: a GET of `path` through nginx",
        "# answering `status` (and containing `body` when set).",
        *_checks(notes, "health"),
    ]
    if draft.health:
        out += [
            "health:",
            f"  path: {scalar(draft.health['path'])}",
            f"  service: {draft.health['service']}",
            f"  status: {draft.health['status']}",
        ]
    out += [
        "",
        "# Migrations, baked into the image: `docker run IMAGE migrate`, `inv migrate` and `inv compose-up` run",
        "# this command (from cwd; with `package`, inside that package deployed with all its dependencies).",
        *_checks(notes, "migrate"),
    ]
    if draft.migrate:
        out += [
            "migrate:",
            f"  # From {one_line(draft.migrate['from'])}.",
            f"  command: {flow(draft.migrate['command'])}",
            f"  cwd: {scalar(draft.migrate['cwd'])}",
            f"  package: {json.dumps(draft.migrate['package'])}",
            "  wait_timeout: 60",
        ]
    else:
        out += ["migrate:", "  command: []"]
    out += [
        "",
        "# What the image carries besides production dependencies: `find -path` patterns from the monorepo root",
        "# (`*` also matches /). A pattern that matches nothing after the build fails it, naming the pattern.",
        *_checks(notes, "runtime"),
        "runtime:",
        f"  include: {flow(draft.runtime, '  ', 'include: ')}",
        "",
        "nginx:",
        "  # Rendered from this file by `inv nginx-conf` and committed; a drift fails `inv config --check`.",
        "  conf: nginx/nginx.conf",
        "",
        "image:",
        "  registry: ghcr.io",
        "  # Empty: GITHUB_REPOSITORY_OWNER in Actions, else the owner in the git `origin` remote's URL.",
        *_checks(notes, "image", "  "),
        '  owner: ""',
        f"  name: {scalar(draft.image['name'])}",
        f"  base: node:{draft.node}-alpine",
        "  platforms: [linux/amd64]",
        "  # `inv image` fails above it (MB); raise it after the first build if the app needs more.",
        "  size_budget_mb: 250",
        long_string(draft.image["title"], "  ", "title: "),
        long_string(draft.image["description"], "  ", "description: "),
        f"  licenses: {json.dumps(draft.image['licenses'])}",
        "",
        "# Pushes to default_branch publish `latest` and `<branch>-<sha>`; version tags vX.Y.Z publish X.Y.Z.",
        *_checks(notes, "release"),
        "release:",
        f"  default_branch: {scalar(draft.branch)}",
        "  sha_length: 7",
        "",
        "# Variables the image reads: required ones are checked by every task that starts containers; secret",
        "# ones print as ***. Found in the services' sources; which are required is for you to say.",
        *_checks(notes, "env"),
        "env:",
        f"  required: {flow(draft.env[0], '  ', 'required: ')}",
        f"  optional: {flow(draft.env[1], '  ', 'optional: ')}",
        f"  secret: {flow(draft.env[2], '  ', 'secret: ')}",
        "",
        "compose:",
        "  # The kit's Compose example (copy it next to this file): the image with PostgreSQL.",
        "  file: docker-compose.example.yml",
        f"  project: {draft.project}",
        "  host_port: 8080",
        "  postgres_image: postgres:16-alpine",
        '  network: ""',
    ]
    return "\n".join(out) + "\n"


def _wrap_policy(policy: str) -> list[str]:
    lines, current = [], ""
    for part in policy.split("; "):
        piece = f"{part};" if not policy.endswith(part) else part
        if current and len(current) + 1 + len(piece) > 104:
            lines.append(f"    {current}")
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    lines.append(f"    {current}")
    return lines


# ---------------------------------------------------------------------------------------------------------
# Ignore files: the lines the kit's build needs, merged without removing any of the user's


DOCKERIGNORE_HEADER = "# Added by `inv init` (atBB kit): host installs, build output, secrets, the kit's Python"
GITIGNORE_HEADER = "# Added by `inv init` (atBB kit): the kit's Python files (an untracked one makes `inv tags` dirty)"
GITIGNORE_LINES = (".venv/", "__pycache__/", "*.egg-info/")


@dataclass(frozen=True)
class IgnorePlan:
    name: str
    text: str  # the file after the merge
    added: tuple[str, ...]
    created: bool
    notes: tuple[str, ...] = ()


def _norm(line: str, gitignore: bool) -> str:
    line = line.strip().rstrip("/")
    if gitignore:
        line = line.removeprefix("/").removeprefix("**/")
    return line


def dockerignore_lines(root: Path, globs: Sequence[str], host_builds: Sequence[str]) -> tuple[list[str], list[str]]:
    """(allow-list lines, deny lines) for the app's .dockerignore, the kit's build context."""
    allow = ["!docker/", "!nginx/nginx.conf", "!package.json", "!pnpm-lock.yaml", "!pnpm-workspace.yaml", "!turbo.json"]
    for optional in (".npmrc", ".pnpmfile.cjs", "patches"):
        if (root / optional).exists():
            allow.append(f"!{optional}/" if (root / optional).is_dir() else f"!{optional}")
    if any(root.glob("tsconfig*.json")):
        allow.append("!tsconfig*.json")
    for glob in globs:
        top = glob.strip().removeprefix("./").split("/", 1)[0]
        if top and not top.startswith("!") and "*" not in top and f"!{top}/" not in allow:
            allow.append(f"!{top}/")
    deny = ["**/node_modules", "**/dist", *host_builds, "**/.turbo", "**/.env", "**/.env.*", "**/.git", ".venv"]
    deny += ["**/__pycache__", "*.egg-info"]
    return allow, deny


def merge_dockerignore(existing: str | None, allow: Sequence[str], deny: Sequence[str]) -> IgnorePlan:
    """A new file is an allow-list like the kit's own; an existing one keeps every line and gains the missing
    deny lines at its end (and, when it is an allow-list, the missing allow lines right after its `*`)."""
    if existing is None:
        lines = [
            "# Build context of the atBB kit's image: everything is excluded unless named below.",
            "*",
            *allow,
            "",
            "# Never, wherever they sit (after the allow-list: the last matching line wins).",
            *deny,
        ]
        return IgnorePlan(".dockerignore", "\n".join(lines) + "\n", ("*", *allow, *deny), created=True)
    lines = existing.splitlines()
    have = {_norm(line, False) for line in lines}
    notes = []
    for line in lines:
        if _norm(line, False).lstrip("/") in ("docker", "nginx", "nginx/nginx.conf"):
            notes.append(
                f".dockerignore: your line {line.strip()!r} keeps a folder the kit's Dockerfile copies out of the "
                "build; remove it (init never removes lines)"
            )
    star = next((i for i, line in enumerate(lines) if line.strip() in ("*", "**", "/*")), None)
    added_allow = [a for a in allow if _norm(a, False) not in have] if star is not None else []
    if star is not None:
        lines[star + 1 : star + 1] = added_allow
    added_deny = [d for d in deny if _norm(d, False) not in have]
    if added_deny:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [DOCKERIGNORE_HEADER, *added_deny]
    text = "\n".join(lines) + "\n" if lines else ""
    return IgnorePlan(".dockerignore", text, (*added_allow, *added_deny), created=False, notes=tuple(notes))


def merge_gitignore(existing: str | None) -> IgnorePlan:
    lines = existing.splitlines() if existing else []
    have = {_norm(line, True) for line in lines}
    added = [g for g in GITIGNORE_LINES if _norm(g, True) not in have]
    if added:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [GITIGNORE_HEADER, *added]
    return IgnorePlan(".gitignore", "\n".join(lines) + "\n", tuple(added), created=existing is None)


# ---------------------------------------------------------------------------------------------------------
# The whole proposal


@dataclass(frozen=True)
class Proposal:
    text: str
    notes: tuple[str, ...]
    problems: tuple[str, ...]  # load_config's errors, when the draft does not validate
    dockerignore: IgnorePlan
    gitignore: IgnorePlan


def propose(folder: Path) -> Proposal:
    root = Path(folder)
    globs = _workspace_globs(root)
    if not (root / "package.json").is_file():
        raise KitError(f"no package.json in {root}", "run inv init in the workspace's root folder")
    root_pkg = Package(".", _read_json(root / "package.json", root))
    notes = Notes()
    packages = _workspace_packages(root, globs, notes)
    apps = app_packages(packages)
    if not apps:
        raise KitError(
            f"no app in the workspace: none of the {len(packages)} packages under {', '.join(globs)} has a start "
            "script or a main that no other package imports",
            "add a `start` script to each package that runs a server or a worker, then rerun inv init",
        )
    taken: set[str] = set()
    services = []
    for pkg in apps:
        svc = _make_service(pkg, root, taken, notes)
        taken.add(svc.name)
        services.append(svc)
    _wire_ports(services, notes)
    _wire_urls(services, notes)
    routes = propose_routes(services, notes)
    health = propose_health(services, routes, notes)
    migrate = propose_migrate(packages, root_pkg, notes)
    migrate_pkg = next((p for p in packages if migrate.get("package") and p.name == migrate["package"]), None)
    runtime, host_builds = propose_runtime(packages, root, migrate.get("package", ""), notes)
    env = env_names([s for s in services if s.command is not None], migrate_pkg, root)
    notes.add(
        "env",
        "env: the variables the services' sources read; required are those their sources call required or "
        '"not set" (and DATABASE_URL): move any other the app cannot start without',
    )
    name = image_name(root_pkg, root)
    notes.add("image", "image.owner: empty, so taken from the git origin remote; set it when origin is not on GitHub")
    license_ = root_pkg.data.get("license")
    description = root_pkg.data.get("description")
    draft = Draft(
        root_name=root_pkg.name or root.resolve().name,
        node=node_major(root_pkg.data.get("engines"), notes),
        pnpm=pnpm_version(root_pkg.data.get("packageManager"), notes),
        services=services,
        routes=routes,
        health=health,
        migrate=migrate,
        runtime=runtime,
        image={
            "name": name,
            "title": root_pkg.name or name,
            "description": description.strip()[:300] if isinstance(description, str) else "",
            "licenses": license_ if isinstance(license_, str) else "",
        },
        env=env,
        project=re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_") or "app",
        branch=default_branch(root, notes),
    )
    text = render(draft, notes)
    allow, deny = dockerignore_lines(root, globs, host_builds)
    docker = merge_dockerignore(_read_text(root / ".dockerignore"), allow, deny)
    git = merge_gitignore(_read_text(root / ".gitignore"))
    order = ["node", *(f"services.{s.name}" for s in services), "routes", "health", "migrate", "runtime", "image"]
    order += ["release", "env"]
    return Proposal(text, (*notes.all(order), *docker.notes), validate(text), docker, git)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError(f"cannot read {path}: {exc}", "fix or remove the file") from None


def validate(text: str) -> tuple[str, ...]:
    """load_config's problems with the draft (one per line), or () when it validates."""
    with tempfile.TemporaryDirectory(prefix="atbb-init-") as tmp:
        path = Path(tmp) / CONFIG_NAME
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path=path, environ={})
        except KitError as exc:
            return tuple(exc.what.splitlines())
    return ()


def scaffold(folder: Path) -> tuple[str, list[str]]:
    """The proposed atbb.yaml for the workspace in `folder`, and what the user must check."""
    proposal = propose(folder)
    return proposal.text, [*proposal.notes, *(f"does not validate yet: {p}" for p in proposal.problems)]


def unified_diff(existing: str, proposed: str) -> str:
    return "".join(
        difflib.unified_diff(
            existing.splitlines(keepends=True),
            proposed.splitlines(keepends=True),
            fromfile=f"{CONFIG_NAME} (yours)",
            tofile=f"{CONFIG_NAME} (proposed by inv init)",
        )
    )
