"""The deployment guide and the README against the code they describe.

What is checked, and how:
- every `inv` call in a shell block (```sh, ```bash, ```shell, ```console) and in an inline code span parses
  with Invoke's own parser against the kit's namespace: the task exists, the flags exist, required
  positionals are given;
- every docker and Compose call (words, operators and redirections split as sh splits them) uses only options
  docker has, and the image (`<registry>/OWNER/<image.name>` from atbb.yaml), the host and container ports,
  the container names, the Compose file, project and services that atbb.yaml, the guide's own `docker run`
  lines and the Compose file define; a docker subcommand without a check fails;
- the environment variables the guide names (defined in `guide_env_names`) are those of
  .env.production.example, and every variable of that file is named in the guide;
- the guide has the design's ten sections, in order;
- every line of program output the guide quotes (each ```text block) is what the code prints: kit messages
  are triggered for real where that needs no Docker engine (`REAL_RUNS`); JSON log lines are checked
  against the writer (supervisor, nginx log_format, the services' log calls); the rest must be derivable
  from the string literals of atbb_kit/ and examples/forum/*/*/src, where a placeholder in the source may
  stand for a value (one word) or for a text of another program listed in `FOREIGN` (PostgreSQL's and
  Node's own messages, verified against the real image in tests/e2e/test_caddy.py);
- the example files the guide shows (`<!-- file: PATH -->` before a fence) are shown verbatim.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_inv

GUIDE = ROOT / "docs" / "deployment-guide.md"
README = ROOT / "README.md"
ADOPTING = ROOT / "docs" / "adopting.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
NEWCOMERS = ROOT / "docs" / "newcomers.md"
ENV_EXAMPLE = ROOT / ".env.production.example"
OWNER = "OWNER"  # the one placeholder the guide uses for the image's owner
SHELL_LANGS = {"sh", "bash", "shell", "console"}

SECTIONS = (
    "Prerequisites",
    "Quick start",
    "Environment configuration",
    "Database setup",
    "Running the container",
    "Reverse proxy",
    "Monitoring and logs",
    "Upgrading, backups and restore",
    "Troubleshooting",
    "Docker Compose example",
)


# ---------------------------------------------------------------------------------------------------------
# Markdown


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    source: str  # the file name, for messages
    shows: str | None  # PATH from a `<!-- file: PATH -->` comment right before the fence


_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_SHOWS = re.compile(r"^<!-- file: (\S+) -->$")


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, lang = opening.group(1), opening.group(2)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        previous = lines[start - 1].strip() if start else ""
        shows = _SHOWS.match(previous)
        blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, path.name, shows.group(1) if shows else None))
        i += 1
    return blocks


def prose(path: Path) -> str:
    """The file without its fenced blocks."""
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


def inline_code(path: Path) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(path))


def sections(path: Path) -> list[tuple[str, str]]:
    """(title, body) of each `## ` section, fenced blocks included."""
    found: list[tuple[str, list[str]]] = []
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            inside = not inside
        if not inside and line.startswith("## "):
            found.append((line[3:].strip(), []))
        elif found:
            found[-1][1].append(line)
    return [(title, "\n".join(body)) for title, body in found]


# ---------------------------------------------------------------------------------------------------------
# Shell lines: commands, with the leading VAR=value words apart


@dataclass(frozen=True)
class Cmd:
    env: dict[str, str]
    argv: list[str]
    where: str
    mention: bool = False  # an inline code span in prose, not a line of a shell block
    redirects: tuple[str, ...] = ()  # as written, without spaces: "2>&1", ">atbb.dump", "<backup.dump"


# Operators, longest first so `&&` is not read as two `&`. Redirections take the word after them as their
# target; an unquoted number right before one (`2>&1`) is the file descriptor, not an argument.
_OPERATORS = ("&&", "||", ";", "|", "&", "(", ")")
_REDIRECTS = (">>", ">&", "<&", "&>", ">", "<")


@dataclass(frozen=True)
class Token:
    text: str
    kind: str  # "word", "op" or "redirect"
    joined: bool = False  # no whitespace between this token and the one before it
    quoted: bool = False  # some of it was quoted (so `'2'>x` is an argument, not a file descriptor)


def shell_tokens(line: str) -> list[Token]:
    """POSIX shell words and operators of one line: quotes and backslashes as sh reads them, `$(...)` kept
    inside its word, `#` at the start of a word begins a comment."""
    tokens: list[Token] = []
    word: list[str] | None = None
    quoted = word_joined = False
    gap = True  # whitespace (or the start of the line) since the last token
    i, n = 0, len(line)

    def end_word() -> None:
        nonlocal word, quoted
        if word is not None:
            tokens.append(Token("".join(word), "word", word_joined, quoted))
        word, quoted = None, False

    while i < n:
        ch = line[i]
        if ch.isspace():
            end_word()
            gap, i = True, i + 1
            continue
        if word is None and ch == "#":
            break
        op = next((o for o in (*_REDIRECTS, *_OPERATORS) if line.startswith(o, i)), None)
        if op:
            end_word()
            tokens.append(Token(op, "redirect" if op in _REDIRECTS else "op", not gap))
            gap, i = False, i + len(op)
            continue
        if word is None:
            word, word_joined, gap = [], not gap, False
        if ch == "'":
            end = line.index("'", i + 1)
            word.append(line[i + 1 : end])
            quoted, i = True, end + 1
        elif ch == '"':
            i += 1
            while line[i] != '"':
                if line[i] == "\\" and line[i + 1] in '"\\$`':
                    i += 1
                word.append(line[i])
                i += 1
            quoted, i = True, i + 1
        elif ch == "\\":
            word.append(line[i + 1 : i + 2])
            i += 2
        elif line.startswith("$(", i):
            depth, j = 0, i + 1
            while True:
                depth += {"(": 1, ")": -1}.get(line[j], 0)
                j += 1
                if depth == 0:
                    break
            word.append(line[i:j])
            i = j
        else:
            word.append(ch)
            i += 1
    end_word()
    return tokens


def block_lines(block: Block) -> Iterator[str]:
    """Logical lines: continuations joined; in console blocks only the `$ ` lines."""
    pending = ""
    for raw in block.text.splitlines():
        line = raw
        if block.lang == "console":
            if not line.startswith("$ ") and not pending:
                continue
            line = line.removeprefix("$ ")
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield pending + line
        pending = ""


def split_commands(line: str, where: str, mention: bool = False) -> list[Cmd]:
    commands: list[Cmd] = []
    current: list[str] = []
    redirects: list[str] = []
    tokens = shell_tokens(line)
    i = 0
    while i <= len(tokens):
        token = tokens[i] if i < len(tokens) else Token(";", "op")
        i += 1
        if token.kind == "word":
            current.append(token.text)
            continue
        if token.kind == "redirect":
            fd = ""
            last = tokens[i - 2] if i >= 2 else None
            if token.joined and last and last.kind == "word" and not last.quoted and last.text.isdigit():
                fd = current.pop()
            target = tokens[i] if i < len(tokens) and tokens[i].kind == "word" else None
            assert target is not None, f"{where}: {token.text} without a target"
            redirects.append(f"{fd}{token.text}{target.text}")
            i += 1
            continue
        env: dict[str, str] = {}
        while current and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", current[0]):
            name, _, value = current.pop(0).partition("=")
            env[name] = value
        while current and current[0] in ("sudo", "exec"):
            current.pop(0)
        if current:
            commands.append(Cmd(env, current, where, mention, tuple(redirects)))
        current, redirects = [], []
    return commands


SHELL_CASES = [
    # (line, [(argv, redirects), ...])
    (
        "docker logs atbb 2>&1 | jq -cR '.level'",
        [(["docker", "logs", "atbb"], ("2>&1",)), (["jq", "-cR", ".level"], ())],
    ),
    ("docker logs atbb 2> err.log", [(["docker", "logs", "atbb"], ("2>err.log",))]),
    ("echo 2 > out", [(["echo", "2"], (">out",))]),
    ("echo '2'>out", [(["echo", "2"], (">out",))]),
    ("cmd >>log 2>&1 </dev/null", [(["cmd"], (">>log", "2>&1", "</dev/null"))]),
    ("a && b || c; d & e", [(["a"], ()), (["b"], ()), (["c"], ()), (["d"], ()), (["e"], ())]),
    (
        "sh -c 'pg_dump -Fc \"$URL\"' > atbb-$(date -u +%Y%m%d).dump",
        [(["sh", "-c", 'pg_dump -Fc "$URL"'], (">atbb-$(date -u +%Y%m%d).dump",))],
    ),
    ('X=1 Y="a b" sudo cmd "q \\"x\\"" # a comment', [(["cmd", 'q "x"'], ())]),
    (
        "docker inspect --format '{{.State.Health.Status}}' atbb",
        [(["docker", "inspect", "--format", "{{.State.Health.Status}}", "atbb"], ())],
    ),
    ("printf a\\ b", [(["printf", "a b"], ())]),
]


@pytest.mark.parametrize(("line", "expected"), SHELL_CASES, ids=[c[0] for c in SHELL_CASES])
def test_shell_lines_split_as_sh_reads_them(line, expected):
    assert [(c.argv, c.redirects) for c in split_commands(line, "test")] == expected


def test_leading_assignments_are_the_environment():
    (cmd,) = split_commands('ATBB_IMAGE=ghcr.io/o/a:1 ATBB_HOST_PORT="127.0.0.1:8080" docker compose ps', "test")
    assert cmd.env == {"ATBB_IMAGE": "ghcr.io/o/a:1", "ATBB_HOST_PORT": "127.0.0.1:8080"}
    assert cmd.argv == ["docker", "compose", "ps"]


def shell_commands(*paths: Path) -> list[Cmd]:
    out: list[Cmd] = []
    for path in paths:
        for block in fenced_blocks(path):
            if block.lang in SHELL_LANGS:
                for n, line in enumerate(block_lines(block)):
                    out += split_commands(line, f"{path.name}:{block.line + 1 + n}: {line.strip()}")
    return out


def inv_calls(*paths: Path) -> list[Cmd]:
    calls = [c for c in shell_commands(*paths) if c.argv[0] in ("inv", ".venv/bin/inv", "invoke")]
    for path in paths:
        for span in inline_code(path):
            # Spans with placeholders (`inv <task> --help`, `--image ...`) describe a form, not a call.
            if span.startswith("inv ") and not re.search(r"<|\.\.\.|…", span):
                calls += split_commands(span, f"{path.name}: `{span}`", mention=True)
    return calls


# ---------------------------------------------------------------------------------------------------------
# (a) inv calls parse with Invoke's parser


def parse_inv(argv: list[str], *, mention: bool = False) -> str | None:
    """None when Invoke would accept `argv` (without `inv`), else why not. A mention in prose (`inv restore`
    refuses ...) names a task without being a complete call: its positionals are not required."""
    from invoke import Program
    from invoke.exceptions import ParseError
    from invoke.parser import Parser, ParserContext

    from atbb_kit.tasks import namespace

    program = Program(namespace=namespace)
    try:
        core = Parser(initial=ParserContext(args=program.core_args()), ignore_unknown=True).parse_argv(argv)
        result = Parser(contexts=namespace.to_contexts()).parse_argv(core.unparsed)
    except ParseError as exc:
        if mention and "did not receive required positional arguments" in str(exc):
            return None
        return str(exc)
    for ctx in result:
        missing = [] if mention else [a.name for a in ctx.missing_positional_args]
        if missing:
            return f"{ctx.name}: missing positional argument(s) {', '.join(missing)}"
    return None


def test_guide_and_readme_call_inv():
    calls = inv_calls(GUIDE, README)
    names = {c.argv[1] for c in calls if len(c.argv) > 1 and not c.argv[1].startswith("-")}
    # The operator's tasks are all shown somewhere.
    assert {"doctor", "compose-up", "migrate", "backup", "restore", "smoke", "secret", "logs"} <= names


@pytest.mark.parametrize(
    "call", inv_calls(GUIDE, README, ADOPTING, NEWCOMERS, ARCHITECTURE), ids=lambda c: c.where[:90]
)
def test_inv_call_parses(call):
    problem = parse_inv(call.argv[1:], mention=call.mention)
    assert problem is None, f"{call.where}: {problem}"


def test_adopting_walks_through_every_step():
    """docs/adopting.md shows each task of the way from a monorepo to a published image, as a full line."""
    calls = [c for c in inv_calls(ADOPTING) if not c.mention]
    shown = {" ".join(c.argv[1:3]) for c in calls} | {c.argv[1] for c in calls if len(c.argv) > 1}
    steps = {"init", "init --write", "nginx-conf", "config --check", "routes", "routes --check", "image", "smoke"}
    assert steps | {"tags", "push"} <= shown, sorted(steps | {"tags", "push"} - shown)


def test_adopting_copy_list_names_kit_files():
    """Every path in the table of files to copy exists in the kit."""
    body = dict(sections(ADOPTING))["2. Copy the kit into the app"]
    rows = re.findall(r"^\| (`[^|]+`) \|", body, re.MULTILINE)
    paths = [p for row in rows for p in re.findall(r"`([^`]+)`", row)]
    assert {"tasks.py", "atbb_kit/", "docker/", "nginx/nginx.conf.template", "pyproject.toml"} <= set(paths)
    assert any(p.startswith(".github/workflows/") for p in paths)
    for path in paths:
        assert (ROOT / path).exists(), f"adopting.md says to copy {path}, which the kit does not have"


def test_adopting_links_resolve():
    text = ADOPTING.read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^\w\- ]", "", t).strip().lower().replace(" ", "-")
        for t in re.findall(r"^#{2,4} (.+)$", prose(ADOPTING), re.MULTILINE)
    }
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and not links - anchors, f"broken in-page links: {sorted(links - anchors)}"
    for target in re.findall(r"\]\((?!#|https?:)([^)#]+)", text):
        assert (ADOPTING.parent / target).exists(), f"broken link {target}"


# ---------------------------------------------------------------------------------------------------------
# The contributor docs (architecture.md, newcomers.md) name files and modules that exist


LAYERS = ("core", "commands", "infra", "ops", "tasks")
_PATH = re.compile(r"(?:[\w.-]+/)*[\w.-]+\.(?:py|md|toml|yml|yaml|sh|json|typed)|(?:[\w.-]+/)+")
_MODULE = re.compile(r"atbb_kit(?:\.\w+)+")


def named_paths(path: Path) -> list[str]:
    """Paths the page names: code spans that are a path, and paths inside its diagrams (unlabelled fences)."""
    found = [span for span in inline_code(path) if _PATH.fullmatch(span)]
    for block in fenced_blocks(path):
        if block.lang == "":
            found += [word.rstrip(":") for word in block.text.split() if _PATH.fullmatch(word.rstrip(":"))]
    return found


def _exists(name: str, page: Path) -> bool:
    candidates = (ROOT / name, ROOT / "atbb_kit" / name, page.parent / name)
    if any(c.exists() for c in candidates):
        return True
    # A bare file name (`stack.py` in a list of one folder's files) exists somewhere in the kit.
    return "/" not in name and any(p for p in ROOT.glob(f"**/{name}") if "node_modules" not in p.parts)


def _module_exists(dotted: str) -> bool:
    """Whether `atbb_kit.x.y` (or `atbb_kit.x.y.Name`) is a module of the kit, or a name in one."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for name in parts[end:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize("page", [ARCHITECTURE, NEWCOMERS], ids=lambda p: p.name)
