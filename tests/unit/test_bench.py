"""The pure half of `inv bench`: targets, wrk parsing, the ABBA schedule, rows and documents. No Docker, no timing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from atbb_kit.commands.load import invoke_command, peer_command, with_args, with_label, wrk_command
from atbb_kit.commands.netns import netns_probe, netns_python
from atbb_kit.ops import bench
from tests.conftest import ROOT

RECORDED = ROOT / "tests" / "unit" / "data" / "bench-results.json"  # a real `inv bench --quick` document


@pytest.fixture(scope="module")
def cfg():
    from atbb_kit.core.config import load_config

    return load_config(ROOT / "atbb.yaml", environ={})


@pytest.fixture(scope="module")
def board():
    from atbb_kit.core.config import load_config

    return load_config(ROOT / "examples" / "board" / "atbb.yaml", environ={})


# --- targets and figures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compare", "op", "limit", "value", "ratio", "expected"),
    [
        ("ratio", "<=", 0.35, 10.0, 0.35, True),  # the boundary counts as met for <=
        ("ratio", "<=", 0.35, 10.0, 0.351, False),
        ("ratio", ">=", 0.70, 5000.0, 0.70, True),
        ("ratio", ">=", 0.70, 5000.0, 0.69, False),
        ("value", "<", 2.0, 2.0, None, False),  # strictly under
        ("value", "<", 2.0, 1.99, None, True),
        ("value", "<=", 2.0, -3.0, 0.5, True),  # a negative added latency is noise, and within target
        ("value", ">", 1.0, 1.5, None, True),
        ("ratio", "<=", 1.5, 1.0, None, None),  # no baseline: cannot judge
        ("value", "<", 30e6, None, None, None),  # not measured: cannot judge
    ],
)
def test_target_evaluation(compare, op, limit, value, ratio, expected):
    assert bench.Target(compare, op, limit, "t").met(value, ratio) is expected


SPEC_RATIO = bench.Spec("x.r", "build", "r", "s", "cold", bench.Target("ratio", "<=", 0.35, "≤ 35% of cold"))
SPEC_VALUE = bench.Spec("x.v", "start", "v", "s", target=bench.Target("value", "<", 2.0, "< 2 s"))
SPEC_INFO = bench.Spec("x.i", "image", "i", "bytes")


@pytest.mark.parametrize(
    ("figure", "ratio", "verdict"),
    [
        (bench.Figure(SPEC_RATIO, 7.0, 20.0), 0.35, bench.MET),
        (bench.Figure(SPEC_RATIO, 12.0, 20.0), 0.6, bench.NOT_MET),
        (bench.Figure(SPEC_RATIO, 12.0, None), None, bench.NOT_MEASURED),  # no baseline: the ratio was not measured
        (bench.Figure(SPEC_RATIO, 12.0, 0.0), None, bench.NOT_MEASURED),  # never divide by zero
        (bench.Figure(SPEC_VALUE, 0.6), None, bench.MET),
        (bench.Figure(SPEC_VALUE, 2.4), None, bench.NOT_MET),
        (bench.Figure(SPEC_INFO, 1e6), None, bench.NO_TARGET),
        (bench.Figure(SPEC_VALUE, None), None, bench.NOT_MEASURED),
        (bench.Figure(SPEC_INFO, None), None, bench.NOT_MEASURED),
    ],
)
def test_figure_ratio_and_verdict(figure, ratio, verdict):
    assert figure.ratio == pytest.approx(ratio) if ratio is not None else figure.ratio is None
    assert figure.verdict == verdict


def test_figure_json_carries_the_target_and_the_verdict():
    data = bench.Figure(SPEC_RATIO, 7.0, 20.0, samples=(7.0, 7.2)).to_json()
    assert data["ratio"] == pytest.approx(0.35)
    assert data["met"] is True
    assert data["verdict"] == "met"
    assert data["target"] == {"compare": "ratio", "op": "<=", "limit": 0.35, "text": "≤ 35% of cold"}
    assert data["samples"] == [7.0, 7.2]


# The targets of issues 9 and 18, as the catalog must state them.
TARGETS = [
    ("cli.list_seconds", "ratio", "<=", 1.5),
    ("cli.tags_seconds", "ratio", "<=", 3.0),
    ("cli.config_check_seconds", "ratio", "<=", 3.0),
    ("build.no_change_seconds", "ratio", "<=", 0.05),
    ("build.source_change_seconds", "ratio", "<=", 0.30),
    ("build.dependency_added_seconds", "ratio", "<=", 0.50),
    ("image.added_vs_naive_bytes", "ratio", "<=", 0.15),
    ("image.added_vs_needs_bytes", "ratio", "<=", 1.0),
    ("start.first_200_seconds", "value", "<", 2.0),
    ("start.healthy_after_first_200_seconds", "value", "<=", 2.0),
    ("proxy.api.c8.nginx.p50_added_us", "value", "<=", 150.0),
    ("proxy.page.c8.nginx.rps", "ratio", ">=", 0.95),
    ("proxy.page.c64.nginx.rps", "ratio", ">=", 0.95),
    *[(f"proxy.{r}.c{c}.nginx_vs_best_peer.rps", "ratio", ">=", 0.95) for r in ("api", "page") for c in (8, 64)],
    *[(f"proxy.{r}.c{c}.nginx_vs_best_peer.p99_ms", "ratio", "<=", 1.05) for r in ("api", "page") for c in (8, 64)],
    ("bench.total_seconds", "value", "<", 900.0),
]


@pytest.mark.parametrize(("key", "compare", "op", "limit"), TARGETS)
def test_catalog_states_the_issue_targets(key, compare, op, limit):
    target = bench.spec_index(bench.catalog())[key].target
    assert (target.compare, target.op, target.limit) == (compare, op, limit)


@pytest.mark.parametrize(
    "key",
    [
        "build.cold_seconds",
        "image.added_bytes",  # the absolute budget is image.size_budget_mb, checked by `inv image`
        "image.added_without_migrate_bytes",
        "image.migrate_bytes",
        "start.healthy_seconds",
        "proxy.api.c8.nginx.rps",  # the share of direct on the cheap route measures two shared cores
        "proxy.api.c64.nginx.p50_added_us",  # the p50 target is for 8 connections
        "proxy.page.c8.haproxy.rps",  # peers are measured, not judged
        "proxy.api.c8.caddy.p50_added_us",
        "proxy.page.c64.nginx.p99_added_us",
        "cli.bare_list_seconds",
    ],
)
def test_report_only_figures_have_no_target(key):
    assert bench.spec_index(bench.catalog())[key].target is None


def test_every_proxy_is_measured_on_every_route_and_connection_count():
    keys = {s.key for s in bench.catalog() if s.section == "proxy"}
    for route in ("api", "page"):
        for conns in bench.CONNECTIONS:
            for proxy in bench.PROXIES:
                for what in ("rps", "p50_added_us", "p99_added_us"):
                    assert f"proxy.{route}.c{conns}.{proxy}.{what}" in keys
    assert bench.PATHS == ("direct", "nginx", "haproxy", "caddy")


def test_catalog_keys_are_unique_and_belong_to_known_sections():
    specs = bench.catalog()
    assert len({s.key for s in specs}) == len(specs)
    assert {s.section for s in specs} == {*bench.SECTIONS, "bench"}
    assert all(s.key.startswith(f"{s.section}.") for s in specs)


@pytest.mark.parametrize(
    ("quick", "complete", "limit"),
    [(False, True, 900.0), (True, True, 180.0), (False, False, None), (True, False, None)],
)
def test_wall_time_target_depends_on_mode_and_completeness(quick, complete, limit):
    target = bench.spec_index(bench.catalog(quick=quick, complete=complete))["bench.total_seconds"].target
    assert (target.limit if target else None) == limit


def test_fill_keeps_catalog_order_and_says_why_a_figure_is_empty():
    specs = bench.catalog()
    index = bench.spec_index(specs)
    measured = {"start.first_200_seconds": bench.Figure(index["start.first_200_seconds"], 0.6)}
    figures = bench.fill(specs, measured, {"build": "section failed: boom"})
    assert [f.spec.key for f in figures] == [s.key for s in specs]
    by_key = {f.spec.key: f for f in figures}
    assert by_key["start.first_200_seconds"].value == 0.6
    assert by_key["build.cold_seconds"].value is None
    assert by_key["build.cold_seconds"].note == "section failed: boom"
    assert by_key["cli.list_seconds"].note == "not measured"


# --- wrk -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [("252.00us", 0.252), ("1.87ms", 1.87), ("1.02s", 1020.0), ("1.00m", 60_000.0), ("0.00us", 0.0), (" 3ms ", 3.0)],
)
def test_wrk_durations(text, ms):
    assert bench.duration_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "12", "1.2 ms", "5ns", "-1ms"])
def test_wrk_durations_refuse_garbage(text):
    with pytest.raises(ValueError, match="not a wrk duration"):
        bench.duration_ms(text)


WRK_OK = """\
Running 2s test @ http://127.0.0.1:80/api/ping
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   746.00us    1.23ms  29.45ms   95.12%
    Req/Sec     4.82k     2.01k    8.43k    62.50%
  Latency Distribution
     50%  746.00us
     75%    1.01ms
     90%    1.50ms
     99%   15.42ms
  18262 requests in 2.00s, 5.12MB read
