"""The Invoke namespace: one module per concern, composed here."""

from invoke import Collection

from atbb_kit.tasks import (
    bench_tasks,
    config_tasks,
    image,
    multiarch_tasks,
    operate,
    quality,
    release_tasks,
    smoke_tasks,
)


def build_namespace() -> Collection:
    ns = Collection()
    ns.add_task(config_tasks.config)
    ns.add_task(config_tasks.nginx_conf)
    ns.add_task(config_tasks.routes)
    ns.add_task(config_tasks.init)
    ns.add_task(quality.lint)
    ns.add_task(quality.test)
    ns.add_task(quality.build)
    ns.add_task(quality.ci)
    ns.add_task(image.image)
    ns.add_task(release_tasks.tags)
    ns.add_task(release_tasks.push)
    for t in (multiarch_tasks.platforms, multiarch_tasks.release, multiarch_tasks.sbom, multiarch_tasks.verify):
        ns.add_task(t)
    ns.add_task(smoke_tasks.smoke)
    ns.add_task(bench_tasks.bench)
    for t in (
        operate.migrate,
        operate.compose_up,
        operate.compose_down,
        operate.logs,
        operate.status,
        operate.secret,
        operate.doctor,
        operate.backup,
        operate.restore,
    ):
        ns.add_task(t)
    return ns


namespace = build_namespace()