def test_contributor_docs_name_real_files_and_modules(page):
    paths = named_paths(page)
    assert len(paths) > 10, paths
    missing = sorted({p for p in paths if not _exists(p, page)})
    assert not missing, f"{page.name} names files the kit does not have: {missing}"
    modules = set(_MODULE.findall(page.read_text(encoding="utf-8")))
    assert not {m for m in modules if not _module_exists(m)}, f"{page.name}: no such module"


def test_architecture_layer_table_lists_each_layers_own_files():
    rows = re.findall(r"^\| `(\w+)` \| (.+)$", dict(sections(ARCHITECTURE))["Five layers, one folder each"], re.M)
    assert [layer for layer, _ in rows] == list(LAYERS)
    for layer, row in rows:
        holds = row.split(" | ")[0]
        listed = set(re.findall(r"`([\w]+\.py)`", holds))
        for name in sorted(listed):
            assert (ROOT / "atbb_kit" / layer / name).is_file(), (
                f"architecture.md: atbb_kit/{layer}/{name} is not there"
            )
        present = {f.name for f in (ROOT / "atbb_kit" / layer).glob("*.py") if f.name != "__init__.py"}
        assert not present - listed, f"architecture.md: the {layer} row does not list {sorted(present - listed)}"


def test_architecture_states_the_layers_the_contract_enforces():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    assert layers == [f"atbb_kit.{name}" for name in reversed(LAYERS)]
    diagram = next(b.text for b in fenced_blocks(ARCHITECTURE) if "atbb_kit/tasks/" in b.text)
    assert re.findall(r"^atbb_kit/(\w+)/", diagram, re.M) == list(reversed(LAYERS))
    forbidden = next(c for c in contracts["contracts"] if c["type"] == "forbidden")["forbidden_modules"]
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert all(f"`{name}`" in text for name in forbidden)


