"""Chapter 2a's Docker steps, one module per topic (``ARCHITECTURE.md`` has the map).

``engine`` is the only module that talks to the Docker SDK directly: connecting, performing the
calls :mod:`labkit.logic.docker` builds (recorded as their CLI form) and translating SDK errors.
The step modules receive the connector through the run context (``ctx.docker``), so tests can swap
it like the runner: ``engine_check`` (EngineCheck), ``local_base`` (BuildLocalBase), ``run``
(HelloContainer, RunImage), ``packaging`` (CommitContainer, SaveImage, LoadImage; ``streams``),
``cleanup`` (CleanupLabkit, DeleteEverything), ``build`` (BuildImage).
"""