Requests/sec:   9128.55
Transfer/sec:      2.56MB
"""

WRK_ERRORS = """\
Running 1m test @ http://127.0.0.1:3001/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    76.05ms   40.11ms   1.02s    88.00%
    Req/Sec   368.12     83.28   470.00     72.50%
  Latency Distribution
     50%   76.05ms
     75%   90.00ms
     90%  120.50ms
     99%    1.02s
  43986 requests in 1.00m, 44.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:    733.11
Transfer/sec:    752.90KB
"""


@pytest.mark.parametrize(
    ("text", "requests", "seconds", "rps", "latency", "socket", "non_2xx"),
    [
        (WRK_OK, 18262, 2.0, 9128.55, {50: 0.746, 75: 1.01, 90: 1.5, 99: 15.42}, 0, 0),
        (WRK_ERRORS, 43986, 60.0, 733.11, {50: 76.05, 75: 90.0, 90: 120.5, 99: 1020.0}, 5, 12),
    ],
)
def test_parse_wrk(text, requests, seconds, rps, latency, socket, non_2xx):
    r = bench.parse_wrk(text)
    assert (r.requests, r.seconds, r.rps) == (requests, pytest.approx(seconds), pytest.approx(rps))
    assert dict(r.latency_ms) == pytest.approx(latency)
    assert (r.socket_errors, r.non_2xx, r.errors) == (socket, non_2xx, socket + non_2xx)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unable to connect to 127.0.0.1:80 Connection refused\n", "did not report a finished run: unable to connect"),
        ("", r"\(no output\)"),
        (WRK_OK.replace("  Latency Distribution\n", ""), "no latency distribution"),
        (WRK_OK.replace("     99%   15.42ms\n", ""), "lacks the 50% or 99% line"),
    ],
)
def test_parse_wrk_refuses_unfinished_runs(text, message):
    with pytest.raises(ValueError, match=message):
        bench.parse_wrk(text)


@pytest.mark.parametrize(
    ("pairs", "order"),
    [
        (1, ("direct", "proxied")),
        (2, ("direct", "proxied", "proxied", "direct")),
        (3, ("direct", "proxied", "proxied", "direct", "direct", "proxied")),
    ],
)
def test_two_paths_rotate_as_abba_so_drift_hits_both(pairs, order):
    assert bench.rotation(("direct", "proxied"), pairs) == order


def test_four_paths_each_run_once_per_round_in_changing_positions():
    order = bench.rotation(bench.PATHS, 8)
    rounds = [order[i : i + 4] for i in range(0, 32, 4)]
    assert all(sorted(r) == sorted(bench.PATHS) for r in rounds)
    assert rounds[0] == bench.PATHS and rounds[1] == tuple(reversed(bench.PATHS))  # forward, then backward
    firsts = [r[0] for r in rounds]
    assert all(firsts.count(path) == 2 for path in bench.PATHS)  # every path leads as often as the others


def _wrk(rps, p50, p99, errors=0):
    return bench.WrkResult(int(rps), 1.0, rps, {50: p50, 99: p99}, non_2xx=errors)


def test_path_stats_are_medians_of_segments():
    stats = bench.PathStats.of([_wrk(100, 1.0, 9.0), _wrk(300, 2.0, 3.0), _wrk(200, 9.0, 4.0, errors=2)])
    assert (stats.rps, stats.p50_ms, stats.p99_ms, stats.errors) == (200, 2.0, 4.0, 2)
    with pytest.raises(ValueError):
        bench.PathStats.of([])


def _cell(nginx=(800, 0.35, 2.5), haproxy=(850, 0.30, 2.0), caddy=(400, 1.0, 4.0), errors=0):
    return {
        "direct": bench.PathStats.of([_wrk(1000, 0.2, 1.0)]),
        "nginx": bench.PathStats.of([_wrk(*nginx, errors=errors)]),
        "haproxy": bench.PathStats.of([_wrk(*haproxy)]),
        "caddy": bench.PathStats.of([_wrk(*caddy)]),
    }


def test_proxy_figures_give_each_proxy_its_share_and_added_microseconds():
    index = bench.spec_index(bench.catalog())
    figs = {f.spec.key: f for f in bench.proxy_figures(index, "api", 8, _cell(errors=3))}
    assert figs["proxy.api.c8.nginx.rps"].ratio == pytest.approx(0.8)
    assert figs["proxy.api.c8.nginx.p50_added_us"].value == pytest.approx(150.0)
    assert figs["proxy.api.c8.nginx.p50_added_us"].baseline == pytest.approx(200.0)
    assert figs["proxy.api.c8.nginx.p50_added_us"].verdict == bench.MET  # ≤ 150 µs, the boundary counts
    assert figs["proxy.api.c8.nginx.p99_added_us"].value == pytest.approx(1500.0)
    assert figs["proxy.api.c8.caddy.p50_added_us"].value == pytest.approx(800.0)
    assert "3 via nginx" in figs["proxy.api.c8.nginx.rps"].note


def test_nginx_is_judged_against_the_best_peer_of_each_measure():
    index = bench.spec_index(bench.catalog())
    figs = {f.spec.key: f for f in bench.proxy_figures(index, "page", 64, _cell())}
    rps, p99 = figs["proxy.page.c64.nginx_vs_best_peer.rps"], figs["proxy.page.c64.nginx_vs_best_peer.p99_ms"]
    assert (rps.value, rps.baseline, rps.note) == (800, 850, "best peer: haproxy")
    assert rps.verdict == bench.NOT_MET  # 94% of the best peer
    assert (p99.value, p99.baseline) == (2.5, 2.0)
    assert p99.verdict == bench.NOT_MET  # 1.25x the best peer's p99
    figs = {f.spec.key: f for f in bench.proxy_figures(index, "page", 64, _cell(nginx=(820, 0.3, 2.1)))}
    assert figs["proxy.page.c64.nginx_vs_best_peer.rps"].verdict == bench.MET  # 96.5%
    assert figs["proxy.page.c64.nginx_vs_best_peer.p99_ms"].verdict == bench.MET  # 1.05x


def test_cell_summary_names_every_path():
    line = bench.cell_summary(_cell())
    assert line.startswith("direct 1,000 req/s, p50 200 µs, p99 1000 µs")
    assert "nginx 800 (80%), +150/+1500 µs" in line
    assert "caddy 400 (40%)" in line


# --- routes from atbb.yaml -------------------------------------------------------------------------------


def test_routes_come_from_the_forum_config(cfg):
    routes = bench.bench_routes(cfg)
    assert [(r.key, r.path, r.service, r.port) for r in routes] == [
        ("api", cfg.health.path, "appview", 3000),
        ("page", "/", "web", 3001),
    ]


def test_routes_come_from_the_board_config(board):
    routes = bench.bench_routes(board)
    assert [(r.key, r.path, r.service, r.port) for r in routes] == [
        ("api", "/api/boards", "api", 4000),
        ("page", "/", "web", 4001),
    ]
    labels = [s.label for s in bench.catalog(routes=routes) if s.section == "proxy"]
    assert "/api/boards c8: p50 added by nginx (in image)" in labels
    assert not any("/api/ping" in label or "/api/health" in label for label in labels)


def test_a_health_path_of_slash_gives_one_route(cfg):
    one = cfg.model_copy(update={"health": cfg.health.model_copy(update={"path": "/"})})
    assert [r.key for r in bench.bench_routes(one)] == ["api"]


# --- the peers' configurations ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["haproxy", "caddy"])
def test_peer_configs_carry_routes_ports_and_headers_from_atbb_yaml(kind, board):
    text = bench.render_peer_config(kind, board, port=18081, threads=2)
    assert text.startswith("# GENERATED by atbb_kit/ops/bench.py")
    assert "NOT for deployment" in text
    assert "%%{" not in text and "\n##" not in text
    assert "127.0.0.1:4000" in text and "127.0.0.1:4001" in text  # the board's upstream ports
    assert "nosniff" in text and "frame-ancestors 'none'" in text  # headers: and csp: from the board's file
    assert "X-Powered-By" in text
    assert "public, max-age=31536000, immutable" in text  # /assets/ is cache: immutable


def test_haproxy_matches_nginx_threads_routes_and_keepalive(cfg):
    text = bench.render_peer_config("haproxy", cfg, port=18081, threads=2)
    assert "    nbthread 2" in text
    assert "    bind 127.0.0.1:18081" in text
    assert "http-reuse always" in text
    assert "\n    log " not in text  # no access log
    uses = [ln.strip() for ln in text.splitlines() if "_backend " in ln]
    assert uses == [
        "use_backend atbb_web if { path_beg /static/ }",
        "use_backend atbb_appview if { path_beg /api/ }",
        "default_backend atbb_web",
    ]
    assert "server appview 127.0.0.1:3000" in text


def test_caddy_is_http1_without_admin_and_keeps_upstream_connections(cfg):
    text = bench.render_peer_config("caddy", cfg, port=18082, threads=2)
    assert "http://:18082 {" in text and "bind 127.0.0.1" in text
    assert "protocols h1" in text and "admin off" in text and "auto_https off" in text
    assert "\thandle /api/* {" in text and "\thandle /static/* {" in text and "\thandle {" in text
    assert text.count("keepalive_idle_conns_per_host 64") == 3


def test_values_that_would_change_a_peer_config_are_escaped_or_refused():
    assert bench._haproxy_quote('a "b" 100%') == '"a \\"b\\" 100%%"'
    with pytest.raises(ValueError, match="braces"):
        bench._caddy_quote("default-src {x}")


@pytest.mark.parametrize(("kind", "program"), [("haproxy", "haproxy"), ("caddy", "caddy")])
def test_peers_run_in_the_container_network_namespace(kind, program, tmp_path):
    cmd = peer_command(kind, 4242, tmp_path / "conf")
    assert cmd.argv[:5] == ("nsenter", "--target=4242", "--net", "--", program)
    assert str(tmp_path / "conf") in cmd.argv
    assert program in cmd.install_hint


# --- commands --------------------------------------------------------------------------------------------


def test_wrk_runs_in_the_container_network_namespace():
    cmd = wrk_command(4242, "http://127.0.0.1:80/api/ping", connections=8, seconds=2, threads=2)
    assert cmd.argv == (
        "nsenter",
        "--target=4242",
        "--net",
        "--",
        "wrk",
        "--threads=2",
        "--connections=8",
        "--duration=2s",
        "--timeout=5s",
        "--latency",
        "http://127.0.0.1:80/api/ping",
    )


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (netns_probe(7), ("nsenter", "--target=7", "--net", "--", "true")),
        (
            netns_python(7, "print(1)", "a", "b"),
            ("nsenter", "--target=7", "--net", "--", sys.executable, "-c", "print(1)", "a", "b"),
        ),
        (invoke_command(Path("/kit"), "--list"), (sys.executable, "-m", "invoke", "--list")),
        (invoke_command(Path("/kit"), "config", "--check"), (sys.executable, "-m", "invoke", "config", "--check")),
    ],
    ids=["namespace probe", "python in the namespace", "inv --list", "inv config --check"],
)
def test_namespace_and_invoke_argv(cmd, expected):
    assert cmd.argv == expected


def test_invoke_command_runs_in_its_folder_with_the_env_given():
    cmd = invoke_command(Path("/kit"), "tags", env={"A": "1"})
    assert (cmd.cwd, dict(cmd.env)) == (Path("/kit"), {"A": "1"})
    assert invoke_command(Path("/kit"), "tags").env == {}


def test_wrk_never_asks_for_more_threads_than_connections():
    cmd = wrk_command(1, "http://x/", connections=1, seconds=1, threads=4)
    assert "--threads=1" in cmd.argv


def test_with_args_go_before_the_build_context():
    from atbb_kit.commands.base import Command

    cmd = Command(("docker", "build", "--tag", "t", "/ctx"))
    assert with_args(cmd, "--target", "build").argv == (
        "docker",
        "build",
        "--tag",
        "t",
        "--target",
        "build",
        "/ctx",
    )


def test_with_label_goes_before_the_build_context():
    from atbb_kit.commands.base import Command

    cmd = Command(("docker", "build", "--tag", "t", "/ctx"), env={"DOCKER_BUILDKIT": "1"})
    labelled = with_label(cmd, "atbb.bench", "abc")
    assert labelled.argv == ("docker", "build", "--tag", "t", "--label", "atbb.bench=abc", "/ctx")
    assert labelled.env == {"DOCKER_BUILDKIT": "1"}


@pytest.mark.parametrize(
    ("paths", "picked"),
    [
        (["packages/db/src/index.ts", "apps/web/src/render.ts", "apps/appview/src/app.ts"], "apps/appview/src/app.ts"),
        (["packages/db/src/index.ts", "packages/config/src/index.ts"], "packages/config/src/index.ts"),
        (["apps/web/test/x.test.mjs", "apps/web/src/app.ts"], "apps/web/src/app.ts"),  # only src/ counts
        (["apps/web/node_modules/x/src/a.js", "apps/web/src/b.mjs"], "apps/web/src/b.mjs"),
        (["apps/web/src/style.css", "README.md"], None),
        ([], None),
    ],
)
def test_pick_source_file(paths, picked):
    assert bench.pick_source_file(paths) == picked


BUILD_OUTPUT = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s

#4 [runtime 1/9] FROM docker.io/atbb-standin/node:22
#4 CACHED

#5 [pnpm 2/3] RUN npm install --global "pnpm@9.15.9"
#5 CACHED

#9 [build 1/2] COPY --from=sources /sources/ ./
#9 DONE 0.4s

#10 [build 2/2] RUN pnpm build
#10 0.512 > turbo run build
#10 DONE 3.1s
"""