def test_contributor_docs_links_resolve():
    for page in (ARCHITECTURE, NEWCOMERS):
        for target in re.findall(r"\]\((?!https?:)([^)#]+)(?:#([^)]+))?\)", page.read_text(encoding="utf-8")):
            file, anchor = target
            assert (page.parent / file).exists(), f"{page.name}: broken link {file}"
            if anchor:
                titles = re.findall(r"^#{2,4} (.+)$", prose(page.parent / file), re.MULTILINE)
                anchors = {re.sub(r"[^\w\- ]", "", t).strip().lower().replace(" ", "-") for t in titles}
                assert anchor in anchors, f"{page.name}: no section #{anchor} in {file}"


def test_readme_links_newcomers():
    table = README.read_text(encoding="utf-8").split("## Find your way", 1)[1].split("\n## ", 1)[0]
    assert "(docs/newcomers.md)" in table


def test_readme_links_adopting():
    table = README.read_text(encoding="utf-8").split("## Find your way", 1)[1].split("\n## ", 1)[0]
    assert "(docs/adopting.md)" in table


def test_parser_check_rejects_what_invoke_rejects():
    assert parse_inv(["migrate", "--image", "x"]) is None
    assert parse_inv(["restore", "backups/a.dump", "--force"]) is None
    assert "restore" in (parse_inv(["restore"]) or "")
    assert parse_inv(["migrate", "--no-such-flag"]) is not None
    assert parse_inv(["no-such-task"]) is not None


# ---------------------------------------------------------------------------------------------------------
# (b) docker lines use atbb.yaml's image, ports, Compose file, project and services


@cache
def cfg():
    from atbb_kit.core.config import load_config

    return load_config(path=ROOT / "atbb.yaml", environ={})


def image_repo() -> str:
    return f"{cfg().image.registry}/{OWNER}/{cfg().image.name}"


_TAG = re.compile(r"(latest|\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?)")
RUN_VALUE_FLAGS = {
    "-p",
    "--publish",
    "-e",
    "--env",
    "--env-file",
    "--name",
    "--network",
    "--restart",
    "--tmpfs",
    "--cap-drop",
    "--log-opt",
    "--sysctl",
    "-v",
    "--volume",
    "--user",
    "-u",
}
RUN_BOOL_FLAGS = {"--rm", "-d", "--detach", "-i", "--interactive", "-t", "--tty", "-it", "--read-only", "--init"}


