"""The Invoke namespace: one module per concern, composed here."""

from invoke import Collection

from atbb_kit.tasks import bench, cluster, config, deployment, image, publish, quality, release, smoke, upgrade


def build_namespace() -> Collection:
    ns = Collection()
    ns.add_task(config.config)
    ns.add_task(config.nginx_conf)
    ns.add_task(config.routes)
    ns.add_task(config.init)
    ns.add_task(quality.lint)
    ns.add_task(quality.test)
    ns.add_task(quality.build)
    ns.add_task(quality.ci)
    ns.add_task(image.image)
    ns.add_task(publish.tags)
    ns.add_task(publish.push)
    for t in (release.platforms, release.release, release.sbom, release.verify):
        ns.add_task(t)
    ns.add_task(smoke.smoke)
    ns.add_task(bench.bench)
    for t in (
        deployment.migrate,
        deployment.compose_up,
        deployment.compose_down,
        deployment.logs,
        deployment.status,
        deployment.secret,
        deployment.doctor,
        deployment.backup,
        deployment.restore,
    ):
        ns.add_task(t)
    for t in (upgrade.upgrade, upgrade.rollback, upgrade.releases):
        ns.add_task(t)
    for t in (cluster.swarm_deploy, cluster.swarm_migrate, cluster.helm):
        ns.add_task(t)
    return ns


namespace = build_namespace()
