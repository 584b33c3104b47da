"""render() and check_drift(): pure text in, text out; the nginx binary is exercised in integration."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from atbb_kit import nginx_conf
from atbb_kit.config import load_config
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def make_cfg(
    routes=(("/api/", "appview"), ("/", "web")),
    appview_port=3000,
    web_port=3001,
    static_path="/static/",
    health="/api/health",
):
    return NS(
        routes=[NS(path=p, service=s) for p, s in routes],
        services={"appview": NS(port=appview_port), "web": NS(port=web_port, static_path=static_path)},
        health=NS(path=health),
    )


def location_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"location (\S+) \{\n(.*?)\n        \}", text, flags=re.S))


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
    text = nginx_conf.render(make_cfg(routes=(("/", "web"), ("/api/", "appview"), ("/api/v2/", "web"))))
    order = re.findall(r"location (\S+) \{", text)
    assert order == ["/api/v2/", "/static/", "/api/", "/"]


def test_upstream_ports_and_keepalive_come_from_services():
    text = nginx_conf.render(make_cfg(appview_port=4100, web_port=4200))
    assert re.search(r"upstream atbb_appview \{\s+server 127\.0\.0\.1:4100;\s+keepalive \d+;", text)
    assert re.search(r"upstream atbb_web \{\s+server 127\.0\.0\.1:4200;\s+keepalive \d+;", text)
    # Shorter than Node's 5 s keepAliveTimeout, or a reused socket races Node's close into a 502.
    assert "keepalive_timeout 4s;" in text


def test_every_location_carries_every_security_header_with_always():
    for path, body in location_blocks(nginx_conf.render(make_cfg())).items():
        for name, _ in nginx_conf.SECURITY_HEADERS:
            assert re.search(rf'add_header {name} ".+" always;', body), (path, name)
            assert f"proxy_hide_header {name};" in body, (path, name)


def test_only_the_static_location_gets_long_cache_and_not_for_errors():
    blocks = location_blocks(nginx_conf.render(make_cfg()))
    cache_line = f'add_header Cache-Control "{nginx_conf.STATIC_CACHE_CONTROL}";'
    assert cache_line in blocks["/static/"]
    assert "max-age=31536000" in nginx_conf.STATIC_CACHE_CONTROL
    assert "Cache-Control" not in blocks["/api/"] + blocks["/"]


def test_no_static_location_without_static_path():
    assert set(location_blocks(nginx_conf.render(make_cfg(static_path=None)))) == {"/api/", "/"}


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


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (make_cfg(routes=(("/api/", "nope"), ("/", "web"))), "unknown service 'nope'"),
        (make_cfg(routes=(("/api/", "appview"),)), "no route for '/'"),
        (make_cfg(routes=(("/", "web"), ("/", "appview"))), "routed twice"),
        (make_cfg(routes=(("/static/", "appview"), ("/", "web"))), "also a route path"),
        (make_cfg(routes=(("/api {", "appview"), ("/", "web"))), "not a plain URL path"),
        (make_cfg(health="/api/health; x"), "health.path"),
        (make_cfg(appview_port=70000), "services.appview.port"),
    ],
)
def test_invalid_config_is_refused_with_the_key_path(cfg, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        nginx_conf.render(cfg)


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
    from tests.conftest import ROOT, run_inv

    (kit_copy / "nginx").mkdir()
    (kit_copy / "nginx" / "nginx.conf").write_text((ROOT / "nginx" / "nginx.conf").read_text())
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
