"""Infrastructure: the runner (the one executor), the Docker engine's SDK calls, the registry API,
env files and the console.
"""
