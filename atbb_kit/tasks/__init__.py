"""The Invoke namespace: one module per concern, composed here."""

from invoke import Collection

from atbb_kit.tasks import config_tasks


def build_namespace() -> Collection:
    ns = Collection()
    ns.add_task(config_tasks.config)
    return ns


namespace = build_namespace()
