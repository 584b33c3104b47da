"""The pure core: configuration, build context, tags, nginx rendering, routing, input grammars, errors.

Nothing here starts a process, opens a socket or touches the Docker engine.
"""
