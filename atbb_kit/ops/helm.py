"""The Helm chart in deploy/helm/atbb: values.yaml and values.schema.json generated from atbb.yaml by
`inv helm`, a drift check for `inv lint`, checks of an operator's values file, and offline validation.

Decisions (docs/decisions.md, issue 20):
- The chart's templates are hand-written; only the values that follow from atbb.yaml are generated (health
  path, the routes the probe may use, the termination grace, the migration deadline, the image name). A
  committed values.yaml that differs from what atbb.yaml gives fails `inv lint`, like nginx.conf.
- The rules Helm can enforce itself sit in values.schema.json (helm install/template reject bad values);
  those it cannot (replicas vs sticky sessions, the probe path under a route) sit in the chart's
  `atbb.validate` template as `fail` calls. `inv helm --values FILE` makes every check in Python as well,
  so an operator gets the same one-line error before reaching a cluster.
- Helm itself cannot be had on our machines (a Go module; no PyPI or npm package carries a Linux binary).
  Offline, the chart is rendered by deploy/helm/tools/render.go: Go's text/template with the Sprig
  library, Helm's own engine and functions, built from Debian's Go packages; it is not Helm (no hooks
  ordering, no lookup, no subcharts). The rendered manifests are validated against the Kubernetes JSON
  schemas that the PyPI package kubernetes-validate ships. Where `helm` is on PATH, `inv helm --render`
  uses it instead.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atbb_kit.commands.helm import chart_render, go_build, helm_template
from atbb_kit.core.errors import ConfigError, KitError

# docker/entrypoint.sh: nginx gets SUPERVISOR_NGINX_GRACE (5 s) to drain, then each service its own grace,
# one after the other in reverse start order.
NGINX_GRACE = 5
# Time for tini and the kernel after the last child: the platform's kill must come after the supervisor's.
GRACE_MARGIN = 5
# What `inv migrate` allows on top of migrate.wait_timeout (ops/deployment.py migrate_deadline).
MIGRATE_RUN_SECONDS = 900
CHART = Path("deploy/helm/atbb")
RENDERER_SOURCE = Path("deploy/helm/tools/render.go")
KUBERNETES_VERSION = "1.30.0"
STICKY_FIX = "set stickySessions.enabled=true (sessions and the firehose consumer are per process in atBB)"


def stop_grace_seconds(cfg) -> int:
    """The supervisor's longest graceful stop for this atbb.yaml."""
    return NGINX_GRACE + sum(svc.grace for svc in cfg.services.values())


def image_repository(cfg) -> str:
    owner = (cfg.image.owner or "atbb").lower()
    return f"{cfg.image.registry.lower()}/{owner}/{cfg.image.name}"


def health_prefixes(cfg) -> list[str]:
    """The route paths (prefix routes, host-less) that send requests to the health service: a probe path
    must lie under one of them. Sorted longest first."""
    service = cfg.health_service()
    prefixes = {r.path for r in cfg.routes if r.service == service and r.host is None and r.match == "prefix"}
    exact = {r.path for r in cfg.routes if r.service == service and r.host is None and r.match == "exact"}
    return sorted(prefixes | exact, key=lambda p: (-len(p), p))


def probe_problem(cfg, path: str) -> str | None:
    """None when the kit's routing sends `path` to the health service, else why not."""
    if not path.startswith("/"):
        return f"probes.path {path!r} must start with /"
    wanted = cfg.health_service()
    got = cfg.service_for(path.split("?", 1)[0])
    if got != wanted:
        return f"probes.path {path} is not under a route of the health service {wanted} (it goes to {got})"
    return None


