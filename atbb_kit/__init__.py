"""atBB deployment kit: config, tags, argv builders and the executor behind the Invoke tasks.

The version is the package's (pyproject.toml): importlib.metadata.version("atbb-kit").
"""