def test_build_steps_count_what_ran_and_what_was_cached():
    assert bench.build_steps(BUILD_OUTPUT) == {"steps": 4, "cached": 2}  # [internal] steps are not Dockerfile steps
    assert bench.build_steps("") == {"steps": 0, "cached": 0}


# --- the image and what its services need ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_by", "kind"),
    [
        ("COPY /out/migrate/ /migrate/ # buildkit", "migrate package"),
        (
            "RUN /bin/sh -c set -eu;     if command -v apk >/dev/null 2>&1; then apk add --no-cache nginx tini;",
            "system packages",
        ),
        ("COPY /src/ ./ # buildkit", "other"),
        ("HEALTHCHECK &{...}", "other"),
    ],
)
def test_layer_kind(created_by, kind):
    assert bench.layer_kind(created_by) == kind


WALK = "\n".join(
    [
        '{"external": ["/src/node_modules/.pnpm/hono@4/node_modules/hono"], "workspace": ["/src/apps/api", '
        '"/src/packages/db"]}',
        '{"external": ["/src/node_modules/.pnpm/react@19/node_modules/react"], "workspace": ["/src/apps/web"]}',
    ]
)
INCLUDED = "./apps/api/dist\n./apps/api/data\n./apps/web/build\n./packages/db/dist\n./packages/dbx/dist\n"


