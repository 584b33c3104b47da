"""The Invoke namespace: one module per concern, composed here."""

from invoke import Collection

from atbb_kit.tasks import config_tasks, image, quality


def build_namespace() -> Collection:
    ns = Collection()
    ns.add_task(config_tasks.config)
    ns.add_task(quality.test)
    ns.add_task(quality.build)
    ns.add_task(image.image)
    return ns


namespace = build_namespace()