def check_atbb_ref(ref: str, where: str) -> None:
    repo, _, tag = ref.rpartition(":")
    assert repo == image_repo(), f"{where}: image {ref!r}, expected {image_repo()}:<tag>"
    assert _TAG.fullmatch(tag), f"{where}: tag {tag!r} is not a release tag or latest"


def check_port(mapping: str, where: str) -> None:
    parts = mapping.split(":")
    host, container = parts[-2], parts[-1]
    assert container == "80", f"{where}: the container listens on 80, not {container}"
    assert host == str(cfg().compose.host_port), f"{where}: host port {host}, atbb.yaml has {cfg().compose.host_port}"
    assert len(parts) in (2, 3), f"{where}: {mapping!r}"


def check_docker_run(args: list[str], where: str) -> None:
    i = 0
    flags: list[tuple[str, str | None]] = []
    while i < len(args) and args[i].startswith("-"):
        flag, eq, value = args[i].partition("=")
        if flag in RUN_VALUE_FLAGS:
            if not eq:
                i += 1
                value = args[i]
            flags.append((flag, value))
        elif flag in RUN_BOOL_FLAGS:
            flags.append((flag, None))
        else:
            raise AssertionError(f"{where}: unknown `docker run` flag {flag} (add it to RUN_*_FLAGS if real)")
        i += 1
    assert i < len(args), f"{where}: no image"
    image, command = args[i], args[i + 1 :]
    for flag, value in flags:
        if flag in ("-p", "--publish"):
            check_port(value or "", where)
    if image == cfg().compose.postgres_image:
        assert command and command[0] in ("pg_dump", "pg_restore", "psql", "sh"), f"{where}: {command}"
        return
    check_atbb_ref(image, where)
    assert command in ([], ["migrate"]), f"{where}: the image runs `serve` (default) or `migrate`, got {command}"
    if not command:
        assert any(f == "-p" for f, _ in flags), f"{where}: a serving container must publish port 80"


@cache
def compose_services(*files: str) -> set[str]:
    found: set[str] = set()
    for file in files:
        data = yaml.safe_load((ROOT / file).read_text(encoding="utf-8"))
        found |= set(data.get("services", {}))
    return found


COMPOSE_COMMANDS = {"up", "run", "ps", "down", "logs", "exec", "pull", "stop", "config"}


def check_compose(args: list[str], env: dict[str, str], where: str) -> None:
    files: list[str] = []
    project = None
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "-f":
            files.append(args[i + 1])
        elif args[i] == "-p":
            project = args[i + 1]
        else:
            raise AssertionError(f"{where}: unexpected Compose option {args[i]}")
        i += 2
    assert files and files[0] == cfg().compose.file, f"{where}: first -f must be {cfg().compose.file}"
    for file in files:
        assert (ROOT / file).is_file(), f"{where}: {file} does not exist"
    assert project == cfg().compose.project, f"{where}: -p {project}, atbb.yaml has {cfg().compose.project}"
    assert i < len(args) and args[i] in COMPOSE_COMMANDS, f"{where}: unexpected Compose command"
    known = compose_services(*files)
    rest = [a for a in args[i + 1 :] if not a.startswith("-")]
    if args[i] in ("run", "exec", "logs", "pull", "stop"):
        assert rest and rest[0] in known, f"{where}: service {rest[:1]} not in {sorted(known)}"
    if args[i] == "up":
        assert rest, f"{where}: name the services to start (the kit starts them one by one)"
        assert set(rest) <= known, f"{where}: {rest} not all in {sorted(known)}"
    if "ATBB_IMAGE" in env:
        check_atbb_ref(env["ATBB_IMAGE"], where)
    if "ATBB_HOST_PORT" in env:
        check_port(env["ATBB_HOST_PORT"] + ":80", where)


def docker_calls() -> list[Cmd]:
    return [c for c in shell_commands(GUIDE, README) if c.argv[0] in ("docker", "docker-compose")]


def test_guide_shows_docker_run_and_compose():
    calls = docker_calls()
    kinds = {tuple(c.argv[:2]) for c in calls}
    assert {("docker", "run"), ("docker", "compose"), ("docker", "pull")} <= kinds