def test_needs_are_dependencies_whole_and_workspace_packages_by_runtime_include():
    sets = bench.needs_paths(WALK, INCLUDED, ["@board/api", "@board/web"])
    assert sets["@board/api"] == [
        "src/apps/api/data",
        "src/apps/api/dist",
        "src/apps/api/package.json",
        "src/node_modules/.pnpm/hono@4/node_modules/hono",
        "src/packages/db/dist",  # packages/dbx is another package: a prefix is matched by folder
        "src/packages/db/package.json",
    ]
    assert sets["@board/web"] == [
        "src/apps/web/build",
        "src/apps/web/package.json",
        "src/node_modules/.pnpm/react@19/node_modules/react",
    ]


def test_needs_refuse_a_walk_that_does_not_match_the_packages():
    with pytest.raises(ValueError, match="expected 3 dependency closures, got 2"):
        bench.needs_paths(WALK, INCLUDED, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("text", "sections"),
    [
        (None, bench.SECTIONS),
        ("", bench.SECTIONS),
        ("proxy", ("proxy",)),
        ("proxy, build", ("build", "proxy")),  # always in execution order
        ("image,image", ("image",)),
    ],
)
def test_parse_only(text, sections):
    assert bench.parse_only(text) == sections


@pytest.mark.parametrize("text", ["proxies", "build,nope", ","])
def test_parse_only_refuses_unknown_sections(text):
    with pytest.raises(ValueError, match="choose from cli, build, image, start, proxy"):
        bench.parse_only(text)


