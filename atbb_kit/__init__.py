"""atBB deployment kit: config, tags, argv builders and the executor behind the Invoke tasks."""

__version__ = "0.1.0"