# The other docker subcommands the guide uses: (options taking a value, options without one), as the docker
# CLI (20.10 and later) defines them.
DOCKER_OPTIONS = {
    "pull": (set(), {"-q", "--quiet", "-a", "--all-tags"}),
    "inspect": ({"-f", "--format", "--type"}, {"-s", "--size"}),
    "logs": ({"--since", "--until", "-n", "--tail"}, {"-f", "--follow", "-t", "--timestamps", "--details"}),
    "stop": ({"-t", "--time", "-s", "--signal"}, set()),
    "rm": (set(), {"-f", "--force", "-v", "--volumes", "-l", "--link"}),
}
# --since/--until: a Go duration relative to now (10m, 1h30m) or a timestamp (RFC 3339 or Unix seconds).
_LOG_TIME = re.compile(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+|\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?|\d+(\.\d+)?")
# What `docker inspect --format` may read of the kit's container: its state, and the health the image's
# HEALTHCHECK reports.
_INSPECT_FIELD = re.compile(r"\{\{\s*\.State\.(Status|Running|ExitCode|Health\.Status)\s*\}\}")


def docker_options(sub: str, args: list[str], where: str) -> tuple[dict[str, str | None], list[str]]:
    """A docker subcommand's options (docker accepts them anywhere among the operands) and its operands."""
    valued, plain = DOCKER_OPTIONS[sub]
    options: dict[str, str | None] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in valued:
                if not eq:
                    i += 1
                    assert i < len(args), f"{where}: {name} needs a value"
                    value = args[i]
                options[name] = value
            elif name in plain and not eq:
                options[name] = None
            else:
                raise AssertionError(f"{where}: `docker {sub}` has no option {arg} (add it to DOCKER_OPTIONS if real)")
        else:
            operands.append(arg)
        i += 1
    return options, operands


@cache
def guide_containers() -> frozenset[str]:
    """The container names the guide's own `docker run --name` lines give."""
    names = set()
    for call in docker_calls():
        if call.argv[1] == "run":
            args = call.argv[2:]
            for i, arg in enumerate(args):
                if arg == "--name":
                    names.add(args[i + 1])
                elif arg.startswith("--name="):
                    names.add(arg.partition("=")[2])
    return frozenset(names)


def check_container_command(sub: str, args: list[str], where: str) -> None:
    options, operands = docker_options(sub, args, where)
    known = guide_containers()
    assert operands, f"{where}: `docker {sub}` names no container"
    unknown = set(operands) - known
    assert not unknown, (
        f"{where}: {sorted(unknown)} is no container the guide starts (docker run --name: {sorted(known)})"
    )
    if sub == "inspect":
        assert len(operands) == 1, f"{where}: one container at a time"
        template = options.get("--format") or options.get("-f")
        if template is not None:
            assert _INSPECT_FIELD.fullmatch(template), f"{where}: {template!r} reads no state field docker reports"
            if "Health" in template:
                dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
                assert re.search(r"^HEALTHCHECK ", dockerfile, re.M), f"{where}: the image has no HEALTHCHECK"
    elif sub == "logs":
        assert len(operands) == 1, f"{where}: docker logs reads one container"
        for name in ("--since", "--until"):
            if options.get(name) is not None:
                assert _LOG_TIME.fullmatch(options[name] or ""), f"{where}: {name} {options[name]!r}"
        tail = options.get("--tail") or options.get("-n")
        assert tail is None or tail == "all" or tail.isdigit(), f"{where}: --tail {tail!r}"
    elif sub == "stop":
        value = options.get("-t") or options.get("--time")
        assert value is None or value.isdigit(), f"{where}: -t takes whole seconds, got {value!r}"


def check_docker_call(call: Cmd) -> None:
    argv, where = call.argv, call.where
    if argv[0] == "docker-compose":
        check_compose(argv[1:], call.env, where)
        return
    assert len(argv) > 1, f"{where}: docker without a command"
    sub = argv[1]
    if sub == "compose":
        check_compose(argv[2:], call.env, where)
    elif sub == "run":
        check_docker_run(argv[2:], where)
    elif sub == "pull":
        _, operands = docker_options(sub, argv[2:], where)
        assert len(operands) == 1, f"{where}: docker pull takes one image"
        check_atbb_ref(operands[0], where)
    elif sub in ("inspect", "logs", "stop", "rm"):
        check_container_command(sub, argv[2:], where)
    else:
        raise AssertionError(f"{where}: no check for `docker {sub}` yet: add one, so the line is verified")
    # docker writes a container's stderr to its own stderr: the only redirections that make sense here are
    # merging it into stdout and reading or writing files.
    for redirect in call.redirects:
        assert re.fullmatch(r"2>&1|>>?[^&\s].*|<[^&\s].*", redirect), f"{where}: redirection {redirect}"


@pytest.mark.parametrize("call", docker_calls(), ids=lambda c: c.where[:90])
def test_docker_call_matches_atbb_yaml(call):
    check_docker_call(call)


def _call(line: str) -> Cmd:
    (cmd,) = split_commands(line, line)
    return cmd


GOOD_DOCKER_LINES = [
    "docker inspect --format '{{.State.Health.Status}}' atbb",
    "docker logs -f atbb",
    "docker logs --since 1h30m --tail 100 atbb",
    "docker logs atbb 2>&1",
    "docker stop -t 30 atbb",
    "docker rm -f atbb",
    "docker pull ghcr.io/OWNER/atbb:1.2.3",
]
BAD_DOCKER_LINES = [
    ("docker inspect --format '{{.State.Healthy}}' atbb", "reads no state field"),
    ("docker inspect atbb other", "is no container the guide starts"),
    ("docker logs --since yesterday atbb", "--since"),
    ("docker logs --follow-all atbb", "has no option --follow-all"),
    ("docker logs atbb atbb", "one container"),
    ("docker logs", "names no container"),
    ("docker stop -t 1m atbb", "whole seconds"),
    ("docker rm --purge atbb", "has no option --purge"),
    ("docker rm atbb-old", "is no container the guide starts"),
    ("docker pull ghcr.io/OWNER/other:1.2.3", "expected ghcr.io/OWNER/atbb"),
    ("docker pull -q ghcr.io/OWNER/atbb:1.2.3 extra", "takes one image"),
    ("docker exec atbb sh", "no check for `docker exec`"),
    ("docker logs atbb 2>&3", "redirection 2>&3"),
]


@pytest.mark.parametrize("line", GOOD_DOCKER_LINES)
def test_docker_check_accepts_real_calls(line):
    check_docker_call(_call(line))


@pytest.mark.parametrize(("line", "why"), BAD_DOCKER_LINES, ids=[c[0] for c in BAD_DOCKER_LINES])
def test_docker_check_rejects_what_docker_or_the_guide_would_not_accept(line, why):
    with pytest.raises(AssertionError, match=re.escape(why)):
        check_docker_call(_call(line))


def test_one_owner_placeholder_everywhere():
    text = GUIDE.read_text(encoding="utf-8")
    compose_default = re.search(r"\$\{ATBB_IMAGE:-([^}]+)\}", (ROOT / cfg().compose.file).read_text()).group(1)
    text = text.replace(compose_default, "")
    owners = set(re.findall(rf"{re.escape(cfg().image.registry)}/([^/\s`]+)/", text))
    assert owners == {OWNER}, f"one placeholder for the owner, found {owners}"
    assert "<owner>" not in text.lower()


# ---------------------------------------------------------------------------------------------------------
# (c) environment variables


def env_example_names() -> set[str]:
    """Every variable of .env.production.example, the commented-out future ones included."""
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
    return names


_NAME = r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*"


def guide_env_names() -> set[str]:
    """The variables the guide names. An environment variable is a token of upper-case letters, digits
    and underscores that stands where a variable stands: `NAME=` in code, `-e NAME`/`--env NAME`,
    `$NAME` or `${NAME}`, a code span `NAME` holding an underscore, or the first cell of a table row."""
    text = GUIDE.read_text(encoding="utf-8")
    code = "\n".join(b.text for b in fenced_blocks(GUIDE)) + "\n" + "\n".join(inline_code(GUIDE))
    names = set(re.findall(rf"(?<![\w.-])({_NAME})=", code))
    names |= set(re.findall(rf"(?:-e|--env)\s+({_NAME})\b", code))
    names |= set(re.findall(rf"\$\{{?({_NAME})\b", code))
    names |= {s for s in inline_code(GUIDE) if re.fullmatch(_NAME, s) and "_" in s}
    names |= set(re.findall(rf"^\|\s*`({_NAME})`\s*\|", text, re.MULTILINE))
    return names


def kit_env_names() -> set[str]:
    """ATBB_* names the kit or the Compose file reads: config overrides, the kit's own flags, Compose's."""
    from atbb_kit.core.config import NON_CONFIG_ENV, effective_items, env_name

    names = {env_name(path) for path, _, _ in effective_items(cfg())} | set(NON_CONFIG_ENV)
    return names | compose_interpolation()


def compose_interpolation() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / cfg().compose.file).read_text(encoding="utf-8")))


