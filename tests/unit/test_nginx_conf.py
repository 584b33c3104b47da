"""render() and check_drift(): pure text in, text out; the nginx binary is exercised in integration."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from atbb_kit.core import nginx_conf
from atbb_kit.core.config import DEFAULT_CSP, DEFAULT_HEADERS, Config, load_config
from tests.conftest import ROOT

SERVICES = {
    "appview": {"command": ["node", "a.js"], "port": 3000},
    "web": {"command": ["node", "w.js"], "port": 3001},
}
ROUTES = [
    {"path": "/api/", "service": "appview"},
    {"path": "/static/", "service": "web", "cache": "immutable"},
    {"path": "/", "service": "web"},
]


def make_cfg(routes=None, appview_port=3000, web_port=3001, health="/api/health", **top):
    """A real, validated Config (the renderer never sees anything else)."""
    services = copy.deepcopy(SERVICES)
    services["appview"]["port"] = appview_port
    services["web"]["port"] = web_port
    data = {
        "services": services,
        "routes": copy.deepcopy(ROUTES) if routes is None else routes,
        "health": {"path": health},
        **top,
    }
    return Config.model_validate(data)


def location_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"location ((?:= )?\S+) \{\n(.*?)\n        \}", text, flags=re.S))


def server_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"    server \{\n.*?server_name (\S+);\n(.*?)\n    \}\n", text, flags=re.S))


def test_committed_config_is_the_rendering_of_atbb_yaml():
    cfg = load_config(ROOT / "atbb.yaml", environ={})
    assert nginx_conf.check_drift(cfg, ROOT / "nginx" / "nginx.conf") is None
    assert (ROOT / "nginx" / "nginx.conf").read_text() == nginx_conf.render(cfg)


def test_routes_become_proxy_locations_for_their_upstream():
    blocks = location_blocks(nginx_conf.render(make_cfg()))
    assert set(blocks) == {"/api/", "/", "/static/"}
    assert "proxy_pass http://atbb_appview;" in blocks["/api/"]
    assert "proxy_pass http://atbb_web;" in blocks["/"]
    assert "proxy_pass http://atbb_web;" in blocks["/static/"]


def test_locations_are_written_longest_prefix_first():
    routes = [{"path": p, "service": s} for p, s in (("/", "web"), ("/api/", "appview"), ("/api/v2/", "web"))]
    routes.append({"path": "/api/health", "service": "appview", "match": "exact"})
    text = nginx_conf.render(make_cfg(routes=routes))
    order = re.findall(r"location ((?:= )?\S+) \{", text)
    assert order == ["= /api/health", "/api/v2/", "/api/", "/"]


def test_upstream_ports_and_keepalive_come_from_services():
    text = nginx_conf.render(make_cfg(appview_port=4100, web_port=4200))
    assert re.search(r"upstream atbb_appview \{\s+server 127\.0\.0\.1:4100;\s+keepalive \d+;", text)
    assert re.search(r"upstream atbb_web \{\s+server 127\.0\.0\.1:4200;\s+keepalive \d+;", text)
    # Shorter than Node's 5 s keepAliveTimeout, or a reused socket races Node's close into a 502.
    assert "keepalive_timeout 4s;" in text


def test_every_location_carries_every_security_header_with_always():
    blocks = location_blocks(nginx_conf.render(make_cfg()))
    assert len(blocks) == 3
    for path, body in blocks.items():
        for name, value in [*DEFAULT_HEADERS.items(), ("Content-Security-Policy", DEFAULT_CSP)]:
            assert f'add_header {name} "{value}" always;' in body, (path, name)
            assert f"proxy_hide_header {name};" in body, (path, name)


def test_default_csp_lets_inline_hydration_scripts_run_but_nothing_foreign():
    # The defaults must not break server-rendering frameworks (inline hydration <script>s), and must
    # still refuse scripts from other origins, plugins, framing and base-tag hijacks.
    directives = dict(d.strip().split(" ", 1) for d in DEFAULT_CSP.split(";"))
    assert directives["script-src"] == "'self' 'unsafe-inline'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'"


HEADER_CASES = [
    # (headers:, csp:, header -> expected: value added, "hidden" (app's dropped, none added), "app" (untouched))
    ({}, {}, {"X-Frame-Options": "DENY", "Content-Security-Policy": DEFAULT_CSP}),
    (
        {"X-Frame-Options": "SAMEORIGIN"},
        {},
        {"X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": DEFAULT_HEADERS["Referrer-Policy"]},
    ),
    ({"X-Frame-Options": "app"}, {}, {"X-Frame-Options": "app", "X-Content-Type-Options": "nosniff"}),
    ({"Permissions-Policy": "remove"}, {}, {"Permissions-Policy": "hidden"}),
    ({"Strict-Transport-Security": "max-age=63072000"}, {}, {"Strict-Transport-Security": "max-age=63072000"}),
    (
        {},
        {"mode": "report-only"},
        {"Content-Security-Policy-Report-Only": DEFAULT_CSP, "Content-Security-Policy": "hidden"},
    ),
    ({}, {"mode": "app"}, {"Content-Security-Policy": "app", "Content-Security-Policy-Report-Only": "app"}),
    ({}, {"mode": "remove"}, {"Content-Security-Policy": "hidden", "Content-Security-Policy-Report-Only": "hidden"}),
    ({}, {"policy": "default-src 'none'"}, {"Content-Security-Policy": "default-src 'none'"}),
]


@pytest.mark.parametrize(("headers", "csp", "expected"), HEADER_CASES)
def test_header_policy_table(headers, csp, expected):
    body = location_blocks(nginx_conf.render(make_cfg(headers=headers, csp=csp)))["/"]
    for name, want in expected.items():
        hidden = f"proxy_hide_header {name};" in body
        added = re.search(rf'add_header {re.escape(name)} "(.*)" always;', body)
        if want == "app":
            assert not hidden and not added, name
        elif want == "hidden":
            assert hidden and not added, name
        else:
            assert hidden and added and added.group(1) == want, name


def test_exact_routes_and_hosts_become_their_own_locations_and_servers():
    routes = [
        *copy.deepcopy(ROUTES),
        {"path": "/api/session", "service": "web", "match": "exact"},
        {"path": "/", "service": "appview", "host": "api.example.org"},
    ]
    text = nginx_conf.render(make_cfg(routes=routes))
    servers = server_blocks(text)
    assert set(servers) == {"_", "api.example.org"}
    default = location_blocks(servers["_"])
    assert "proxy_pass http://atbb_web;" in default["= /api/session"]
    assert "proxy_pass http://atbb_appview;" in default["/"] or "proxy_pass http://atbb_web;" in default["/"]
    assert "proxy_pass http://atbb_web;" in default["/"]
    named = location_blocks(servers["api.example.org"])
    # The host's own "/" shadows the host-less one; the other host-less routes still apply there.
    assert "proxy_pass http://atbb_appview;" in named["/"]
    assert set(named) == {"= /api/session", "/api/", "/static/", "/"}
    assert "listen 80 default_server;" in text and "listen 80;" in text


def test_limits_come_from_the_nginx_section():
    text = nginx_conf.render(
        make_cfg(nginx={"worker_connections": 8192, "client_header_timeout": 7, "requests_per_client": 0})
    )
    assert "worker_connections 8192;" in text
    assert "worker_rlimit_nofile 16448;" in text
    assert "client_header_timeout 7s;" in text
    assert "limit_conn atbb_per_client" not in text
    default = nginx_conf.render(make_cfg())
    assert "limit_conn atbb_per_client 512;" in default
    assert "client_header_timeout 10s;" in default
    assert "reset_timedout_connection on;" in default


@pytest.mark.parametrize(
    ("trusted", "present", "absent"),
    [
        (None, ["set_real_ip_from 172.16.0.0/12;", "set_real_ip_from fc00::/7;", "real_ip_recursive on;"], []),
        ([], ["# real_ip: off"], ["set_real_ip_from", "real_ip_header"]),
        (["203.0.113.0/24"], ["set_real_ip_from 203.0.113.0/24;", "real_ip_header X-Forwarded-For;"], ["10.0.0.0/8"]),
    ],
    ids=["default-private-ranges", "none-trusted", "one-network"],
)
def test_trusted_proxies_become_realip_directives(trusted, present, absent):
    cfg = make_cfg() if trusted is None else make_cfg(nginx={"trusted_proxies": trusted})
    text = nginx_conf.render(cfg)
    for line in present:
        assert line in text
    for line in absent:
        assert line not in text
    # Whatever is trusted, the chain passed on names the peer that really connected.
    assert "proxy_set_header X-Forwarded-For   $atbb_forwarded_for;" in text
    assert '"$http_x_forwarded_for, $realip_remote_addr"' in text


def test_only_the_static_location_gets_long_cache_and_not_for_errors():
    blocks = location_blocks(nginx_conf.render(make_cfg()))
    cache_line = f'add_header Cache-Control "{nginx_conf.STATIC_CACHE_CONTROL}";'
    assert cache_line in blocks["/static/"]
    assert "max-age=31536000" in nginx_conf.STATIC_CACHE_CONTROL
    assert "Cache-Control" not in blocks["/api/"] + blocks["/"]


def test_no_static_location_without_a_cached_route():
    routes = [r for r in ROUTES if "cache" not in r]
    assert set(location_blocks(nginx_conf.render(make_cfg(routes=routes)))) == {"/api/", "/"}


def test_health_path_is_the_unlogged_local_probe():
    text = nginx_conf.render(make_cfg(health="/api/healthz"))
    assert '"127.0.0.1 /api/healthz" 0;' in text
    assert "access_log /dev/stdout atbb_json buffer=64k flush=100ms if=$atbb_loggable;" in text


def test_listen_and_runtime_dir_are_parameters_for_unprivileged_tests():
    default = nginx_conf.render(make_cfg())
    assert "listen 80 default_server;" in default
    assert "pid /tmp/nginx.pid;" in default
    variant = nginx_conf.render(make_cfg(), listen=18080, runtime_dir="/var/tmp/x/")
    assert "listen 18080 default_server;" in variant
    assert "pid /var/tmp/x/nginx.pid;" in variant
    assert "proxy_temp_path       /var/tmp/x/nginx-proxy;" in variant
    assert "/tmp/" not in variant.replace("/var/tmp/x/", "")


def test_writable_paths_all_live_under_the_runtime_dir():
    text = nginx_conf.render(make_cfg(), runtime_dir="/run/rw")
    paths = re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+);", text, flags=re.M)
    assert len(paths) == 6
    assert all(p.startswith("/run/rw/") for p in paths)


def test_rendering_has_no_placeholders_left_and_no_template_comments():
    text = nginx_conf.render(make_cfg())
    assert "%%" not in text
    assert not any(line.startswith("##") for line in text.splitlines())
    assert text.startswith("# GENERATED")


def test_no_distro_includes():
    directives = [line for line in nginx_conf.render(make_cfg()).splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if re.match(r"\s*include\b", line)]


def test_renderer_refuses_paths_that_would_change_the_config_meaning():
    cfg = make_cfg()
    bad = cfg.model_copy(update={"routes": (cfg.routes[0].model_copy(update={"path": "/api {"}), *cfg.routes[1:])})
    with pytest.raises(ValueError, match=re.escape("routes[0].path")):
        nginx_conf.render(bad)
    with pytest.raises(ValueError, match=re.escape("health.path")):
        nginx_conf.render(cfg.model_copy(update={"health": cfg.health.model_copy(update={"path": "/a; x"})}))


def test_check_drift_none_when_file_matches(tmp_path: Path):
    cfg = make_cfg()
    target = tmp_path / "nginx.conf"
    nginx_conf.write(cfg, target)
    assert nginx_conf.check_drift(cfg, target) is None


def test_check_drift_names_the_first_differing_line(tmp_path: Path):
    cfg = make_cfg()
    target = tmp_path / "nginx.conf"
    nginx_conf.write(cfg, target)
    lines = target.read_text().splitlines(keepends=True)
    port_line = next(i for i, line in enumerate(lines) if "127.0.0.1:3000" in line)
    lines[port_line] = lines[port_line].replace("3000", "3999")
    target.write_text("".join(lines))
    message = nginx_conf.check_drift(cfg, target)
    assert message is not None
    assert "\n" not in message
    assert f"line {port_line + 1}" in message
    assert str(target) in message


def test_check_drift_when_config_changes(tmp_path: Path):
    target = tmp_path / "nginx.conf"
    nginx_conf.write(make_cfg(), target)
    assert nginx_conf.check_drift(make_cfg(web_port=3002), target) is not None


def test_check_drift_when_file_is_truncated(tmp_path: Path):
    cfg = make_cfg()
    target = tmp_path / "nginx.conf"
    full = nginx_conf.render(cfg).splitlines(keepends=True)
    target.write_text("".join(full[:-3]))
    message = nginx_conf.check_drift(cfg, target)
    assert message is not None
    assert f"line {len(full) - 2}" in message


def test_check_drift_when_file_is_missing(tmp_path: Path):
    message = nginx_conf.check_drift(make_cfg(), tmp_path / "absent.conf")
    assert message is not None
    assert "does not exist" in message


def test_inv_nginx_conf_detects_and_repairs_drift(kit_copy):
    from tests.conftest import run_inv

    assert run_inv("nginx-conf", "--check", cwd=kit_copy).returncode == 0

    yaml_path = kit_copy / "atbb.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("port: 3001", "port: 3101"))
    drifted = run_inv("nginx-conf", "--check", cwd=kit_copy)
    assert drifted.returncode != 0
    assert "differs from the rendering of atbb.yaml" in drifted.stderr
    assert "inv nginx-conf" in drifted.stderr

    assert run_inv("nginx-conf", cwd=kit_copy).returncode == 0
    assert "127.0.0.1:3101" in (kit_copy / "nginx" / "nginx.conf").read_text()
    assert run_inv("nginx-conf", "--check", cwd=kit_copy).returncode == 0


def test_every_bundled_example_has_its_rendering_committed():
    # Each example's atbb.yaml names its own rendered nginx.conf; a stale one would fail its image build.
    for config in (ROOT / "atbb.yaml", ROOT / "examples" / "board" / "atbb.yaml"):
        cfg = load_config(config, environ={})
        assert nginx_conf.check_drift(cfg, cfg.nginx_conf_path()) is None, config