def generated_values(cfg) -> dict[str, Any]:
    """The defaults of values.yaml; every key's meaning is commented in the rendered file."""
    return {
        "image": {"repository": image_repository(cfg), "tag": "", "pullPolicy": "IfNotPresent"},
        "imagePullSecrets": [],
        "existingSecret": "atbb-env",
        "replicaCount": 1,
        "stickySessions": {"enabled": False, "timeoutSeconds": 10800},
        "service": {"type": "ClusterIP", "port": 80},
        "ingress": {
            "enabled": False,
            "className": "",
            "host": "",
            "annotations": {},
            "tls": {"enabled": False, "secretName": ""},
        },
        "probes": {
            "path": cfg.health.path,
            "routePrefixes": health_prefixes(cfg),
            "timeoutSeconds": 3,
            "readinessPeriodSeconds": 5,
            "livenessPeriodSeconds": 10,
            "livenessFailureThreshold": 6,
            "startupFailureThreshold": 30,
        },
        "terminationGracePeriodSeconds": stop_grace_seconds(cfg) + GRACE_MARGIN,
        "unprivilegedPortSysctl": True,
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "tmpSizeLimit": "64Mi",
        "migrate": {
            "enabled": bool(cfg.migrate.command),
            "waitTimeoutSeconds": cfg.migrate.wait_timeout,
            "activeDeadlineSeconds": cfg.migrate.wait_timeout + MIGRATE_RUN_SECONDS,
        },
        "podDisruptionBudget": {"enabled": True},
        "podAnnotations": {},
        "nodeSelector": {},
        "tolerations": [],
    }


def _y(value: Any) -> str:
    return json.dumps(value)  # JSON scalars and flow collections are valid YAML


VALUES_TEMPLATE = """\
# GENERATED by `inv helm` from atbb.yaml (atbb_kit/ops/helm.py): edit atbb.yaml or the generator, not this
# file; `inv lint` fails when the two differ. Override any value in your own file: helm install -f mine.yaml.

image:
  # Default: atbb.yaml image.registry/owner/name. Pin a tag (or a digest with repository@sha256:...).
  repository: {image_repository}
  # Empty: the chart's appVersion.
  tag: ""
  pullPolicy: IfNotPresent
imagePullSecrets: []

# The Secret YOU create with the app's variables, read with envFrom (the chart never holds values):
#   kubectl create secret generic atbb-env --from-env-file=.env
existingSecret: atbb-env

# One replica: atBB keeps login sessions and the firehose consumer in its process. More replicas need sticky
# sessions (below) and a single indexer; read the chart's README before raising this.
replicaCount: 1
stickySessions:
  # ClientIP affinity on the Service, cookie affinity annotations for ingress-nginx on the Ingress.
  enabled: false
  timeoutSeconds: 10800

service:
  type: ClusterIP
  port: 80

ingress:
  enabled: false
  className: ""
  # The forum's public name (the host of OAUTH_PUBLIC_URL).
  host: ""
  annotations: {{}}
  tls:
    enabled: false
    # A kubernetes.io/tls Secret for host (cert-manager can create it: see the README).
    secretName: ""

# Readiness, liveness and startup probes: a GET of atbb.yaml's health.path through nginx on port 80, which
# must lie under one of routePrefixes (the routes of health.service {health_service}).
probes:
  path: {health_path}
  routePrefixes: {route_prefixes}
  timeoutSeconds: 3
  readinessPeriodSeconds: 5
  livenessPeriodSeconds: 10
  livenessFailureThreshold: 6
  startupFailureThreshold: 30

# The supervisor's longest graceful stop: nginx {nginx_grace} s, then each service's grace ({graces}), plus {margin} s.
terminationGracePeriodSeconds: {termination_grace}

# nginx listens on port 80 as user 10001 without capabilities: the pod sets the (safe) sysctl
# net.ipv4.ip_unprivileged_port_start=0. Turn off only where the runtime already allows it.
unprivilegedPortSysctl: true
securityContext:
  runAsUser: 10001
  runAsGroup: 10001

resources:
  requests:
    cpu: 100m
    memory: 256Mi
  limits:
    memory: 512Mi
# The in-memory /tmp (nginx's pid and temp files): the only writable path.
tmpSizeLimit: 64Mi

# The migration Job, run before every install and upgrade (a Helm hook); its pod never serves traffic.
migrate:
  enabled: {migrate_enabled}
  # atbb.yaml migrate.wait_timeout: seconds the migrator waits for the database.
  waitTimeoutSeconds: {wait_timeout}
  activeDeadlineSeconds: {active_deadline}

podDisruptionBudget:
  enabled: true

podAnnotations: {{}}
nodeSelector: {{}}
tolerations: []
"""


def render_values(cfg) -> str:
    v = generated_values(cfg)
    graces = " + ".join(f"{name} {svc.grace}" for name, svc in cfg.services.items())
    return VALUES_TEMPLATE.format(
        image_repository=v["image"]["repository"],
        health_service=cfg.health_service(),
        health_path=_y(v["probes"]["path"]),
        route_prefixes=_y(v["probes"]["routePrefixes"]),
        nginx_grace=NGINX_GRACE,
        graces=graces,
        margin=GRACE_MARGIN,
        termination_grace=v["terminationGracePeriodSeconds"],
        migrate_enabled=_y(v["migrate"]["enabled"]),
        wait_timeout=v["migrate"]["waitTimeoutSeconds"],
        active_deadline=v["migrate"]["activeDeadlineSeconds"],
    )