@pytest.mark.parametrize(
    ("quick", "start_runs", "wrk_seconds", "segments", "dependency"), [(False, 5, 10, 5, True), (True, 2, 3, 3, False)]
)
def test_settings_per_mode(quick, start_runs, wrk_seconds, segments, dependency):
    s = bench.settings_for(quick)
    assert (s.start_runs, s.wrk_seconds, s.segments, s.dependency_step) == (
        start_runs,
        wrk_seconds,
        segments,
        dependency,
    )
    assert s.cli_runs == 10
    assert s.segments * s.wrk_segment_seconds == s.wrk_seconds


# --- display and documents -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "s", "—"),
        (19_600_000, "bytes", "19.6 MB"),
        (0.123, "s", "0.12 s"),
        (512.4, "s", "512 s"),
        (21234.36, "rps", "21,234 req/s"),
        (1.5, "ms", "1.50 ms"),
        (-4.43, "ms", "-4.43 ms"),
        (1234.5, "us", "1,234 µs"),
        (-12.0, "us", "-12 µs"),
    ],
)
def test_format_value(value, unit, text):
    assert bench.format_value(value, unit) == text


@pytest.mark.parametrize(
    ("ratio", "style", "text"),
    [
        (None, "share", "—"),
        (0.354, "share", "35%"),
        (1.234, "multiple", "1.23×"),
        (-0.0007, "share", "0%"),  # never "-0%"
        (-0.05, "share", "-5%"),
    ],
)
def test_format_ratio(ratio, style, text):
    assert bench.format_ratio(ratio, style) == text


