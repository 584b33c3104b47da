"""Docker image references, parsed the way the docker client parses them. Pure: no I/O, no imports beyond re.

    reference  := name [":" tag] ["@" digest]
    name       := [domain "/"] path            at most 255 characters
    domain     := host [":" port]              only when the first part holds "." or ":", or is localhost
    path       := component ("/" component)*   lower case: [a-z0-9]+ joined by ".", "_", "__" or "-"+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := sha256:<64 hex> | sha512:<128 hex>

The grammar is that of the distribution/reference package the docker CLI uses. The kit checks every
reference it reads (atbb.yaml, ATBB_* variables, --image/--tag/--base flags) with `parse`, so a bad one is
refused with its reason before anything runs, instead of reaching `docker` (or a dry run) unchecked.
Errors are ValueErrors whose message says what is wrong; callers add which key or flag held the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAME_MAX = 255
TAG_MAX = 128
# A whole reference: a name, a tag and the longest digest, with their separators.
REFERENCE_MAX = NAME_MAX + 1 + TAG_MAX + 1 + len("sha512:") + 128

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"(?P<host>\[[0-9A-Fa-f:]+\]|{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*)(?::(?P<port>[0-9]{{1,5}}))?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGESTS = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
_ALLOWED = re.compile(r"[A-Za-z0-9._:/@\[\]-]*")
EXAMPLE = "ghcr.io/owner/atbb:1.0.0"


@dataclass(frozen=True)
class Reference:
    domain: str | None
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def shown(value: str, limit: int = 60) -> str:
    """`value` for an error message: repr'd and cut, so a 5 MB value never becomes a 5 MB line."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"… ({len(value)} characters)"


def check_path(path: str) -> str:
    """A repository path without registry or tag (image.name): lower-case components joined by '/'."""
    if not path:
        raise ValueError("the repository name is empty")
    if len(path) > NAME_MAX:
        raise ValueError(f"a repository name has at most {NAME_MAX} characters, this one has {len(path)}")
    for component in path.split("/"):
        if not component:
            raise ValueError(f"{shown(path)} has an empty part between '/' (or one at an end)")
        if _COMPONENT.fullmatch(component):
            continue
        if _COMPONENT.fullmatch(component.lower()):
            raise ValueError(f"{shown(path)} holds upper case; registries only take lower-case repository names")
        raise ValueError(
            f"{shown(path)} is not a repository name: each part between '/' is lower-case letters and digits, "
            "joined by '.', '_', '__' or dashes"
        )
    if re.fullmatch(r"[a-f0-9]{64}", path):
        raise ValueError(f"{shown(path)} is 64 hex digits, which docker reads as an image id")
    return path


def _check_domain(domain: str) -> None:
    match = _DOMAIN.fullmatch(domain)
    if not match:
        raise ValueError(f"registry {shown(domain)} is not a host like ghcr.io or localhost:5000")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"registry {shown(domain)} has a port that is not a number from 1 to 65535")


def parse(text: str) -> Reference:
    """A Docker image reference, or a ValueError saying what is wrong with it."""
    if not text:
        raise ValueError(f"the image reference is empty (expected one like {EXAMPLE})")
    if len(text) > REFERENCE_MAX:
        raise ValueError(f"an image reference has at most {REFERENCE_MAX} characters, this one has {len(text)}")
    if not _ALLOWED.fullmatch(text):
        bad = sorted({ch for ch in text if not _ALLOWED.fullmatch(ch)})
        listed = " ".join(repr(ch) for ch in bad[:5])
        raise ValueError(
            f"{shown(text)} is not an image reference: it holds {listed} (a reference like {EXAMPLE} "
            "has only letters, digits and . _ - : / @)"
        )
    rest, at, digest = text.partition("@")
    if at:
        algorithm, _, hexdigits = digest.partition(":")
        pattern = _DIGESTS.get(algorithm)
        if pattern is None or not pattern.fullmatch(hexdigits):
            raise ValueError(f"{shown(text)} has a digest that is not sha256: and 64 lower-case hex digits")
    tag = None
    colon, slash = rest.rfind(":"), rest.rfind("/")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"{shown(text)} has an invalid tag {shown(tag)}: 1 to {TAG_MAX} letters, digits, _ . -, "
                "not starting with . or -"
            )
    first, sep, remainder = rest.partition("/")
    domain = None
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        _check_domain(first)
        domain, rest = first, remainder
    check_path(rest)
    if len(rest) + (len(domain) + 1 if domain else 0) > NAME_MAX:
        raise ValueError(f"{shown(text)} is too long: a name with its registry has at most {NAME_MAX} characters")
    return Reference(domain, rest, tag, digest or None)


def problem(text: str) -> str | None:
    """Why `text` is not an image reference, or None when it is one."""
    try:
        parse(text)
    except ValueError as exc:
        return str(exc)
    return None