def _prefix_pattern(prefixes: list[str]) -> str:
    return "^(" + "|".join(re.escape(p) for p in prefixes) + ")"


def schema(cfg) -> dict[str, Any]:
    """values.schema.json: what helm itself enforces on every install, upgrade and template."""
    positive = {"type": "integer", "minimum": 1}
    k8s_name = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "atBB chart values (generated by inv helm from atbb.yaml)",
        "type": "object",
        "required": ["image", "existingSecret", "replicaCount", "stickySessions", "probes", "migrate"],
        "properties": {
            "image": {
                "type": "object",
                "required": ["repository"],
                "properties": {
                    "repository": {"type": "string", "minLength": 1},
                    "tag": {"type": "string"},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
            },
            "existingSecret": {**k8s_name, "minLength": 1, "description": "the operator's Secret; required"},
            "replicaCount": {"type": "integer", "minimum": 0, "maximum": 50},
            "stickySessions": {
                "type": "object",
                "properties": {"enabled": {"type": "boolean"}, "timeoutSeconds": positive},
            },
            "ingress": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "host": {"type": "string"},
                    "tls": {
                        "type": "object",
                        "properties": {"enabled": {"type": "boolean"}, "secretName": {"type": "string"}},
                    },
                },
                "if": {"properties": {"enabled": {"const": True}}},
                "then": {"properties": {"host": {"minLength": 1}}},
            },
            "probes": {
                "type": "object",
                "required": ["path", "routePrefixes"],
                "properties": {
                    "path": {"type": "string", "pattern": _prefix_pattern(health_prefixes(cfg))},
                    "routePrefixes": {"type": "array", "items": {"type": "string", "pattern": "^/"}},
                    "timeoutSeconds": positive,
                    "readinessPeriodSeconds": positive,
                    "livenessPeriodSeconds": positive,
                    "livenessFailureThreshold": positive,
                    "startupFailureThreshold": positive,
                },
            },
            "terminationGracePeriodSeconds": {"type": "integer", "minimum": stop_grace_seconds(cfg)},
            "unprivilegedPortSysctl": {"type": "boolean"},
            "migrate": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "waitTimeoutSeconds": positive,
                    "activeDeadlineSeconds": positive,
                },
            },
            "podDisruptionBudget": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
        },
        # replicaCount > 1 needs stickySessions.enabled.
        "if": {"properties": {"replicaCount": {"minimum": 2}}},
        "then": {"properties": {"stickySessions": {"properties": {"enabled": {"const": True}}}}},
    }


def render_schema(cfg) -> str:
    return json.dumps(schema(cfg), indent=2) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Files and drift


def generated_files(cfg) -> dict[Path, str]:
    root = cfg.root() / CHART
    return {root / "values.yaml": render_values(cfg), root / "values.schema.json": render_schema(cfg)}


def drift(cfg) -> list[str]:
    """Names of the generated chart files that differ from what atbb.yaml gives (empty: none)."""
    out = []
    for path, text in generated_files(cfg).items():
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            out.append(str(path.relative_to(cfg.root())))
    return out


def check_drift(cfg) -> None:
    stale = drift(cfg)
    if stale:
        raise ConfigError(f"{', '.join(stale)} differ from atbb.yaml", "run `inv helm` and commit the result")


# ---------------------------------------------------------------------------------------------------------
# An operator's values


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def load_values(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]})", "fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected a mapping of values", "see deploy/helm/atbb/values.yaml")
    return data


def effective_values(cfg, overrides: list[dict[str, Any]]) -> dict[str, Any]:
    values = generated_values(cfg)
    for over in overrides:
        values = _merge(values, over)
    return values


