"""labkit's record of the Docker objects it created: what cleanup may remove.

A label alone cannot prove that labkit made an object: images built ``FROM`` a labkit image and
containers run from one inherit its labels, ``org.labkit.object`` included. So every object
labkit creates (``docker run`` / ``create``, ``commit``, ``import``, ``build``) is also written
down here, as its id with that label's value (:func:`labkit.logic.docker_names.created_record`),
and :class:`~labkit.steps.docker.cleanup.CleanupLabkit` removes only objects this record names
(:func:`labkit.logic.docker_names.select_labkit`). Objects labkit made before the record existed,
or on another account, are listed as look-alikes and left alone.

The record is ``$LABKIT_STATE/docker-created.jsonl`` (default ``$XDG_STATE_HOME/labkit``, else
``~/.local/state/labkit``), one JSON line per object, appended (concurrent steps do not tear it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from labkit.logic.docker_names import LABEL_OBJECT, created_record, parse_created_records

__all__ = ["created_by_labkit", "record_path", "remember_created"]

#: Reading more than this much of the record would mean it is not labkit's (it grows ~100 B/object).
_MAX_RECORD = 64 << 20


def record_path() -> Path:
    """Where the record lives (see the module docstring)."""
    base = os.environ.get("LABKIT_STATE")
    if not base:
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        base = os.path.join(state, "labkit")
    return Path(base) / "docker-created.jsonl"


def remember_created(object_id: object, labels: Mapping[str, str]) -> None:
    """Write down that labkit created ``object_id`` with ``labels`` (only labkit-labelled objects).

    Best effort: a record that cannot be written makes cleanup keep the object, never remove a
    wrong one, so a write error does not fail the step that created it."""
    if not isinstance(object_id, str) or not object_id or not labels.get(LABEL_OBJECT):
        return
    path = record_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, created_record(object_id, labels).encode("utf-8"))
        finally:
            os.close(fd)
    except OSError:
        pass


def created_by_labkit() -> frozenset[tuple[str, str]]:
    """``(bare id, org.labkit.object)`` of every object labkit recorded creating."""
    try:
        with open(record_path(), "rb") as fh:
            data = fh.read(_MAX_RECORD)
    except OSError:
        return frozenset()
    return parse_created_records(data.decode("utf-8", "replace"))