def test_table_rows_name_every_target_with_its_ratio():
    index = bench.spec_index(bench.catalog())
    figures = [
        bench.Figure(index["build.source_change_seconds"], 12.0, 20.0),
        bench.Figure(index["cli.list_seconds"], 0.2, 0.16),
        bench.Figure(index["image.added_vs_needs_bytes"], 187_900_000, 82_400_000),
        bench.Figure(index["start.healthy_seconds"], 2.4),
        bench.Figure(index["proxy.api.c8.nginx.p50_added_us"], 120.4, 480.0),
        bench.Figure(index["proxy.page.c8.nginx.rps"], None, note="section failed: nsenter"),
    ]
    assert bench.table_rows(figures) == [
        ("rebuild after one source file changed", "12.00 s", "20.00 s (cold)", "60%", "≤ 30% of cold", "NOT MET"),
        ("`inv --list`", "0.20 s", "0.16 s (bare --list)", "1.25×", "≤ 1.5× bare", "met"),
        (
            "bytes added over the base (kit vs the services' needs)",
            "187.9 MB",
            "82.4 MB (services' needs)",
            "228%",
            "≤ the services' needs",
            "NOT MET",
        ),
        ("docker run → HEALTHCHECK healthy", "2.40 s", "", "", "", ""),
        ("/api/health c8: p50 added by nginx (in image)", "120 µs", "480 µs (direct p50)", "25%", "≤ 150 µs", "met"),
        ("/ c8: requests/s via nginx (in image)", "—", "", "", "≥ 95% of direct", "not measured"),
    ]
    assert bench.COLUMNS == ("figure", "value", "baseline", "ratio", "target", "met")


