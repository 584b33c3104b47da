"""The Helm chart in deploy/helm/atbb: its values generated from atbb.yaml, checked and validated offline."""

from __future__ import annotations

# docker/entrypoint.sh: nginx gets SUPERVISOR_NGINX_GRACE (5 s) to drain, then each service its own grace,
# one after the other in reverse start order.
NGINX_GRACE = 5
# Time for tini and the kernel after the last child: the platform's kill must come after the supervisor's.
GRACE_MARGIN = 5


def stop_grace_seconds(cfg) -> int:
    """The supervisor's longest graceful stop for this atbb.yaml."""
    return NGINX_GRACE + sum(svc.grace for svc in cfg.services.values())