# Not the app's configuration, so not in .env.production.example: named on purpose.
OTHER_VARIABLES = {
    "DB_WAIT_TIMEOUT": "the migrator's retry time, per run; `inv migrate` sets it from migrate.wait_timeout",
    "DOCKER_HOST": "the docker client's engine address",
}


def test_env_example_is_parsed():
    assert {"DATABASE_URL", "SESSION_SECRET", "REDIS_URL", "POSTGRES_PASSWORD"} <= env_example_names()


def test_every_variable_the_guide_names_exists():
    named = guide_env_names()
    assert {"DATABASE_URL", "DB_WAIT_TIMEOUT", "ATBB_IMAGE"} <= named  # the definition finds them
    allowed = env_example_names() | compose_interpolation() | set(OTHER_VARIABLES)
    kit = {n for n in named if n.startswith("ATBB_")}
    assert kit <= kit_env_names(), f"not read by the kit or the Compose file: {sorted(kit - kit_env_names())}"
    unknown = named - allowed - kit
    assert not unknown, f"the guide names variables .env.production.example lacks: {sorted(unknown)}"


def test_every_variable_of_the_env_example_is_in_the_guide():
    text = GUIDE.read_text(encoding="utf-8")
    missing = {n for n in env_example_names() if not re.search(rf"\b{n}\b", text)}
    assert not missing, f"the guide does not mention {sorted(missing)}"


def test_required_and_optional_tables_match_atbb_yaml():
    body = dict(sections(GUIDE))["3. Environment configuration"]
    required = body[body.index("Required:") : body.index("Optional:")]
    optional = body[body.index("Optional:") : body.index("Only for the Compose")]
    table = re.compile(r"^\|\s*`([A-Z_]+)`", re.MULTILINE)
    assert set(table.findall(required)) == set(cfg().env.required)
    assert set(cfg().env.optional) <= set(table.findall(optional))


# ---------------------------------------------------------------------------------------------------------
# (d) the ten sections


def test_the_ten_sections_in_order():
    titles = [t for t, _ in sections(GUIDE)]
    assert titles == [f"{n}. {title}" for n, title in enumerate(SECTIONS, 1)]


def test_contents_links_resolve():
    anchors = {
        re.sub(r"[^\w\- ]", "", t).strip().lower().replace(" ", "-")
        for t in re.findall(r"^#{2,4} (.+)$", prose(GUIDE), re.MULTILINE)
    }
    links = set(re.findall(r"\]\(#([^)]+)\)", GUIDE.read_text(encoding="utf-8")))
    assert not links - anchors, f"broken in-page links: {sorted(links - anchors)}"
    for target in re.findall(r"\]\((?!#|https?:)([^)#]+)", GUIDE.read_text(encoding="utf-8")):
        assert (GUIDE.parent / target).exists(), f"broken link {target}"


def test_troubleshooting_entries_start_with_a_message():
    body = dict(sections(GUIDE))["9. Troubleshooting"]
    entries = re.split(r"^### ", body, flags=re.MULTILINE)[1:]
    assert len(entries) >= 15
    for entry in entries:
        title, _, rest = entry.partition("\n")
        assert rest.lstrip().startswith("```text\n"), f"entry {title!r} must start with the message"
        assert "**Cause.**" in rest and "**Fix.**" in rest, f"entry {title!r}: cause and fix"
    assert "inv smoke" in body.split("### ")[0], "the manual-testing note points at inv smoke"


# ---------------------------------------------------------------------------------------------------------
# Example files shown verbatim


def test_example_files_are_shown_verbatim():
    shown = [b for b in fenced_blocks(GUIDE) if b.shows]
    assert {b.shows for b in shown} >= {
        "docs/Caddyfile.example",
        "docs/nginx-proxy.conf.example",
        "docs/traefik.example.yml",
        "docker-compose.example.yml",
    }
    for block in shown:
        assert block.text == (ROOT / block.shows).read_text(encoding="utf-8"), f"{block.shows} drifted"


