"""Operations: what the tasks do (smoke, bench, doctor, backup, publish, deployment),
built on core, commands and infra.
"""
