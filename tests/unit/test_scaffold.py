"""`inv init` (atbb_kit/ops/scaffold.py): what it drafts for the two bundled examples, compared with the atbb.yaml
each is packaged by, and how it refuses, diffs and merges. No Docker; the CLI runs as a child process where
the exit code and the one-line errors matter.

"What matters" in a config, for the comparison: each service's command, cwd, whether it listens and its
env; the routes; health; migrate; runtime.include. Two things are normalised, both because they change
nothing the app does:
- file arguments are made relative to the monorepo root (`node dist/index.js` from apps/api is
  `node apps/api/dist/index.js` from `.`), and the cwd of a `node FILE` service is not compared: init starts
  it in its package folder, as `pnpm start` does, while the committed files start it from the root. The
  example apps never read a file relative to their working directory (test_node_services_ignore_their_cwd);
  a framework CLI's cwd (react-router-serve serves build/client from it) is compared.
- port numbers: they are internal to the container (127.0.0.1), and the kit tells every service its own and
  the others' through PORT and the env placeholders, so only whether a service listens is compared.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from atbb_kit.core.config import load_config
from atbb_kit.core.errors import KitError
from atbb_kit.ops import scaffold
from tests.conftest import ROOT, run_inv

EXAMPLES = ROOT / "examples"


def copy_example(name: str, tmp_path: Path) -> Path:
    """A copy of examples/NAME as a user's checkout: no host installs or build output, and no atbb.yaml."""
    dest = tmp_path / name
    shutil.copytree(EXAMPLES / name, dest, ignore=shutil.ignore_patterns("node_modules", "dist", "build", ".turbo"))
    for kit_file in ("atbb.yaml", "nginx.conf"):
        (dest / kit_file).unlink(missing_ok=True)
    return dest


def load_text(text: str, tmp_path: Path):
    path = tmp_path / "proposed" / "atbb.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load_config(path=path, environ={})


# ---------------------------------------------------------------------------------------------------------
# What matters, and the edits between two configs


def _invocation(command: tuple[str, ...], cwd: str) -> list[str]:
    out = [command[0]]
    for arg in command[1:]:
        is_file = not arg.startswith("-") and ("/" in arg or re.search(r"\.[cm]?[jt]sx?$", arg))
        out.append(posixpath.normpath(posixpath.join(cwd, arg)) if is_file else arg)
    return out


def essentials(cfg) -> dict[str, Any]:
    services = {
        name: {
            "command": _invocation(svc.command, svc.cwd),
            "cwd": None if svc.command[0] == "node" else svc.cwd,
            "listens": svc.port is not None,
            "env": dict(svc.env),
        }
        for name, svc in cfg.services.items()
    }
    m = cfg.migrate
    migrate = {
        # With `package`, the command runs inside that deployed package: compared as written.
        "command": list(m.command) if m.package else _invocation(m.command, m.cwd) if m.command else [],
        "cwd": m.cwd if m.package or (m.command and m.command[0] != "node") else None,
        "package": m.package,
    }
    return {
        "services": services,
        "routes": {(r.path, r.match, r.host, r.service, r.cache) for r in cfg.routes},
        "health": {
            "path": cfg.health.path,
            "service": cfg.health_service(),
            "status": cfg.health.status,
            "body": cfg.health.body,
        },
        "migrate": migrate,
        "runtime": set(cfg.runtime.include),
    }