def test_readme_newcomer_path():
    """What it is, the two set-up commands (each a complete line, checked above like every command),
    `inv --list`, and the way to the guide."""
    text = README.read_text(encoding="utf-8")
    two = text[text.index("## Two commands") :]
    block = next(b for b in fenced_blocks(README) if b.line > text[: text.index("## Two commands")].count("\n"))
    commands = [ln for ln in block.text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2 and all(c.startswith("bash scripts/") for c in commands), commands
    assert "inv --list" in two
    assert "(docs/deployment-guide.md)" in text


# ---------------------------------------------------------------------------------------------------------
# (e) quoted output is what the code prints


# Text other programs write, which our code passes on inside its own messages. Each was seen from the
# real image and PostgreSQL 16; tests/e2e/test_caddy.py produces them again.
FOREIGN = {
    'password authentication failed for user "atbb"': "PostgreSQL (SQLSTATE 28P01)",
    'database "atbb" does not exist': "PostgreSQL (SQLSTATE 3D000)",
    "permission denied for schema public": "PostgreSQL (SQLSTATE 42501)",
    "getaddrinfo ENOTFOUND postgres": "Node's resolver, for a name that does not resolve",
    "connect ECONNREFUSED 127.0.0.1:5432": "Node, for a port nothing listens on",
}
# Whole lines other programs print; tests/integration/test_proxy_examples.py runs nginx to produce it.
FOREIGN_LINES = {
    "nginx-bind": re.compile(
        r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[emerg\] \d+#\d+: bind\(\) to 0\.0\.0\.0:80 failed \(13: Permission denied\)"
    ),
}


@cache
def quoted_lines(path: Path = GUIDE) -> list[tuple[str, str]]:
    """(line, where) for every line of every ```text block: the program output the guide quotes."""
    out = []
    for block in fenced_blocks(path):
        if block.lang == "text":
            for n, line in enumerate(block.text.splitlines()):
                if line.strip():
                    out.append((line, f"{path.name}:{block.line + 1 + n}"))
    return out


# --- real runs: the kit's messages that need no Docker engine


GOOD_ENV = {
    "DATABASE_URL": "postgres://atbb:c2f0e9d94d1a7b36a2e1@postgres:5432/atbb",
    "FORUM_DID": "did:plc:abcdefghijklmnopqrstuvwx",
    "PDS_URL": "https://pds.example.com",
    "OAUTH_PUBLIC_URL": "https://forum.example.com",
    "SESSION_SECRET": "9" * 64,
    "POSTGRES_USER": "atbb",
    "POSTGRES_PASSWORD": "c2f0e9d94d1a7b36a2e1",
    "POSTGRES_DB": "atbb",
}


def _without(*names: str, **changes: str) -> dict[str, str]:
    return {**{k: v for k, v in GOOD_ENV.items() if k not in names}, **changes}


DRY_MIGRATE = ("migrate", "--env-file", ".env", "--image", "atbb:docs", "--dry-run")
# (name, env file values or None for "no file" or "example" for the template, inv args, extra environment)
REAL_RUNS = [
    ("missing", _without("FORUM_DID", "SESSION_SECRET"), DRY_MIGRATE, {}),
    ("short-secret", _without(SESSION_SECRET="too-short"), DRY_MIGRATE, {}),
    ("bad-did", _without(FORUM_DID="forum.example.com"), DRY_MIGRATE, {}),
    ("bad-pds", _without(PDS_URL="pds.example.com"), DRY_MIGRATE, {}),
    ("bad-oauth", _without(OAUTH_PUBLIC_URL="forum.example.com"), DRY_MIGRATE, {}),
    ("no-file", None, DRY_MIGRATE, {}),
    ("placeholders", "example", ("compose-up", "--env-file", ".env"), {}),
    ("pg-mismatch", _without(POSTGRES_PASSWORD="another-password"), ("compose-up", "--env-file", ".env"), {}),
    ("no-engine", GOOD_ENV, ("status",), {"DOCKER_HOST": "unix://{tmp}/docker.sock"}),
    ("unknown-atbb-var", GOOD_ENV, ("config", "--check"), {"ATBB_IMAGE_BAS": "x"}),
]


@pytest.fixture(scope="module")
def real_output(tmp_path_factory) -> dict[str, list[str]]:
    """Each REAL_RUNS case run as a user would, in a copy of the kit's config; its output lines, with the
    scratch folder written as the guide writes it."""
    out: dict[str, list[str]] = {}
    for name, values, args, extra in REAL_RUNS:
        here = tmp_path_factory.mktemp(name)
        for file in ("atbb.yaml", "tasks.py", ".env.production.example", "docker-compose.example.yml"):
            shutil.copy(ROOT / file, here / file)
        env_file = here / ".env"
        if values == "example":
            shutil.copy(ENV_EXAMPLE, env_file)
        elif values is not None:
            env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        if env_file.exists():
            env_file.chmod(0o600)
        env = {k: v.format(tmp=here) for k, v in extra.items()}
        proc = run_inv(*args, cwd=here, env=env, timeout=60)
        text = (proc.stdout + proc.stderr).replace(f"unix://{here}/docker.sock", "unix:///var/run/docker.sock")
        assert proc.returncode != 0, f"{name}: expected a failure, got: {text}"
        out[name] = [line for line in text.splitlines() if line.strip()]
    return out


def test_every_real_run_is_quoted_in_the_guide(real_output):
    quoted = {line for line, _ in quoted_lines()}
    for name, lines in real_output.items():
        assert quoted & set(lines), f"{name}: the guide quotes none of {lines}"


# --- JSON log lines


ENTRYPOINT = (ROOT / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
BASE_KEYS = {"time", "level", "msg"}


def nginx_log_keys() -> set[str]:
    conf = (ROOT / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    fmt = conf[conf.index("log_format atbb_json") : conf.index("access_log")]
    return set(re.findall(r'"(\w+)":', fmt))


def ts_sources() -> str:
    files = sorted((ROOT / "examples" / "forum").glob("*/*/src/**/*.ts"))
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def check_json_line(line: str) -> str | None:
    """None when `line` is a line its writer can produce, else why not."""
    data = json.loads(line)
    keys = set(data)
    if data.get("source") == "nginx":
        return None if keys == nginx_log_keys() else f"nginx lines have {sorted(nginx_log_keys())}"
    if data.get("source") == "supervisor":
        # The level is a literal, or "$level" where the script picks it at run time.
        calls = re.finditer(
            rf'log (?:{data.get("level")}|"\$level") "{re.escape(data.get("msg", ""))}"(.*)', ENTRYPOINT
        )
        fields = [set(re.findall(r'\\"(\w+)\\":', call.group(1))) for call in calls]
        if not fields:
            return f'entrypoint.sh has no `log {data.get("level")} "{data.get("msg")}"`'
        extra = keys - BASE_KEYS - {"source"}
        return None if extra in fields else f"the supervisor writes {sorted(map(sorted, fields))} with that message"
    if data.get("service") not in ("appview", "web"):
        return "neither nginx, the supervisor nor a service"
    sources = ts_sources()
    call = re.search(rf"\.{data.get('level')}\(\s*'{re.escape(data.get('msg', ''))}'(.{{0,300}}?)\);", sources, re.S)
    if not call:
        return f"no log.{data.get('level')}('{data.get('msg')}') in examples/forum"
    missing = {k for k in keys - BASE_KEYS - {"service"} if not re.search(rf"\b{k}\b", call.group(1))}
    return f"{sorted(missing)} are not fields of that log call" if missing else None


def test_json_line_check_rejects_what_no_writer_prints():
    ok = '{"time":"t","level":"info","source":"supervisor","msg":"started child","child":"nginx","pid":1}'
    assert check_json_line(ok) is None
    assert check_json_line(ok.replace("started child", "started kid"))
    assert check_json_line(ok.replace('"pid":1', '"pid":1,"extra":2'))
    assert check_json_line('{"time":"t","level":"info","msg":"listening","service":"web","host":"h","port":1}') is None
    assert check_json_line('{"time":"t","level":"info","msg":"listening","service":"web","nope":1}')
    assert check_json_line('{"time":"t","level":"warn","msg":"listening","service":"web"}')
    assert check_json_line('{"time":"t","source":"nginx","status":200}')


# --- derivation from the sources' string literals


@dataclass(frozen=True)
class Template:
    literals: tuple[str, ...]  # n+1 literal pieces around n holes
    substantive: bool  # has a word of three letters or more of its own


_PY_FIELD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])?(?:![rsa])?(?::[^{}]*)?\}")


def _template(pieces: list[str]) -> Template | None:
    # A trailing newline (`...\n` written to stdout) is not part of the line the user sees.
    pieces[0], pieces[-1] = pieces[0].lstrip("\n"), pieces[-1].rstrip("\n")
    pieces = [p.replace("\n", " ") for p in pieces]
    if not "".join(pieces):
        return None  # only placeholders: would match anything
    return Template(tuple(pieces), bool(re.search(r"[A-Za-z]{3,}", "".join(pieces))))


def python_templates(text: str) -> Iterator[Template]:
    for node in ast.walk(ast.parse(text)):
        pieces: list[str] | None = None
        if isinstance(node, ast.JoinedStr):
            pieces = [""]
            for value in node.values:
                if isinstance(value, ast.Constant):
                    pieces[-1] += str(value.value)
                else:
                    pieces.append("")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip():
            # str.format templates: {name} fields are placeholders too.
            pieces = _PY_FIELD.split(node.value)
        if pieces is not None and len("".join(pieces)) < 2000:
            made = _template(pieces)
            if made:
                yield made