def check_values(cfg, values: dict[str, Any]) -> None:
    """The chart's rules on merged values: the schema first, then what the schema cannot say. One problem,
    one line, naming the key."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema(cfg))
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "values"
        if where == "values" and values.get("replicaCount", 1) > 1:
            raise ConfigError(f"replicaCount {values['replicaCount']}: more than one replica", STICKY_FIX)
        if where == "stickySessions.enabled":
            raise ConfigError(f"replicaCount {values['replicaCount']} with stickySessions.enabled false", STICKY_FIX)
        if where == "existingSecret":
            raise ConfigError(
                "existingSecret: name the Secret with the app's variables",
                "kubectl create secret generic atbb-env --from-env-file=.env, then existingSecret: atbb-env",
            )
        if where == "probes.path":
            problem = probe_problem(cfg, str(values["probes"]["path"]))
            raise ConfigError(problem or f"probes.path: {err.message}", "use atbb.yaml's health.path")
        if where == "ingress.host":
            raise ConfigError("ingress.host is empty with ingress.enabled true", "set the forum's public host name")
        raise ConfigError(f"{where}: {err.message}", "see deploy/helm/atbb/values.yaml for the keys")
    problem = probe_problem(cfg, str(values["probes"]["path"]))
    if problem:
        raise ConfigError(problem, "use atbb.yaml's health.path")
    ingress = values["ingress"]
    if ingress.get("enabled") and ingress.get("tls", {}).get("enabled") and not ingress["tls"].get("secretName"):
        raise ConfigError("ingress.tls.secretName is empty", "name the kubernetes.io/tls Secret for ingress.host")


# ---------------------------------------------------------------------------------------------------------
# Rendering and validation (offline)


@dataclass(frozen=True)
class Renderer:
    program: str  # the helm binary, or the kit's chart-render
    what: str  # shown to people: "helm 3.x" or "chart-render (Go text/template + Sprig, not Helm)"
    is_helm: bool


GO_HINT = (
    "install helm, or run scripts/bootstrap.sh (apt-get install golang-go golang-github-masterminds-sprig-dev "
    "golang-gopkg-yaml.v3-dev)"
)


def find_renderer(run, kit_root: Path, build_dir: Path) -> Renderer:
    """helm when installed; else the kit's chart-render, built once by `run` (the kit's Runner) from
    deploy/helm/tools/render.go with Debian's Go and Sprig packages (scripts/bootstrap.sh installs them)."""
    helm = shutil.which("helm")
    if helm:
        return Renderer(helm, "helm template", True)
    binary = build_dir / "chart-render"
    source = kit_root / RENDERER_SOURCE
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        go = shutil.which("go")
        if not go or not Path("/usr/share/gocode/src/github.com/Masterminds/sprig").is_dir():
            raise KitError("neither helm nor Go with the Sprig library is installed to render the chart", GO_HINT)
        build_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as gopath:
            # GOPATH mode: Debian installs the libraries under their import paths without the /v3 suffix.
            for lib in ("sprig", "semver"):
                link = Path(gopath) / "src/github.com/Masterminds" / lib / "v3"
                link.parent.mkdir(parents=True)
                link.symlink_to(f"/usr/share/gocode/src/github.com/Masterminds/{lib}")
            build = go_build(
                go,
                binary,
                source,
                gopath=f"{gopath}:/usr/share/gocode",
                cache=build_dir / "go-cache",
                install_hint=GO_HINT,
            )
            result = run.run(build, capture=True, quiet=True, check=False)
        if not result.ok:
            raise KitError(f"building chart-render failed: {result.stderr.strip()[-300:]}", GO_HINT)
    return Renderer(str(binary), "chart-render (Go text/template + Sprig, Helm's engine; not Helm)", False)


def render(run, renderer: Renderer, chart: Path, values_files: list[Path], release: str = "atbb") -> str:
    """The chart's manifests for the values files, rendered by `run` (the kit's Runner)."""
    build = helm_template if renderer.is_helm else chart_render
    result = run.run(
        build(renderer.program, chart, release, "default", values_files), capture=True, quiet=True, check=False
    )
    if not result.ok:
        line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        # A `fail` in the chart is the message; Go's template trace before it is noise for an operator.
        for marker in ("error calling fail: ", "error calling required: ", "execution error at "):
            if marker in line:
                line = line.split(marker)[-1]
                line = line.split("): ", 1)[-1] if marker.startswith("execution") else line
        raise ConfigError(f"the chart does not render: {line.removeprefix('error: ')}", "fix the value named")
    return result.stdout


def manifests(text: str) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate_manifests(docs: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[str]:
    """Problems found by the Kubernetes JSON schemas of `version` (kubernetes-validate), one line each."""
    import kubernetes_validate

    problems = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: no schema ({exc})")
    return problems
