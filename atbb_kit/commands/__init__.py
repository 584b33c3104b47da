"""Commands as data: every external command's argv is built here and nowhere else.

`base.py` holds the data (Command, Secret, OneOff, argv); one module per tool builds them: docker, compose,
pg, pnpm (and pytest), lint, load (wrk and the peer proxies), git, provenance. Builders return
`base.Command` values; they never run anything (infra/runner.py does).
"""