_TS_ESCAPES = {"n": "\n", "t": "\t", "'": "'", '"': '"', "`": "`", "\\": "\\", "$": "$"}


def ts_templates(text: str) -> Iterator[Template]:
    """String and template literals of a TypeScript file (comments and regex literals skipped)."""
    i, n = 0, len(text)
    previous = ""  # last significant character, to tell a regex literal from a division
    while i < n:
        ch = text[i]
        if text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if ch == "/" and previous in "(,=:[!&|?{};":
            j = i + 1
            in_class = False
            while j < n and (text[j] != "/" or in_class):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "[":
                    in_class = True
                elif text[j] == "]":
                    in_class = False
                j += 1
            i = j + 1
            previous = "x"
            continue
        if ch in "'\"`":
            pieces, j, depth = [""], i + 1, 0
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    pieces[-1] += _TS_ESCAPES.get(text[j + 1], text[j + 1])
                    j += 2
                    continue
                if ch == "`" and text.startswith("${", j):
                    depth, j = 1, j + 2
                    while j < n and depth:
                        depth += {"{": 1, "}": -1}.get(text[j], 0)
                        j += 1
                    pieces.append("")
                    continue
                pieces[-1] += text[j]
                j += 1
            made = _template(pieces)
            if made:
                yield made
            i = j + 1
            previous = "x"
            continue
        if not ch.isspace():
            previous = ch
        i += 1


@cache
def templates() -> tuple[Template, ...]:
    found: set[Template] = set()
    for path in sorted((ROOT / "atbb_kit").rglob("*.py")):
        found.update(python_templates(path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "examples" / "forum").glob("*/*/src/**/*.ts")):
        found.update(ts_templates(path.read_text(encoding="utf-8")))
    return tuple(found)


@cache
def _by_kind() -> tuple[frozenset[str], tuple[Template, ...]]:
    """The literals without placeholders (a set: looked up, not searched), and the templates with some."""
    plain = frozenset(t.literals[0] for t in templates() if len(t.literals) == 1)
    return plain, tuple(t for t in templates() if len(t.literals) > 1)


@cache
def derive(s: str, weak: bool = True) -> bool:
    """True when `s` is one of the sources' literals with its placeholders filled: each by one word, by a
    FOREIGN text, or by another derivable text.

    A weak template, one of placeholders and punctuation only (`${name} ${rule.expect}`, f"{head}: {tail}"),
    must have a placeholder filled by a FOREIGN text or by a text that a substantive template derives
    (`weak=False` below): weak templates never chain, so words cannot be strung together from nothing."""
    plain, holed = _by_kind()
    if s in plain:
        return True
    for t in holed:
        if not (weak or t.substantive):
            continue
        if not s.startswith(t.literals[0]) or not s.endswith(t.literals[-1]):
            continue
        if any(lit not in s for lit in t.literals[1:-1]):
            continue
        if _fills(t, s):
            return True
    return False


def _fills(t: Template, s: str) -> bool:
    """Whether `s` fills `t`'s placeholders validly; each placeholder is judged as soon as it is placed."""
    lits = t.literals
    end = len(s) - len(lits[-1])

    def place(k: int, pos: int, derived: bool) -> bool:
        # Placeholder k lies between lits[k] (ending at pos) and lits[k + 1].
        last = k + 1 == len(lits) - 1
        if last:
            stops = [end] if end > pos else []
        else:
            nxt = lits[k + 1]
            stops = [j for j in range(pos + 1, end - len(nxt) + 1) if s.startswith(nxt, j)]
        for j in stops:
            kind = _fill(s[pos:j], t.substantive)
            if kind is None:
                continue
            now = derived or kind == "derived"
            if last:
                if t.substantive or now:
                    return True
            elif place(k + 1, j + len(lits[k + 1]), now):
                return True
        return False

    return place(0, len(lits[0]), False)


def _fill(hole: str, substantive: bool) -> str | None:
    if hole in FOREIGN:
        return "derived"
    if not re.search(r"\s", hole):
        return "word"
    return "derived" if derive(hole, weak=substantive) else None


# The kit's boundary (tasks/_base.report) prints `error: <what> — <fix>`; warnings are `warning: <what>`.
KIT_LINE = re.compile(r"(error|warning): (.+?)(?: — (.+))?")


def derive_line(line: str) -> bool:
    """derive() for one printed line, taking a kit line apart at the boundary's own separators first."""
    kit = KIT_LINE.fullmatch(line)
    if kit and derive(kit.group(2)) and (kit.group(3) is None or derive(kit.group(3))):
        return True
    return derive(line)


def test_kit_lines_have_the_boundary_format(capsys):
    from atbb_kit.core.errors import KitError
    from atbb_kit.tasks._base import report

    report(KitError("the what", "the fix"))
    report(KitError("one\ntwo", "fix"))
    assert capsys.readouterr().err.splitlines() == ["error: the what — the fix", "error: one", "error: two — fix"]


def test_derivation_accepts_real_messages_and_rejects_typos():
    assert derive("waiting for database (3/60 s): getaddrinfo ENOTFOUND postgres")
    assert derive("config error: FORUM_DID must be a did:plc: or did:web: DID")
    assert not derive("config error: FORUM_DID must be a did:plc: or did:wbe: DID")
    assert not derive("migrate error: cannot use the database after all: getaddrinfo ENOTFOUND postgres")
    assert not derive_line("error: this sentence was never in the code — neither was this")
    assert derive_line(
        "error: smoke: 1 of 10 checks failed: /api/health answers 200 from appview — see the reason above"
    )
    assert not derive("2026/11/27 13:04:43 [emerg] 11#11: bind() to 0.0.0.0:80 failed (13: Permission denied)")


@pytest.fixture(scope="module")
def quoted() -> list[tuple[str, str]]:
    lines = quoted_lines()
    assert len(lines) > 40
    return lines


@pytest.mark.parametrize("index", range(len(quoted_lines())), ids=lambda i: quoted_lines()[i][1])
def test_quoted_line_is_what_the_code_prints(index, quoted, real_output):
    line, where = quoted[index]
    if line.startswith("{"):
        problem = check_json_line(line)
        assert problem is None, f"{where}: {line}\n{problem}"
        return
    if any(line in lines for lines in real_output.values()):
        return
    if any(p.fullmatch(line) for p in FOREIGN_LINES.values()):
        return
    assert derive_line(line), f"{where}: no message in atbb_kit/ or examples/forum/*/*/src can print:\n{line}"