MACHINE = {
    "cores": 2,
    "memory_bytes": 24 * 2**30,
    "kernel": "6.1.0",
    "python": "3.11.7",
    "docker_server_version": "20.10.24",
    "docker_api_version": "1.41",
    "builder": "buildkit",
    "base_image": {"ref": "atbb-standin/node:22", "id": "sha256:" + "a" * 64},
    "postgres_image": {"ref": "atbb-standin/postgres:16", "id": "sha256:" + "b" * 64},
    "kit_git_sha": "c" * 40,
    "kit_dirty": True,
    "load_average_start": [1.0, 2.0, 3.0],
    "load_average_end": [2.0, 2.0, 3.0],
}


def _doc(figures, sections=None):
    return bench.document(
        run_id="abcd1234",
        mode="full",
        requested=bench.SECTIONS,
        started_at="2025-01-01T00:00:00Z",
        total_seconds=612.0,
        machine=MACHINE,
        settings=bench.settings_for(False).to_json(),
        sections=sections or {name: {"status": "ok", "error": None} for name in bench.SECTIONS},
        figures=figures,
        details={"proxy": {"cells": {}}},
    )


def test_document_shape():
    index = bench.spec_index(bench.catalog())
    doc = _doc([bench.Figure(index["start.first_200_seconds"], 0.6)])
    assert tuple(doc) == bench.DOCUMENT_FIELDS
    assert set(bench.MACHINE_FIELDS) <= set(doc["machine"])
    assert doc["schema_version"] == bench.SCHEMA_VERSION
    assert doc["figures"][0]["key"] == "start.first_200_seconds"
    assert set(doc["settings"]) >= {"quick", "start_runs", "wrk_seconds", "wrk_connections", "cli_runs"}


