"""Invoke entry point for the atBB deployment kit: `inv --list` shows every task.

The logic lives in the atbb_kit package; this file only exposes its namespace.
"""

from atbb_kit.tasks import namespace as ns  # noqa: F401
