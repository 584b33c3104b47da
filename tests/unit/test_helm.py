"""The Helm chart's generated values and their checks: atbb.yaml -> values.yaml / values.schema.json, and the
one-line errors for bad operator values. Pure: no renderer, no cluster (tests/integration/test_helm_render.py
renders the templates)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from atbb_kit.commands.helm import chart_render, go_build, helm_template
from atbb_kit.core.config import load_config
from atbb_kit.core.errors import ConfigError
from atbb_kit.ops import helm
from tests.conftest import ROOT

BASE = yaml.safe_load((ROOT / "atbb.yaml").read_text())
CFG = load_config(ROOT / "atbb.yaml", environ={})


def config_with(tmp_path: Path, change) -> object:
    data = copy.deepcopy(BASE)
    change(data)
    path = tmp_path / "atbb.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path, environ={})


def _set(path: str, value):
    def change(data):
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return change


# (atbb.yaml change, values key path, expected value)
GENERATED = [
    (lambda d: None, "probes.path", "/api/health"),
    (lambda d: None, "probes.routePrefixes", ["/api/"]),
    (lambda d: None, "terminationGracePeriodSeconds", 5 + 5 + 5 + helm.GRACE_MARGIN),
    (lambda d: None, "migrate.enabled", True),
    (lambda d: None, "replicaCount", 1),
    (lambda d: None, "existingSecret", "atbb-env"),
    (_set("services.web.grace", 30), "terminationGracePeriodSeconds", 5 + 5 + 30 + helm.GRACE_MARGIN),
    (_set("migrate.command", []), "migrate.enabled", False),
    (_set("migrate.wait_timeout", 120), "migrate.waitTimeoutSeconds", 120),
    (_set("migrate.wait_timeout", 120), "migrate.activeDeadlineSeconds", 120 + helm.MIGRATE_RUN_SECONDS),
    (_set("image.owner", "Example-Org"), "image.repository", "ghcr.io/example-org/atbb"),
    (_set("image.registry", "registry.example.org:5000"), "image.repository", "registry.example.org:5000/atbb/atbb"),
    (
        _set("routes", [*BASE["routes"], {"path": "/api/v2/", "service": "appview"}]),
        "probes.routePrefixes",
        ["/api/v2/", "/api/"],
    ),
    (
        lambda d: (
            d["routes"].insert(0, {"path": "/healthz", "service": "appview", "match": "exact"}),
            d["health"].update(path="/healthz"),
        ),
        "probes.path",
        "/healthz",
    ),
]


def dig(values, path: str):
    for key in path.split("."):
        values = values[key]
    return values


@pytest.mark.parametrize(("change", "key", "expected"), GENERATED)
def test_each_atbb_yaml_setting_reaches_its_value(tmp_path, change, key, expected):
    cfg = config_with(tmp_path, change)
    values = helm.generated_values(cfg)
    assert dig(values, key) == expected
    # The rendered values.yaml says the same as the dict (it is what helm reads).
    assert dig(yaml.safe_load(helm.render_values(cfg)), key) == expected


def test_rendered_values_yaml_equals_the_generated_defaults():
    assert yaml.safe_load(helm.render_values(CFG)) == helm.generated_values(CFG)


def test_the_committed_chart_files_match_atbb_yaml():
    assert helm.drift(CFG) == []


def test_a_hand_edited_values_file_is_drift(tmp_path):
    cfg = config_with(tmp_path, lambda d: None)
    chart = tmp_path / helm.CHART
    chart.mkdir(parents=True)
    for path, text in helm.generated_files(cfg).items():
        path.write_text(text)
    assert helm.drift(cfg) == []
    (chart / "values.yaml").write_text(helm.render_values(cfg).replace("replicaCount: 1", "replicaCount: 2"))
    with pytest.raises(ConfigError, match=r"deploy/helm/atbb/values.yaml differ from atbb.yaml — run `inv helm`"):
        helm.check_drift(cfg)


def test_termination_grace_outlasts_the_supervisor():
    assert helm.generated_values(CFG)["terminationGracePeriodSeconds"] > helm.stop_grace_seconds(CFG)
    assert helm.schema(CFG)["properties"]["terminationGracePeriodSeconds"]["minimum"] == helm.stop_grace_seconds(CFG)


# (operator values, error that must be the whole first line)
BAD = [
    ({"existingSecret": ""}, "existingSecret: name the Secret with the app's variables"),
    ({"existingSecret": "Not A Name"}, "existingSecret: name the Secret with the app's variables"),
    ({"replicaCount": 2}, "replicaCount 2 with stickySessions.enabled false"),
    ({"probes": {"path": "/static/app.css"}}, "probes.path /static/app.css is not under a route of the health service"),
    ({"probes": {"path": "/"}}, "probes.path / is not under a route of the health service appview (it goes to web)"),
    ({"replicaCount": -1}, "replicaCount: -1 is less than the minimum of 0"),
    ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy: 'Sometimes' is not one of"),
    ({"terminationGracePeriodSeconds": 5}, "terminationGracePeriodSeconds: 5 is less than the minimum of 15"),
    ({"ingress": {"enabled": True}}, "ingress.host is empty with ingress.enabled true"),
    (
        {"ingress": {"enabled": True, "host": "forum.example.org", "tls": {"enabled": True}}},
        "ingress.tls.secretName is empty",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD)
def test_bad_values_fail_with_one_line(override, message):
    values = helm.effective_values(CFG, [override])
    with pytest.raises(ConfigError) as info:
        helm.check_values(CFG, values)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text


GOOD = [
    {},
    {"replicaCount": 3, "stickySessions": {"enabled": True}},
    {"replicaCount": 0},
    {"probes": {"path": "/api/health?full=1"}},
    {"ingress": {"enabled": True, "host": "forum.example.org", "tls": {"enabled": True, "secretName": "tls"}}},
    {"existingSecret": "my-forum.env"},
    {"migrate": {"enabled": False}},
]


@pytest.mark.parametrize("override", GOOD)
def test_good_values_pass(override):
    helm.check_values(CFG, helm.effective_values(CFG, [override]))


def test_later_values_files_win_and_null_removes_a_key():
    values = helm.effective_values(CFG, [{"image": {"tag": "1"}}, {"image": {"tag": "2"}}, {"nodeSelector": None}])
    assert values["image"] == {**helm.generated_values(CFG)["image"], "tag": "2"}
    assert "nodeSelector" not in values


def test_schema_pattern_matches_the_python_rule():
    pattern = re.compile(helm.schema(CFG)["properties"]["probes"]["properties"]["path"]["pattern"])
    for path, ok in [("/api/health", True), ("/api/", True), ("/", False), ("/apix", False), ("/static/", False)]:
        assert bool(pattern.match(path)) is ok, path
        assert (helm.probe_problem(CFG, path) is None) is ok, path


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n", "expected a mapping of values"), ("a: [\n", "not valid YAML")],
)
def test_values_files_that_are_not_mappings(tmp_path, text, message):
    path = tmp_path / "v.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        helm.load_values(path)


# --- the renderers' argv (commands/helm.py) -----------------------------------------------------------------

VALUES = [Path("a.yaml"), Path("b.yaml")]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (
            helm_template("helm", Path("chart"), "forum", "default", VALUES),
            ("helm", "template", "forum", "chart", "--namespace", "default", "-f", "a.yaml", "-f", "b.yaml"),
        ),
        (
            helm_template("helm", Path("chart"), "atbb", "ns", []),
            ("helm", "template", "atbb", "chart", "--namespace", "ns"),
        ),
        (
            chart_render("/b/chart-render", Path("chart"), "forum", "default", VALUES),
            ("/b/chart-render", "chart", "forum", "default", "a.yaml", "b.yaml"),
        ),
        (chart_render("cr", Path("c"), "atbb", "default", []), ("cr", "c", "atbb", "default")),
    ],
    ids=["helm with values", "helm without values", "chart-render with values", "chart-render without values"],
)
def test_render_argv(cmd, expected):
    assert cmd.argv == expected


def test_go_build_is_gopath_mode_with_a_private_cache():
    cmd = go_build(
        "go", Path("out/cr"), Path("render.go"), gopath="/g:/usr/share/gocode", cache=Path("c"), install_hint="x"
    )
    assert cmd.argv == ("go", "build", "-o", "out/cr", "render.go")
    assert dict(cmd.env) == {"GO111MODULE": "off", "GOPATH": "/g:/usr/share/gocode", "GOCACHE": "c", "GOFLAGS": ""}
    assert cmd.install_hint == "x"