def test_markdown_has_machine_facts_table_and_notes():
    index = bench.spec_index(bench.catalog())
    figures = [
        bench.Figure(index["build.source_change_seconds"], 12.0, 20.0),
        bench.Figure(index["image.added_vs_needs_bytes"], 20.3e6, 4.7e6),
        bench.Figure(index["proxy.page.c8.nginx.rps"], None, note="wrk | failed"),
    ]
    sections = {name: {"status": "ok", "error": None} for name in bench.SECTIONS}
    sections["proxy"] = {"status": "failed", "error": "nsenter: permission denied"}
    text = bench.render_markdown(_doc(figures, sections), figures)
    lines = text.splitlines()
    assert lines[0] == "# atBB kit: latest benchmark results"
    assert "- kit commit `" + "c" * 40 + "` (working tree had uncommitted changes)" in lines
    assert any("2 cores, 24.0 GiB" in ln and "Docker server 20.10.24" in ln for ln in lines)
    assert any("`atbb-standin/node:22`" in ln for ln in lines)
    assert "| figure | value | baseline | ratio | target | met |" in lines
    assert (
        "| rebuild after one source file changed | 12.00 s | 20.00 s (cold) | 60% | ≤ 30% of cold | **NOT MET** |"
        in (lines)
    )
    assert "- / c8: requests/s via nginx (in image): wrk \\| failed" in lines  # pipes escaped
    assert any(ln.startswith("- bytes added over the base (kit vs the services' needs): needs:") for ln in lines)
    assert "- proxy: failed — nsenter: permission denied" in lines
    assert "## Charts" not in lines
    assert text.endswith("\n")


def test_markdown_links_the_charts_in_section_order():
    index = bench.spec_index(bench.catalog())
    figures = [bench.Figure(index["start.first_200_seconds"], 0.5)]
    charts = {"proxy": "performance-results/proxy.svg", "build": "performance-results/build.svg"}
    lines = bench.render_markdown(_doc(figures), figures, charts).splitlines()
    at = lines.index("## Charts")
    assert lines[at + 1 :] == [
        "",
        "### build",
        "",
        "![build chart](performance-results/build.svg)",
        "",
        "### proxy",
        "",
        "![proxy chart](performance-results/proxy.svg)",
    ]


def test_importing_the_tasks_does_not_import_the_bench():
    # `inv --list` must not pay for the bench modules (or rich, or the Docker SDK) at import time.
    heavy = ("atbb_kit.ops.bench", "rich", "docker")
    code = f"import sys, atbb_kit.tasks; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- charts ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded():
    import json

    return json.loads(RECORDED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def drawn(recorded, tmp_path_factory):
    pytest.importorskip("matplotlib")
    from atbb_kit.ops.bench_charts import write_charts

    return write_charts(recorded, tmp_path_factory.mktemp("charts"))


def test_a_recorded_run_draws_one_svg_per_section(drawn):
    assert set(drawn) == set(bench.SECTIONS)
    for section, path in drawn.items():
        assert path.name == f"{section}.svg"
        text = path.read_text(encoding="utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert f"{section}:" in text  # the title, kept as text


@pytest.mark.parametrize(
    ("section", "series"),
    [
        ("proxy", ["direct", "nginx (in image)", "HAProxy", "Caddy", "8 connections", "64 connections", "/api/health"]),
        ("build", ["cold", "nothing changed", "one source file changed", "target"]),
        ("image", ["kit image", "naive image", "services' needs", "nginx and tini"]),
        ("start", ["first 200 via nginx", "HEALTHCHECK healthy"]),
        ("cli", ["bare invoke --list", "inv --list", "inv tags", "inv config --check"]),
    ],
)
def test_each_chart_names_its_series(drawn, section, series):
    text = drawn[section].read_text(encoding="utf-8")
    for name in series:
        assert name in text, (section, name)


def test_charts_are_deterministic(recorded, drawn, tmp_path):
    from atbb_kit.ops.bench_charts import write_charts

    again = write_charts(recorded, tmp_path)
    assert again["proxy"].read_bytes() == drawn["proxy"].read_bytes()


def test_a_section_not_measured_gets_no_chart(recorded, tmp_path):
    pytest.importorskip("matplotlib")
    from atbb_kit.ops.bench_charts import write_charts

    partial = {**recorded, "sections": {**recorded["sections"], "proxy": {"status": "skipped"}}}
    partial["details"] = {k: v for k, v in recorded["details"].items() if k != "build"}
    partial["figures"] = [f for f in recorded["figures"] if f["section"] != "build"]
    assert set(write_charts(partial, tmp_path)) == {"cli", "image", "start"}


def test_the_chart_module_imports_matplotlib_only_to_draw():
    code = "import sys, atbb_kit.ops.bench_charts, atbb_kit.ops.bench_run; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
