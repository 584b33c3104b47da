"""`inv smoke`: start the image for real with a throwaway PostgreSQL and walk the testing checklist."""

from __future__ import annotations

from pathlib import Path

from atbb_kit.core import flags
from atbb_kit.core.errors import ConfigError
from atbb_kit.tasks._base import kit, kit_task


@kit_task(
    help={
        "image": "Image to test (default: the image `inv image` builds for this checkout, built if missing).",
        "keep": "Leave the containers, network and volumes in place for inspection (prints how to remove them).",
        "timeout": "Seconds each wait may take: PostgreSQL ready, each migration, the app answering, healthy "
        "(default 120, at most 3600).",
        "browser": "Then open smoke.browser.pages (atbb.yaml) in headless Chromium through nginx: fail on console "
        "errors, exceptions, CSP violations, failed requests (needs the chromium package).",
        "output": "Folder for --browser's screenshots (default build/smoke/<run id>/).",
    }
)
def smoke(c, image=None, keep=False, timeout=None, browser=False, output=None):
    """Smoke-test the image: size, PostgreSQL, migrations twice, routes through nginx, health, clean stop."""
    from atbb_kit.infra import engine
    from atbb_kit.infra.checkout import plan_for
    from atbb_kit.ops import image as images
    from atbb_kit.ops.smoke import smoke as run_smoke

    # None default: Invoke would int() a typed number itself, outside the error boundary.
    timeout = flags.whole_number("timeout", timeout, 120, 1, 3600)
    flags.image_ref("image", image)
    if output is not None and not browser:
        raise ConfigError("--output is where --browser saves its screenshots", "add --browser, or drop --output")
    out = Path(flags.path("output", output)) if output is not None else None
    chromium = ""
    if browser:
        from atbb_kit.ops import browser_check

        # Before anything is built or started: a missing browser is an install step, never a skipped check.
        chromium = browser_check.preflight()
    k = kit(c)
    client = engine.client()
    ref = image or plan_for(k.cfg).refs[0]
    if engine.image_size(ref) is None:
        if image:
            images.pull(client, ref)
        else:
            images.build_to_test(k, ref)
    run_smoke(client, k.cfg, ref, keep=keep, timeout=timeout, chromium=chromium, output=out)
