"""The chart's templates rendered for real (helm when installed, else deploy/helm/tools/render.go: Go's
text/template with Sprig, Helm's own engine and functions) and validated against the Kubernetes JSON schemas
of kubernetes-validate. A table: each value's effect on the manifests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from atbb_kit.core.config import load_config
from atbb_kit.core.errors import ConfigError
from atbb_kit.infra.runner import Runner
from atbb_kit.ops import helm
from tests.conftest import ROOT

CFG = load_config(ROOT / "atbb.yaml", environ={})
CHART = ROOT / helm.CHART


@pytest.fixture(scope="module")
def renderer():
    return helm.find_renderer(Runner(echo=False), ROOT, ROOT / "build")


def rendered(renderer, tmp_path: Path, values: dict | None = None) -> dict[str, dict]:
    files = []
    if values is not None:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        files.append(path)
    docs = helm.manifests(helm.render(Runner(echo=False), renderer, CHART, files, release="forum"))
    assert helm.validate_manifests(docs) == []
    return {doc["kind"]: doc for doc in docs}


def pod(docs) -> dict:
    return docs["Deployment"]["spec"]["template"]["spec"]


def app(docs) -> dict:
    (container,) = pod(docs)["containers"]
    return container


def test_defaults_render_a_locked_down_app_a_service_a_migration_hook_and_a_pdb(renderer, tmp_path):
    docs = rendered(renderer, tmp_path)
    assert sorted(docs) == ["Deployment", "Job", "PodDisruptionBudget", "Service"]
    spec, c = pod(docs), app(docs)
    assert docs["Deployment"]["spec"]["replicas"] == 1
    assert docs["Deployment"]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": CFG.health.path, "port": "http"}
    assert spec["terminationGracePeriodSeconds"] == helm.stop_grace_seconds(CFG) + helm.GRACE_MARGIN
    assert c["envFrom"] == [{"secretRef": {"name": "atbb-env"}}]
    assert "env" not in c, "no values in the chart: everything comes from the operator's Secret"
    assert c["resources"]["limits"]["memory"] == "512Mi"
    job = docs["Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # The Service selects the app's pods, never the migration's.
    selector = docs["Service"]["spec"]["selector"]
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()
    assert selector.items() <= docs["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    assert docs["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert "sessionAffinity" not in docs["Service"]["spec"]


# (values, check on the rendered manifests)
TABLE = [
    ({"existingSecret": "forum-env"}, lambda d: app(d)["envFrom"][0]["secretRef"]["name"] == "forum-env"),
    (
        {"existingSecret": "forum-env"},
        lambda d: (
            d["Job"]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"] == "forum-env"
        ),
    ),
    ({"image": {"tag": "1.4.2"}}, lambda d: app(d)["image"] == "ghcr.io/atbb/atbb:1.4.2"),
    ({"image": {"pullPolicy": "Always"}}, lambda d: app(d)["imagePullPolicy"] == "Always"),
    (
        {"replicaCount": 3, "stickySessions": {"enabled": True}},
        lambda d: (
            d["Deployment"]["spec"]["replicas"] == 3
            and d["PodDisruptionBudget"]["spec"] == {**d["PodDisruptionBudget"]["spec"], "minAvailable": 1}
            and d["Service"]["spec"]["sessionAffinity"] == "ClientIP"
        ),
    ),
    ({"podDisruptionBudget": {"enabled": False}}, lambda d: "PodDisruptionBudget" not in d),
    ({"migrate": {"enabled": False}}, lambda d: "Job" not in d),
    (
        {"migrate": {"waitTimeoutSeconds": 30, "activeDeadlineSeconds": 99}},
        lambda d: (
            d["Job"]["spec"]["activeDeadlineSeconds"] == 99
            and d["Job"]["spec"]["template"]["spec"]["containers"][0]["env"]
            == [{"name": "DB_WAIT_TIMEOUT", "value": "30"}]
        ),
    ),
    ({"unprivilegedPortSysctl": False}, lambda d: "sysctls" not in pod(d)["securityContext"]),
    ({"terminationGracePeriodSeconds": 60}, lambda d: pod(d)["terminationGracePeriodSeconds"] == 60),
    (
        {"probes": {"path": "/api/health?deep=1"}},
        lambda d: app(d)["readinessProbe"]["httpGet"]["path"] == "/api/health?deep=1",
    ),
    ({"probes": {"livenessFailureThreshold": 9}}, lambda d: app(d)["livenessProbe"]["failureThreshold"] == 9),
    ({"resources": {"limits": {"memory": "1Gi"}}}, lambda d: app(d)["resources"]["limits"]["memory"] == "1Gi"),
    ({"service": {"type": "NodePort", "port": 8080}}, lambda d: d["Service"]["spec"]["type"] == "NodePort"),
    ({"nodeSelector": {"disk": "ssd"}}, lambda d: pod(d)["nodeSelector"] == {"disk": "ssd"}),
    ({"imagePullSecrets": [{"name": "ghcr"}]}, lambda d: pod(d)["imagePullSecrets"] == [{"name": "ghcr"}]),
    (
        {"ingress": {"enabled": True, "className": "nginx", "host": "forum.example.org"}},
        lambda d: (
            d["Ingress"]["spec"]["rules"][0]["host"] == "forum.example.org"
            and d["Ingress"]["spec"]["ingressClassName"] == "nginx"
            and "tls" not in d["Ingress"]["spec"]
        ),
    ),
    (
        {
            "ingress": {
                "enabled": True,
                "host": "forum.example.org",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "tls": {"enabled": True, "secretName": "forum-tls"},
            }
        },
        lambda d: (
            d["Ingress"]["spec"]["tls"] == [{"hosts": ["forum.example.org"], "secretName": "forum-tls"}]
            and d["Ingress"]["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
        ),
    ),
    (
        {"replicaCount": 2, "stickySessions": {"enabled": True}, "ingress": {"enabled": True, "host": "f.example"}},
        lambda d: d["Ingress"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie",
    ),
]


@pytest.mark.parametrize(("values", "check"), TABLE)
def test_each_value_changes_the_manifests(renderer, tmp_path, values, check):
    assert check(rendered(renderer, tmp_path, values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"existingSecret": ""}, "the chart does not render: existingSecret: name the Secret you created"),
        ({"replicaCount": 2}, "the chart does not render: replicaCount > 1 needs stickySessions.enabled=true"),
        ({"probes": {"path": "/static/x"}}, "the chart does not render: probes.path /static/x is not under a route"),
        (
            {"ingress": {"enabled": True, "tls": {"enabled": True}, "host": "f.example"}},
            "the chart does not render: ingress.tls.secretName is required when TLS is enabled",
        ),
    ],
)
def test_the_chart_itself_refuses_bad_values_in_one_line(renderer, tmp_path, values, message):
    # What `helm template`/`helm install` would print: the templates' own checks, without the kit's.
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError) as info:
        helm.render(Runner(echo=False), renderer, CHART, [path])
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_schema_validation_is_not_vacuous(renderer, tmp_path):
    docs = helm.manifests(helm.render(Runner(echo=False), renderer, CHART, []))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "one"
    deployment["spec"]["template"]["spec"]["containers"][0]["portz"] = []
    problems = helm.validate_manifests([deployment])
    assert problems and all(p.startswith("Deployment/atbb: ") for p in problems)
