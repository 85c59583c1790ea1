"""Chapter 2a's Docker steps, one module per topic (``ARCHITECTURE.md`` has the map).

``engine`` is the only module that talks to the Docker SDK directly: connecting, negotiating the
API version and translating SDK errors into labkit errors, once. The step modules receive the
connector through the run context (``ctx.docker``), so tests can swap it like the runner.
"""