def edits(proposed: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The edits that turn `proposed` into `wanted`, one label each."""
    out: list[str] = []
    for name in sorted(set(proposed["services"]) | set(wanted["services"])):
        have, want = proposed["services"].get(name), wanted["services"].get(name)
        if have is None or want is None:
            out.append(f"services.{name}: {'add' if have is None else 'drop'}")
            continue
        for key in ("command", "cwd", "listens"):
            if have[key] != want[key]:
                out.append(f"services.{name}.{key}")
        for var in sorted(set(have["env"]) | set(want["env"])):
            if have["env"].get(var) != want["env"].get(var):
                out.append(f"services.{name}.env.{var}")
    for path, match, _host, service, cache in sorted(wanted["routes"] - proposed["routes"], key=str):
        out.append(f"routes: add {match} {path} -> {service}" + (f" ({cache})" if cache else ""))
    for path, match, _, service, _ in sorted(proposed["routes"] - wanted["routes"], key=str):
        out.append(f"routes: drop {match} {path} -> {service}")
    for section in ("health", "migrate"):
        out += [f"{section}.{k}" for k in wanted[section] if proposed[section][k] != wanted[section][k]]
    out += [f"runtime.include: add {p}" for p in sorted(wanted["runtime"] - proposed["runtime"])]
    out += [f"runtime.include: drop {p}" for p in sorted(proposed["runtime"] - wanted["runtime"])]
    return out


def test_edits_names_each_difference(tmp_path):
    base = essentials(load_config(path=ROOT / "atbb.yaml", environ={}))
    assert edits(base, base) == []
    other = json.loads(json.dumps(base, default=sorted))
    other["routes"] = {tuple(r) for r in other["routes"]} - {("/static/", "prefix", None, "web", "immutable")}
    other["runtime"] = set(other["runtime"]) | {"apps/web/build"}
    other["health"]["body"] = None
    other["services"]["web"]["env"] = {}
    other["services"]["appview"]["command"] = ["node", "apps/appview/dist/main.js"]
    assert edits(other, base) == [
        "services.appview.command",
        "services.web.env.APPVIEW_URL",
        "routes: add prefix /static/ -> web (immutable)",
        "health.body",
        "runtime.include: drop apps/web/build",
    ]


# ---------------------------------------------------------------------------------------------------------
# The two examples: at most three edits, and exactly which


# (example, the atbb.yaml that packages it, the edits its draft needs, why init cannot infer them)
EXAMPLE_EDITS = [
    (
        "board",
        EXAMPLES / "board" / "atbb.yaml",
        # The API has no health endpoint: /api/boards (200 only with the database up) is a choice.
        ["health.path"],
    ),
    (
        "forum",
        ROOT / "atbb.yaml",
        # /static/ is the web app's own asset prefix (no framework convention names it), and the body of
        # a healthy answer is the app's own format.
        ["routes: add prefix /static/ -> web (immutable)", "health.body"],
    ),
]


@pytest.mark.parametrize(("example", "committed", "expected"), EXAMPLE_EDITS, ids=[e[0] for e in EXAMPLE_EDITS])
def test_init_drafts_the_examples_config_but_for_named_edits(example, committed, expected, tmp_path):
    proposal = scaffold.propose(copy_example(example, tmp_path))
    assert proposal.problems == ()
    drafted = load_text(proposal.text, tmp_path)
    needed = edits(essentials(drafted), essentials(load_config(path=committed, environ={})))
    assert needed == expected
    assert len(needed) <= 3


def test_board_draft_details(tmp_path):
    """What the board's draft gets right that a plain start-script reading would not."""
    cfg = load_text(scaffold.propose(copy_example("board", tmp_path)).text, tmp_path)
    api, web, worker = (cfg.services[n] for n in ("api", "web", "worker"))
    assert list(cfg.services) == ["api", "web", "worker"]
    # The API reads API_PORT (not PORT): a port is picked and wired; the web finds it through API_BASE_URL.
    assert api.env == {"API_PORT": "{port}"} and api.port is not None
    assert web.env == {"API_BASE_URL": "{api.url}"} and web.port == 3000  # react-router-serve's default
    assert web.command == ("react-router-serve", "./build/server/index.js") and web.cwd == "apps/web"
    assert worker.port is None and worker.cwd == "apps/worker"
    assert (cfg.migrate.command, cfg.migrate.package) == (("drizzle-kit", "migrate"), "@board/db")
    assert cfg.env.required == ("DATABASE_URL",)
    assert set(cfg.env.optional) == {"WORKER_INTERVAL_MS", "WORKER_MAX_OUTAGE_MS"}
    assert (cfg.node.version, cfg.node.pnpm, cfg.image.base) == ("22", "10.34.9", "node:22-alpine")


def test_forum_draft_has_the_committed_ports(tmp_path):
    """The forum's services default to PORT ?? 3000 and ?? 3001 in their sources: the very ports the kit uses."""
    cfg = load_text(scaffold.propose(copy_example("forum", tmp_path)).text, tmp_path)
    kit = load_config(path=ROOT / "atbb.yaml", environ={})
    assert {n: s.port for n, s in cfg.services.items()} == {n: s.port for n, s in kit.services.items()}
    assert cfg.services["web"].env == {"APPVIEW_URL": "{appview.url}"}
    assert set(cfg.env.required) == set(kit.env.required)


@pytest.mark.parametrize("example", ["board", "forum"])
def test_node_services_ignore_their_cwd(example):
    """Why the comparison skips a `node FILE` service's cwd: its sources never resolve a path against the
    working directory (no process.cwd(), and every relative path literal is an import or a URL relative to
    import.meta.url)."""
    cfg = load_config(path=ROOT / "atbb.yaml" if example == "forum" else EXAMPLES / "board" / "atbb.yaml", environ={})
    folders = {svc.command[1].split("/dist/")[0] for svc in cfg.services.values() if svc.command[0] == "node"}
    assert folders
    for folder in folders:
        for source in sorted((EXAMPLES / example / folder / "src").rglob("*.ts")):
            text = source.read_text(encoding="utf-8")
            assert "process.cwd" not in text, source
            for line in text.splitlines():
                if re.search(r"""['"`]\.\.?/""", line):
                    assert re.search(r"\bimport\b|\bfrom\b|import\.meta\.url", line), f"{source}: {line.strip()}"


# ---------------------------------------------------------------------------------------------------------
# Start scripts: split without a shell, or refused with the reason


SPLITS = [
    ("node dist/index.js", ["node", "dist/index.js"]),
    ("react-router-serve ./build/server/index.js", ["react-router-serve", "./build/server/index.js"]),
    ("next start -p 3005", ["next", "start", "-p", "3005"]),
    ("node --enable-source-maps 'dist/my server.js'", ["node", "--enable-source-maps", "dist/my server.js"]),
    ('node -e "a && b"', ["node", "-e", "a && b"]),
]
REFUSALS = [
    ("tsc && node dist/index.js", "chains commands (&&)"),
    ("node dist/a.js || node dist/b.js", "chains commands (||)"),
    ("node dist/index.js | pino-pretty", "pipes its output (|)"),
    ("node dist/index.js > server.log", "redirects output (>)"),
    ("node dist/a.js; node dist/b.js", "chains commands (;)"),
    ("node dist/a.js & node dist/b.js", "runs a command in the background (&)"),
    ("NODE_ENV=production node dist/index.js", "sets an environment variable (NODE_ENV=production)"),
    ("PORT=3001 node dist/index.js", "sets an environment variable (PORT=3001)"),
    ("cross-env PORT=3001 node dist/index.js", "sets environment variables through cross-env"),
    ("node $ENTRY", "expands a variable or a command"),
    ("node dist/index.js 'unclosed", "has an unclosed quote"),
]


@pytest.mark.parametrize(("script", "argv"), SPLITS, ids=[s for s, _ in SPLITS])
def test_start_script_split(script, argv):
    assert scaffold.split_script(script) == (argv, None)


@pytest.mark.parametrize(("script", "why"), REFUSALS, ids=[s for s, _ in REFUSALS])
def test_start_script_refused(script, why):
    argv, reason = scaffold.split_script(script)
    assert argv is None and reason.startswith(why)


# (the package's scripts, what its start resolves to: an argv, or the start of the refusal)
RESOLVE = [
    ({"start": "pnpm run serve", "serve": "node dist/index.js"}, ["node", "dist/index.js"]),
    ({"start": "pnpm serve --port 4000", "serve": "node dist/index.js"}, ["node", "dist/index.js", "--port", "4000"]),
    (
        {"start": "npm run serve", "serve": "react-router-serve ./build/server/index.js"},
        ["react-router-serve", "./build/server/index.js"],
    ),
    ({"start": "pnpm exec next start"}, ["next", "start"]),
    ({"start": "pnpm run serve", "serve": "tsc && node dist/index.js"}, "chains commands (&&)"),
    ({"start": "pnpm run missing"}, "runs `pnpm run missing`, which is not a script of this package"),
    ({"start": "pnpm start"}, "runs scripts that run each other"),
    ({"start": "npx serve dist"}, "runs npx, which may download the tool at start"),
]


@pytest.mark.parametrize(("scripts", "expected"), RESOLVE, ids=[r[0]["start"] for r in RESOLVE])
def test_start_script_through_the_package_manager(scripts, expected):
    argv, why = scaffold._resolve_script(scaffold.Package("apps/x", {"scripts": scripts}), scripts["start"])
    if isinstance(expected, list):
        assert (argv, why) == (expected, None)
    else:
        assert argv is None and why.startswith(expected)


NAMES = [
    ("@shop/api", set(), "api"),
    ("@shop/web-app", set(), "web_app"),
    ("@shop/migrate", set(), "migrate_app"),
    ("@shop/nginx", set(), "nginx_app"),
    ("@other/api", {"api"}, "api_2"),
    ("@shop/3d", set(), "svc_3d"),
]


@pytest.mark.parametrize(("package", "taken", "name"), NAMES, ids=[n[0] for n in NAMES])
def test_service_names(package, taken, name):
    assert scaffold.service_name(scaffold.Package("apps/x", {"name": package}), taken) == name


def workspace(root: Path, packages: dict[str, dict[str, Any]], files: dict[str, str] | None = None, **top) -> Path:
    """A pnpm workspace on disk: apps/* and packages/*, each folder's package.json as given."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pnpm-workspace.yaml").write_text('packages:\n  - "apps/*"\n  - "packages/*"\n')
    (root / "package.json").write_text(json.dumps({"name": "shop", "packageManager": "pnpm@10.4.1", **top}))
    for folder, data in packages.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "package.json").write_text(json.dumps(data))
    for path, text in (files or {}).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def app(name: str, start: str | None = None, **more) -> dict[str, Any]:
    return {"name": name, **({"scripts": {"start": start}} if start else {}), **more}


def test_refused_start_script_is_left_commented_with_the_reason(tmp_path):
    root = workspace(
        tmp_path / "w",
        {
            "apps/api": app("@shop/api", "PORT=4000 node dist/index.js"),
            "apps/web": app("@shop/web", "next start", dependencies={"next": "15.0.0"}),
        },
    )
    proposal = scaffold.propose(root)
    assert proposal.problems == ()
    assert (
        "  # api:\n" in proposal.text
        and "#   command: [...]   # from the start script: PORT=4000 node" in proposal.text
    )
    note = next(n for n in proposal.notes if n.startswith("services.api:"))
    assert "sets an environment variable (PORT=4000)" in note and "write services.api.command yourself" in note
    cfg = load_text(proposal.text, tmp_path)
    assert list(cfg.services) == ["web"] and cfg.services["web"].port == 3000
    assert {r.path for r in cfg.routes} == {"/", "/_next/static/"}


def test_a_draft_that_does_not_validate_prints_its_errors_as_notes(tmp_path):
    root = workspace(tmp_path / "w", {"apps/api": app("@shop/api", "tsc && node dist/index.js")})
    proposal = scaffold.propose(root)
    assert any("routes" in p for p in proposal.problems), proposal.problems
    proc = run_inv("init", "--monorepo", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "chains commands (&&)" in proc.stderr
    assert "does not validate yet: atbb.yaml:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


# (case, the package, the port init proposes: None for none)
PORTS = [
    ("react-router-serve", app("@s/web", "react-router-serve ./build/server/index.js"), 3000),
    ("next-default", app("@s/web", "next start"), 3000),
    ("next-flag", app("@s/web", "next start -p 3005"), 3005),
    ("port-flag", app("@s/web", "node dist/index.js --port=4100"), 4100),
    ("vite-preview", app("@s/web", "vite preview"), 4173),
    ("source-default", app("@s/web", "node dist/index.js"), 8080),
    ("worker", app("@s/worker", "node dist/index.js"), None),
    ("main-only", app("@s/web", main="./dist/server.js"), 8080),
]
SOURCES = {"apps/x/src/index.ts": "const port = Number(process.env.PORT || 8080);\n"}


@pytest.mark.parametrize(("case", "data", "port"), PORTS, ids=[p[0] for p in PORTS])
def test_port_inference(case, data, port, tmp_path):
    files = {} if case == "worker" else SOURCES
    root = workspace(tmp_path / "w", {"apps/x": data}, files)
    proposal = scaffold.propose(root)
    if port is None:
        # A lone worker has no route, so the draft cannot validate: the notes say both.
        assert any("no port found" in n for n in proposal.notes)
        assert any("routes" in p for p in proposal.problems)
    else:
        assert proposal.problems == ()
        (svc,) = load_text(proposal.text, tmp_path).services.values()
        assert svc.port == port


def test_two_framework_apps_on_the_same_default_port_are_moved_apart(tmp_path):
    root = workspace(
        tmp_path / "w",
        {
            "apps/admin": app("@s/admin", "react-router-serve ./build/server/index.js"),
            "apps/web": app("@s/web", "react-router-serve ./build/server/index.js"),
        },
    )
    cfg = load_text(scaffold.propose(root).text, tmp_path)
    assert sorted(s.port for s in cfg.services.values()) == [3000, 3001]


def test_a_workspace_package_others_import_is_no_service(tmp_path):
    root = workspace(
        tmp_path / "w",
        {
            "apps/api": app("@s/api", "node dist/index.js", dependencies={"@s/lib": "workspace:*"}),
            "packages/lib": {"name": "@s/lib", "main": "./dist/index.js"},
        },
        {"apps/api/src/index.ts": "serve({ port: Number(process.env.PORT ?? 3000) });\n"},
    )
    cfg = load_text(scaffold.propose(root).text, tmp_path)
    assert list(cfg.services) == ["api"]
    # No web-ish package: / goes to the API, and init says so.
    assert [(r.path, r.service) for r in cfg.routes] == [("/", "api")]


# ---------------------------------------------------------------------------------------------------------
# Root settings


NODE = [
    ("22", "22"),
    ("22.x", "22"),
    ("^20.11.0", "20"),
    ("~24.1", "24"),
    (">=20.19", "22"),
    (">=24", "24"),
    ("20 || 22", "22"),
    (None, "22"),
]


@pytest.mark.parametrize(("spec", "major"), NODE, ids=[str(s) for s, _ in NODE])
def test_node_major_from_engines(spec, major):
    notes = scaffold.Notes()
    assert scaffold.node_major({"node": spec} if spec else {}, notes) == major
    # Only an exact major passes without a note.
    assert bool(notes.all()) == (spec not in ("22", "22.x", "^20.11.0", "~24.1"))


PNPM = [("pnpm@10.34.9", "10.34.9", False), ("pnpm@9.15.9+sha512.abc", "9.15.9", False), ("yarn@4.1.0", "9.15.9", True)]


@pytest.mark.parametrize(("manager", "version", "noted"), PNPM, ids=[m for m, _, _ in PNPM])
def test_pnpm_version_from_package_manager(manager, version, noted):
    notes = scaffold.Notes()
    assert scaffold.pnpm_version(manager, notes) == version
    assert bool(notes.all()) == noted


# ---------------------------------------------------------------------------------------------------------
# The CLI: errors, re-runs, --write


def test_no_workspace_file_is_a_one_line_error_naming_it(tmp_path):
    root = copy_example("board", tmp_path)
    (root / "pnpm-workspace.yaml").unlink()
    proc = run_inv("init", "--monorepo", str(root))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: no pnpm-workspace.yaml in {root}"), proc.stderr
    assert proc.stdout == ""


def test_a_workspace_without_apps_is_a_one_line_error(tmp_path):
    root = workspace(tmp_path / "w", {"packages/lib": {"name": "@s/lib", "scripts": {"build": "tsc"}}})
    proc = run_inv("init", "--monorepo", str(root))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no app in the workspace: none of the 1 packages under apps/*, packages/*")
    assert len(proc.stderr.splitlines()) == 1
    assert not (root / "atbb.yaml").exists()


def test_runs_in_the_current_folder_and_writes_nothing_by_default(tmp_path):
    root = copy_example("board", tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    proc = run_inv("--search-root", str(ROOT), "init", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == scaffold.propose(root).text  # stdout is the file alone: `inv init > atbb.yaml` works
    assert "could not infer" in proc.stderr and "health.path: /api/health is a guess" in proc.stderr
    assert "nothing was written; rerun with --write" in proc.stderr
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_rerun_on_an_existing_config_shows_a_diff_and_changes_nothing(tmp_path):
    root = copy_example("board", tmp_path)
    committed = (EXAMPLES / "board" / "atbb.yaml").read_text()
    (root / "atbb.yaml").write_text(committed)
    proc = run_inv("init", "--monorepo", str(root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("--- atbb.yaml (yours)\n+++ atbb.yaml (proposed by inv init)\n@@ ")
    assert "-  path: /api/boards\n" in proc.stdout and "+  path: /api/health\n" in proc.stdout
    assert "atbb.yaml exists and is unchanged; rerun with --write" in proc.stderr
    assert (root / "atbb.yaml").read_text() == committed
    assert not (root / ".dockerignore").exists()

    written = run_inv("init", "--monorepo", str(root), "--write")
    assert written.returncode == 0, written.stderr
    assert f"overwriting {root / 'atbb.yaml'} with the proposal (the diff above)" in written.stderr
    assert (root / "atbb.yaml").read_text() == scaffold.propose(root).text
    again = run_inv("init", "--monorepo", str(root))
    assert again.stdout == f"{root / 'atbb.yaml'} already is what inv init proposes\n"


USER_DOCKERIGNORE = "# mine\nnode_modules\n**/dist\n.git\ncoverage/\nsecrets.txt\n"


def test_write_merges_ignore_files_without_dropping_the_users_lines(tmp_path):
    root = copy_example("board", tmp_path)
    (root / ".dockerignore").write_text(USER_DOCKERIGNORE)
    gitignore = (root / ".gitignore").read_text()
    proc = run_inv("init", "--monorepo", str(root), "--write")
    assert proc.returncode == 0, proc.stderr
    docker = (root / ".dockerignore").read_text()
    # Every line of the user's, in its order, first; then only the missing ones (**/dist was there).
    assert docker.startswith(USER_DOCKERIGNORE)
    added = docker[len(USER_DOCKERIGNORE) :].splitlines()
    assert added[:2] == ["", scaffold.DOCKERIGNORE_HEADER]
    assert "**/dist" not in added and "**/node_modules" in added and "apps/web/build" in added and "*" not in added
    assert (root / ".gitignore").read_text().startswith(gitignore)
    assert "*.egg-info/" in (root / ".gitignore").read_text().splitlines()
    assert "added to" in proc.stderr and "wrote" in proc.stderr
    # A second run adds nothing.
    run_inv("init", "--monorepo", str(root), "--write")
    assert (root / ".dockerignore").read_text() == docker


# (the user's .dockerignore, lines that must come out right after the `*`, lines that must not appear)
DOCKERIGNORE_CASES = [
    ("allow-list", "*\n!apps/\n**/secret\n", ["!docker/", "!nginx/nginx.conf", "!package.json"], ["!apps/"]),
    ("deny-list", "node_modules\n.git\n", [], ["*", "!docker/"]),
    ("nothing", None, ["!docker/", "!nginx/nginx.conf", "!package.json"], []),
]


@pytest.mark.parametrize(("case", "existing", "after_star", "absent"), DOCKERIGNORE_CASES, ids=lambda c: str(c)[:12])
def test_dockerignore_merge(case, existing, after_star, absent):
    allow, deny = ["!docker/", "!nginx/nginx.conf", "!package.json", "!apps/"], ["**/node_modules", "**/.env"]
    plan = scaffold.merge_dockerignore(existing, allow, deny)
    lines = plan.text.splitlines()
    for line in (existing or "").splitlines():
        assert line in lines
    if existing is not None:
        kept = [line for line in lines if line in existing.splitlines()]
        assert kept == existing.splitlines()  # order kept
        added = [line for line in plan.added if line not in absent]
        assert list(plan.added) == added
    if after_star:
        star = lines.index("*")
        assert lines[star + 1 : star + 1 + len(after_star)] == after_star
    assert all(d in lines for d in deny)
    assert plan.created == (existing is None)


def test_dockerignore_that_hides_the_kit_is_noted_not_changed():
    plan = scaffold.merge_dockerignore("docker/\nnode_modules\n", ["!docker/"], ["**/node_modules"])
    assert plan.text.startswith("docker/\nnode_modules\n")
    assert any("'docker/'" in n and "remove it" in n for n in plan.notes)


def test_missing_example_glob_error_is_a_kit_error(tmp_path):
    root = workspace(tmp_path / "w", {"apps/a": app("@s/a", "node dist/index.js")})
    (root / "pnpm-workspace.yaml").write_text("packages: []\n")
    with pytest.raises(KitError, match="lists no packages"):
        scaffold.propose(root)


# (files under .git, the default branch proposed, whether a note says it is a guess)
BRANCHES = [
    (
        {"refs/remotes/origin/HEAD": "ref: refs/remotes/origin/trunk\n", "HEAD": "ref: refs/heads/feature\n"},
        "trunk",
        False,
    ),
    ({"HEAD": "ref: refs/heads/develop\n"}, "develop", True),
    ({"HEAD": "0123456789abcdef0123456789abcdef01234567\n"}, "main", True),
    ({}, "main", True),
]


@pytest.mark.parametrize(("files", "branch", "noted"), BRANCHES, ids=[b for _, b, _ in BRANCHES])
def test_default_branch(files, branch, noted, tmp_path):
    for name, text in files.items():
        (tmp_path / ".git" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / ".git" / name).write_text(text)
    notes = scaffold.Notes()
    assert scaffold.default_branch(tmp_path, notes) == branch
    assert bool(notes.of("release")) == noted


# ---------------------------------------------------------------------------------------------------------
# Runtime files


# (build script, tsconfig.json text or None, the folders it writes besides dist/)
BUILDS = [
    ("react-router build", None, ["build"]),
    ("next build", None, [".next"]),
    ("nuxt build", None, [".output"]),
    ("tsc -p tsconfig.json && node scripts/copy.mjs", '{"compilerOptions": {"outDir": "lib"}}', ["lib"]),
    ("tsc", '{"compilerOptions": {"outDir": "dist"}}', []),
    ("tsup src/index.ts --out-dir out", None, ["out"]),
    ("esbuild src/index.ts --bundle --outdir=bundle", None, ["bundle"]),
    ("vite build", None, []),
]


@pytest.mark.parametrize(("script", "tsconfig", "folders"), BUILDS, ids=[b[0] for b in BUILDS])
def test_build_outputs(script, tsconfig, folders, tmp_path):
    (tmp_path / "apps" / "x").mkdir(parents=True)
    if tsconfig:
        (tmp_path / "apps" / "x" / "tsconfig.json").write_text(tsconfig)
    pkg = scaffold.Package("apps/x", {"scripts": {"build": script}})
    assert [f for f in scaffold.build_outputs(pkg, tmp_path) if f != "dist"] == folders


def test_runtime_takes_existing_files_entries_but_not_sources_docs_or_the_migrate_package(tmp_path):
    root = workspace(
        tmp_path / "w",
        {
            "apps/api": app("@s/api", "node dist/index.js", files=["dist", "data", "src", "README.md", "gone", "*.js"]),
            "packages/db": {"name": "@s/db", "files": ["dist", "migrations"], "exports": "./dist/index.js"},
        },
        {
            "apps/api/data/a.json": "{}",
            "apps/api/src/index.ts": "",
            "apps/api/README.md": "",
            "packages/db/migrations/1.sql": "",
        },
    )
    notes = scaffold.Notes()
    packages = scaffold._workspace_packages(root, ["apps/*", "packages/*"], notes)
    assert scaffold.propose_runtime(packages, root, "", notes)[0] == [
        "*/dist",
        "apps/api/data",
        "packages/db/migrations",
    ]
    assert scaffold.propose_runtime(packages, root, "@s/db", notes)[0] == ["*/dist", "apps/api/data"]


def test_hostile_manifests_give_a_draft_or_a_kit_error(tmp_path):
    """Wrong types and shell-breaking text in package.json files never crash init or break the YAML."""
    root = workspace(
        tmp_path / "w",
        {
            "apps/api": {
                "name": "@s/api",
                "scripts": {"start": "node dist/index.js\nrm -rf /", "build": 5},
                "files": "x",
            },
            "apps/web": {"name": 7, "scripts": ["start"], "main": "./dist/web.js", "dependencies": "next"},
            "apps/odd": {"name": "@s/odd", "scripts": {"start": "node 'dist/a b.js' --title \"x: {y}\""}},
        },
        name="shop\nhacked: true",
        engines="node 22",
        description=["not", "text"],
        license={"type": "MIT"},
    )
    (root / "apps" / "broken").mkdir()
    (root / "apps" / "broken" / "package.json").write_text("{not json")
    proposal = scaffold.propose(root)
    data = yaml.safe_load(proposal.text)
    assert "hacked" not in data and data["monorepo"] == "."
    assert data["services"]["odd"]["command"] == ["node", "dist/a b.js", "--title", "x: {y}"]
    assert any("apps/broken/package.json:1: not valid JSON" in n for n in proposal.notes)
    assert any("spans several lines" in n for n in proposal.notes)
