"""atbb.yaml loading: precedence, provenance, and a corpus of bad configurations with exact key paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from atbb_kit.core.config import DEFAULT_HEADERS, effective_items, env_name, load_config
from atbb_kit.core.errors import ConfigError
from tests.conftest import ROOT, run_inv

BASE = (ROOT / "atbb.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in atbb.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atbb.yaml"
    path.write_text(text)
    return path


# (id, replace this text, with this, env, expected fragment). The fragment pins the key path and,
# for file errors, the line the user has to edit.
def _file(old: str, new: str) -> tuple[str, str, dict[str, str]]:
    assert old in BASE, old
    return old, new, {}


BAD = [
    (
        "port-too-high",
        *_file("port: 3000", "port: 70000"),
        "services.appview.port: input should be less than",
    ),
    ("port-zero", *_file("port: 3001", "port: 0"), "services.web.port: input should be greater than"),
    ("port-not-int", *_file("port: 3001", "port: web"), "services.web.port: input should be a valid integer"),
    ("port-80", *_file("port: 3001", "port: 80"), "services.web.port: 80 is nginx's port"),
    ("same-ports", *_file("port: 3001", "port: 3000"), "services.web.port: 3000 is already services.appview.port"),
    (
        "platform-no-arch",
        *_file("[linux/amd64]", "[linux/amd64, arm64]"),
        "image.platforms[1]: expected os/arch",
    ),
    ("platform-upper", *_file("[linux/amd64]", "[Linux/AMD64]"), "image.platforms[0]: expected os/arch"),
    ("platforms-empty", *_file("[linux/amd64]", "[]"), "image.platforms: tuple should have at least 1 item"),
    ("name-upper", *_file("name: atbb", "name: AtBB"), "image.name: 'AtBB' holds upper case"),
    ("name-space", *_file("name: atbb", "name: at bb"), "image.name: 'at bb' is not a repository name"),
    (
        "base-bad",
        *_file("base: node:22-alpine", "base: 'node::22'"),
        "image.base: 'node:' is not a repository name",
    ),
    (
        "budget-negative",
        *_file("size_budget_mb: 250", "size_budget_mb: -1"),
        "image.size_budget_mb: input should",
    ),
    (
        "unknown-top",
        *_file("monorepo: examples/forum", "monorepo: examples/forum\nmonorpo: x"),
        "monorpo: unknown key",
    ),
    (
        "unknown-nested",
        *_file("  sha_length: 7", "  sha_length: 7\n  sha_lenght: 8"),
        "release.sha_lenght: unknown key",
    ),
    (
        "sha-short",
        *_file("sha_length: 7", "sha_length: 3"),
        "release.sha_length: input should be greater than",
    ),
    (
        "sha-not-int",
        *_file("sha_length: 7", "sha_length: seven"),
        "release.sha_length: input should be a valid integer",
    ),
    (
        "route-unknown-service",
        *_file("    service: web", "    service: webb"),
        "routes[1].service: unknown service",
    ),
    ("route-no-slash", *_file("  - path: /api/", "  - path: api/"), "routes[0].path: expected a URL path"),
    ("no-catch-all", *_file("  - path: /\n", "  - path: /w/\n"), "routes: no prefix route for '/' without host"),
    (
        "health-not-appview",
        *_file("path: /api/health", "path: /health"),
        "health.path: '/health' is routed to web, not health.service appview",
    ),
    (
        "env-lowercase",
        *_file("required: [DATABASE_URL", "required: [database_url"),
        "env.required[0]: expected an",
    ),
    (
        "monorepo-escape",
        *_file("monorepo: examples/forum", "monorepo: ../elsewhere"),
        "monorepo: expected a path",
    ),
    (
        "monorepo-absolute",
        *_file("monorepo: examples/forum", "monorepo: /srv/atbb"),
        "monorepo: expected a path",
    ),
    ("pnpm-range", *_file('pnpm: "9.15.9"', 'pnpm: "^9"'), "node.pnpm: expected an exact version"),
    (
        "host-port-str",
        *_file("host_port: 8080", "host_port: http"),
        "compose.host_port: input should be a valid",
    ),
    ("project-upper", *_file("project: atbb", "project: ATBB"), "compose.project: expected lower-case"),
    (
        "missing-service",
        *_file("  web:\n    package", "  webapp:\n    package"),
        "routes[1].service: unknown service 'web'; expected one of appview, webapp",
    ),
    (
        "service-missing-key",
        *_file("    command: [node, apps/web/dist/index.js]\n", ""),
        "services.web.command: required key",
    ),
    (
        "registry-bad",
        *_file("registry: ghcr.io", "registry: 'ghcr.io/x'"),
        "image.registry: expected a registry host",
    ),
    (
        "wait-timeout-zero",
        *_file("wait_timeout: 60", "wait_timeout: 0"),
        "migrate.wait_timeout: input should be",
    ),
    (
        "duplicate-key",
        *_file("  host_port: 8080", "  host_port: 8080\n  host_port: 9090"),
        "compose.host_port: duplicate",
    ),
    # Services as a map, routes, headers, health, migrate, runtime, nginx (issue 13).
    (
        "command-not-list",
        *_file("command: [node, apps/web/dist/index.js]", "command: node apps/web/dist/index.js"),
        "services.web.command: input should be a valid tuple",
    ),
    (
        "command-empty",
        *_file("command: [node, apps/web/dist/index.js]", "command: []"),
        "services.web.command: tuple should have at least 1 item",
    ),
    (
        "command-empty-word",
        *_file("command: [node, apps/web/dist/index.js]", "command: [node, '']"),
        "services.web.command[1]: expected a non-empty argument",
    ),
    ("cwd-escape", *_file("    cwd: .\n", "    cwd: ../elsewhere\n"), "services.appview.cwd: expected a path relative"),
    ("cwd-absolute", *_file("    cwd: .\n", "    cwd: /srv/app\n"), "services.appview.cwd: expected a path relative"),
    (
        "service-name-upper",
        *_file("  web:\n    package", "  Web:\n    package"),
        "services.Web: expected a lower-case name",
    ),
    ("service-reserved", *_file("  web:\n    package", "  nginx:\n    package"), "services.nginx: 'nginx' is reserved"),
    ("services-empty", *_file("services:\n  appview:", "services: {}\nunused:\n  appview:"), "unused: unknown key"),
    ("grace-zero", *_file("    grace: 5", "    grace: 0"), "services.appview.grace: input should be greater than"),
    ("grace-huge", *_file("    grace: 5", "    grace: 9999"), "services.appview.grace: input should be less than"),
    (
        "old-entry",
        *_file("    command: [node, apps/web/dist/index.js]", "    entry: apps/web/dist/index.js"),
        "services.web: `entry` was replaced by `command`, an argument list: command: [node, apps/web/dist/index.js]",
    ),
    (
        "old-static-path",
        *_file("    port: 3001\n", "    port: 3001\n    static_path: /static/\n"),
        "services.web: `static_path` moved to routes",
    ),
    (
        "env-name-lower",
        *_file('      APPVIEW_URL: "{appview.url}"', '      appview_url: "{appview.url}"'),
        "services.web.env.appview_url",
    ),
    (
        "env-unknown-service",
        *_file('"{appview.url}"', '"{api.url}"'),
        "services.web.env.APPVIEW_URL: {api.url} names no service; known: appview, web",
    ),
    (
        "env-unknown-placeholder",
        *_file('"{appview.url}"', '"{appview.address}"'),
        "services.web.env.APPVIEW_URL: unknown placeholder {appview.address}",
    ),
    ("env-lone-brace", *_file('"{appview.url}"', '"{appview.url"'), "services.web.env.APPVIEW_URL: a lone { or }"),
    (
        "env-port-of-worker",
        *_file("    port: 3000\n", "\n"),
        "services.web.env.APPVIEW_URL: {appview.url}: services.appview has no port",
    ),
    ("route-to-worker", *_file("    port: 3001\n", "\n"), "routes[1].service: services.web has no port"),
    (
        "route-match-bad",
        *_file(
            "    service: appview\n  - path: /static/", "    service: appview\n    match: regex\n  - path: /static/"
        ),
        "routes[0].match: input should be 'prefix' or 'exact'",
    ),
    (
        "route-twice",
        *_file("  - path: /static/", "  - path: /api/\n    service: web\n  - path: /static/"),
        "routes[1].path: prefix '/api/' is routed twice",
    ),
    (
        "route-host-bad",
        *_file("    cache: immutable", "    cache: immutable\n    host: Forum_Example"),
        "routes[1].host: expected a lower-case host name",
    ),
    (
        "route-cache-bad",
        *_file("    cache: immutable", "    cache: forever"),
        "routes[1].cache: input should be 'immutable'",
    ),
    (
        "route-path-brace",
        *_file("  - path: /static/", "  - path: /st{a}tic/"),
        "routes[1].path: URL path '/st{a}tic/' holds",
    ),
    (
        "header-value-quote",
        *_file("X-Frame-Options: DENY", "X-Frame-Options: 'DE\"NY'"),
        "headers.X-Frame-Options: a header value cannot hold",
    ),
    (
        "header-value-dollar",
        *_file("X-Frame-Options: DENY", "X-Frame-Options: $deny"),
        "headers.X-Frame-Options: a header value cannot hold '$'",
    ),
    (
        "header-name-bad",
        *_file("X-Frame-Options: DENY", "'X Frame': DENY"),
        "headers.X Frame: expected an HTTP header name",
    ),
    (
        "header-csp-in-headers",
        *_file("X-Frame-Options: DENY", "Content-Security-Policy: app"),
        "headers.Content-Security-Policy: not a header the kit can set (use the csp: section)",
    ),
    (
        "header-twice",
        *_file("X-Frame-Options: DENY", "X-Frame-Options: DENY\n  x-frame-options: SAMEORIGIN"),
        "listed twice (header names ignore case)",
    ),
    (
        "csp-mode-bad",
        *_file("  mode: enforce", "  mode: strict"),
        "csp.mode: input should be 'enforce', 'report-only', 'app' or 'remove'",
    ),
    ("csp-policy-newline", *_file("  policy: >-", "  policy: |-"), "csp.policy: a header value cannot hold '\\n'"),
    ("health-status-bad", *_file("  status: 200", "  status: 700"), "health.status: input should be less than"),
    (
        "health-service-unknown",
        *_file("  service: appview\n  status", "  service: api\n  status"),
        "health.service: unknown service 'api'",
    ),
    (
        "migrate-old-shape",
        *_file(
            "  command: [node, apps/appview/dist/migrate.js]",
            "  command: [migrate]\n  entry: apps/appview/dist/migrate.js",
        ),
        "migrate: migrate.command is now the migration command itself",
    ),
    (
        "migrate-package-bad",
        *_file('  package: ""\n  # Seconds', '  package: "Not A Package"\n  # Seconds'),
        "migrate.package",
    ),
    (
        "migrate-cwd-escape",
        *_file("  cwd: .\n  # A workspace", "  cwd: ../x\n  # A workspace"),
        "migrate.cwd: expected a path relative",
    ),
    (
        "runtime-escape",
        *_file('include: ["*/dist"]', 'include: ["../secrets"]'),
        "runtime.include[0]: expected a path relative",
    ),
    (
        "runtime-space",
        *_file('include: ["*/dist"]', 'include: ["apps/web/my build"]'),
        "runtime.include[0]: expected a path pattern",
    ),
    (
        "runtime-empty",
        *_file('include: ["*/dist"]', "include: []"),
        "runtime.include: tuple should have at least 1 item",
    ),
    (
        "nginx-conf-absolute",
        *_file("  conf: nginx/nginx.conf", "  conf: /etc/nginx/nginx.conf"),
        "nginx.conf: expected a path relative",
    ),
    (
        "nginx-workers-low",
        *_file("worker_connections: 4096", "worker_connections: 10"),
        "nginx.worker_connections: input should be greater",
    ),
    (
        "nginx-header-timeout-zero",
        *_file("client_header_timeout: 10", "client_header_timeout: 0"),
        "nginx.client_header_timeout: input",
    ),
    (
        "nginx-trusted-proxy-not-a-network",
        *_file("trusted_proxies: [127.0.0.0/8", "trusted_proxies: [edge.local"),
        "nginx.trusted_proxies[0]: expected an address or network like 10.0.0.0/8",
    ),
    (
        "nginx-trusted-proxy-host-bits",
        *_file("trusted_proxies: [127.0.0.0/8", "trusted_proxies: [10.1.2.3/8"),
        "has host bits set; write the network, 10.0.0.0/8",
    ),
    (
        "compose-network-bad",
        *_file('  network: ""', '  network: "bad net"'),
        "compose.network: expected a Docker network name",
    ),
    ("top-not-mapping", BASE, "- just\n- a list\n", {}, "expected a mapping of keys at the top level"),
    ("bad-yaml", *_file("  name: atbb", "  name: [atbb"), "not valid YAML"),
    (
        "env-port",
        "",
        "",
        {"ATBB_COMPOSE_HOST_PORT": "99999"},
        "ATBB_COMPOSE_HOST_PORT (compose.host_port): input",
    ),
    ("env-base", "", "", {"ATBB_IMAGE_BASE": "Node:22"}, "ATBB_IMAGE_BASE (image.base): 'Node' holds upper case"),
    (
        "env-platform",
        "",
        "",
        {"ATBB_IMAGE_PLATFORMS": "linux/amd64,arm64"},
        "(image.platforms[1]): expected os/arch",
    ),
    ("env-unknown", "", "", {"ATBB_IMAGE_BAS": "x"}, "ATBB_IMAGE_BAS does not name a config key"),
]


def _apply(case_old: str, case_new: str) -> str:
    if case_old == BASE:
        return case_new
    return BASE.replace(case_old, case_new, 1) if case_old else BASE


@pytest.mark.parametrize(("old", "new", "env", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_names_key_path(tmp_path, old, new, env, expected):
    path = write(tmp_path, _apply(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert expected in info.value.what, info.value.what


@pytest.mark.parametrize(("old", "new", "env", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_cli_exit_and_no_traceback(kit_copy, old, new, env, expected):
    write(kit_copy, _apply(old, new))
    proc = run_inv("config", "--check", cwd=kit_copy, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert expected in proc.stderr
    # The last line carries the fix after an em dash.
    assert " — " in proc.stderr.strip().splitlines()[-1]


FILE_LINES = [
    ("port: 3000", "port: 70000", "services.appview.port"),
    ("[linux/amd64]", "[linux/amd64, arm64]", "image.platforms[1]"),
    ("name: atbb", "name: AtBB", "image.name"),
]


@pytest.mark.parametrize(("old", "new", "key"), FILE_LINES)
def test_file_errors_carry_the_line(tmp_path, old, new, key):
    text = BASE.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    assert f"atbb.yaml:{line_of(text, new.split(',')[0].strip('['))}: {key}" in info.value.what


def test_debug_shows_traceback(kit_copy):
    write(kit_copy, BASE.replace("port: 3000", "port: 70000"))
    proc = run_inv("config", "--check", cwd=kit_copy, env={"ATBB_DEBUG": "1"})
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_precedence_file_env_flag(tmp_path):
    path = write(tmp_path, BASE)
    cfg = load_config(path, environ={})
    assert cfg.image.base == "node:22-alpine"
    assert cfg.sources()["image.base"] == f"file atbb.yaml:{line_of(BASE, 'base: node:22-alpine')}"

    cfg = load_config(path, environ={"ATBB_IMAGE_BASE": "local/node:22", "ATBB_IMAGE_OWNER": "Acme"})
    assert (cfg.image.base, cfg.image.owner) == ("local/node:22", "Acme")
    assert cfg.sources()["image.base"] == "env ATBB_IMAGE_BASE"

    cfg = load_config(path, environ={"ATBB_IMAGE_BASE": "local/node:22"}, overrides={"image.base": "flag/node:22"})
    assert cfg.image.base == "flag/node:22"
    assert cfg.sources()["image.base"] == "flag"


def test_env_lists_and_ints_are_typed(tmp_path):
    cfg = load_config(
        write(tmp_path, BASE),
        environ={"ATBB_IMAGE_PLATFORMS": "linux/amd64, linux/arm64", "ATBB_COMPOSE_HOST_PORT": "9090"},
    )
    assert cfg.image.platforms == ("linux/amd64", "linux/arm64")
    assert cfg.compose.host_port == 9090


def test_missing_keys_take_documented_defaults(tmp_path):
    minimal = "\n".join(
        [
            "services:",
            "  appview: {package: '@atbb/appview', port: 3000, command: [node, a.js]}",
            "  web: {package: '@atbb/web', port: 3001, command: [node, w.js]}",
            "routes: [{path: /api/, service: appview}, {path: /, service: web}]",
        ]
    )
    cfg = load_config(write(tmp_path, minimal), environ={})
    items = {path: (value, source) for path, value, source in effective_items(cfg)}
    assert items["image.registry"] == ("ghcr.io", "default")
    assert items["compose.host_port"] == (8080, "default")
    assert items["services.web.port"][1].startswith("file atbb.yaml:")
    assert items["services.web.cwd"] == (".", "default")
    assert items["services.web.grace"] == (5, "default")
    assert items["migrate.command"] == ((), "default")
    assert items["runtime.include"] == (("*/dist",), "default")
    assert items["csp.mode"] == ("enforce", "default")
    assert items["nginx.worker_connections"] == (4096, "default")
    assert cfg.headers == DEFAULT_HEADERS
    assert cfg.health_service() == "appview"


def test_config_is_frozen(tmp_path):
    cfg = load_config(write(tmp_path, BASE), environ={})
    with pytest.raises(Exception, match="frozen"):
        cfg.image.name = "other"  # type: ignore[misc]


def test_service_for_uses_longest_prefix(tmp_path):
    cfg = load_config(write(tmp_path, BASE), environ={})
    assert cfg.service_for("/api/health") == "appview"
    assert cfg.service_for("/apix") == "web"
    assert cfg.service_for("/") == "web"


@pytest.mark.parametrize(
    ("path", "var"),
    [
        ("image.base", "ATBB_IMAGE_BASE"),
        ("compose.host_port", "ATBB_COMPOSE_HOST_PORT"),
        ("monorepo", "ATBB_MONOREPO"),
    ],
)
def test_env_names(path, var):
    assert env_name(path) == var


def test_config_shows_sources_and_redacts_tokens(kit_copy):
    proc = run_inv(
        "config", cwd=kit_copy, env={"ATBB_IMAGE_OWNER": "acme", "ATBB_REGISTRY_TOKEN": "hunter2-very-secret"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "env ATBB_IMAGE_OWNER" in proc.stdout
    assert "file atbb.yaml:" in proc.stdout
    assert "hunter2-very-secret" not in proc.stdout + proc.stderr
    assert "***" in proc.stdout


def test_compose_and_credential_variables_are_not_config_keys(tmp_path):
    # docker-compose.example.yml reads these; exporting them must not stop the kit.
    env = {
        "ATBB_IMAGE": "ghcr.io/acme/atbb:1.0.0",
        "ATBB_HOST_PORT": "127.0.0.1:8080",
        "ATBB_ENV_FILE": ".env",
        "ATBB_REGISTRY_TOKEN": "t",
    }
    cfg = load_config(write(tmp_path, BASE), environ=env)
    assert cfg.compose.host_port == 8080


def test_an_unreadable_atbb_config_path_is_a_one_line_error():
    proc = run_inv("config", "--check", env={"ATBB_CONFIG": "/tmp/" + "x" * 5000})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ATBB_CONFIG points at /tmp/xxx") and "cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
