"""Import helpers shared by the command-line paths that must start fast."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["without_rfc3987_syntax"]


@contextlib.contextmanager
def without_rfc3987_syntax(fast: bool = True) -> Iterator[None]:
    """Import jsonschema (directly, or through papermill) without ``rfc3987_syntax``.

    jsonschema imports ``rfc3987_syntax`` optionally, only to check the ``iri`` string formats,
    and building its grammar costs about 0.9 s here. Neither the notebook schema nor the
    Kubernetes schemas use those formats, so the CLIs hide it during the import. A ``None`` entry in
    ``sys.modules`` is Python's documented way to make one import fail; it is removed right after,
    so later code may import the package normally. Nothing is hidden when ``fast`` is false or
    jsonschema is already loaded.
    """
    hide = fast and "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
    if hide:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide and sys.modules.get("rfc3987_syntax", 0) is None:
            del sys.modules["rfc3987_syntax"]
