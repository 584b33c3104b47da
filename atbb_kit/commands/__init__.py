"""Commands as data: every external command's argv is built here and nowhere else.

Builders return `infra.runner.Command` values; they never run anything.
"""
