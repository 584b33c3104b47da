"""Which service a request goes to: the one definition of route precedence, shared by config validation,
the nginx renderer, `inv routes` and `inv smoke`.

The rules are nginx's own, so the table the kit prints is what the rendered nginx.conf does:
1. Host: a request whose Host is named by some route's `host:` is served by that host's routes plus the
   host-less ones it does not shadow (same match and path). A `*.example.org` host covers every subdomain;
   an exact host name wins over a wildcard. Any other Host gets the host-less routes.
2. Within those routes, an `exact` route for the very path wins.
3. Otherwise the longest `prefix` route that the path starts with.
Pure: no I/O, no nginx. Tests compare tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Route(Protocol):
    # Read-only members: config.RouteConfig is frozen and narrows `match` and `cache` to Literals.
    @property
    def path(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def match(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def cache(self) -> str | None: ...


@dataclass(frozen=True)
class Server:
    """One nginx server block: the host names it answers (None: every other host) and its routes."""

    host: str | None
    routes: tuple[Route, ...]


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _hosts(routes: Iterable[Route]) -> list[str]:
    seen: list[str] = []
    for route in routes:
        if route.host and route.host not in seen:
            seen.append(route.host)
    return seen


def servers(routes: Sequence[Route]) -> list[Server]:
    """The default server first, then one per named host, each with its effective routes in precedence
    order (exact routes, then prefixes longest first)."""
    hostless = [r for r in routes if r.host is None]
    out = [Server(None, tuple(_ordered(hostless)))]
    for host in _hosts(routes):
        own = [r for r in routes if r.host == host]
        shadowed = {(r.match, r.path) for r in own}
        inherited = [r for r in hostless if (r.match, r.path) not in shadowed]
        out.append(Server(host, tuple(_ordered([*own, *inherited]))))
    return out


def _ordered(routes: Iterable[Route]) -> list[Route]:
    return sorted(routes, key=lambda r: (r.match != "exact", -len(r.path), r.path))


def server_for(routes: Sequence[Route], host: str | None) -> Server:
    all_servers = servers(routes)
    if host:
        host = host.split(":", 1)[0].lower().rstrip(".")
        named = [s for s in all_servers[1:] if s.host and _host_matches(s.host, host)]
        # nginx: an exact name first, then the longest wildcard.
        named.sort(key=lambda s: ((s.host or "").startswith("*."), -len(s.host or "")))
        if named:
            return named[0]
    return all_servers[0]


def resolve(routes: Sequence[Route], path: str, host: str | None = None) -> Route:
    """The route nginx picks for `path` on `host`. Config validation guarantees a host-less prefix route
    for '/', so every path resolves."""
    server = server_for(routes, host)
    for route in server.routes:
        if route.match == "exact" and route.path == path:
            return route
    for route in server.routes:
        if route.match == "prefix" and path.startswith(route.path):
            return route
    raise LookupError(f"no route for {path!r}; routes need a prefix route for '/'")


def sample_path(route: Route) -> str:
    """A path that this route, and no other, is meant to serve: the path itself, or a child of a prefix."""
    if route.match == "exact" or not route.path.endswith("/"):
        return route.path
    return route.path + "atbb-smoke-probe"
