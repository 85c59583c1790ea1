"""Read labkit evidence back out of saved ``.ipynb`` files (no execution, no nbformat).

Shared by ``labkit validate`` (which executes notebooks and then reads them) and the grader
(which reads what students saved). A notebook is read with plain :func:`json.load`: nbformat's
schema validation costs tens of milliseconds per notebook and its import up to a second, and a
grader must still read a notebook that a student's editor saved slightly off-schema.

What counts is the *stored* output: a step displays a :class:`~labkit.checks.CheckResult` whose
MIME bundle carries :data:`~labkit.checks.CHECK_MIME`; if it was displayed with a ``display_id``
and later updated, Jupyter / nbclient / papermill have already replaced the stored output with the
update, so reading the file gives the final state.

Cell indices returned here are positions in the notebook *as given* (for an executed notebook that
includes the cell papermill injected). :func:`source_cell_index` maps them back to the author's
notebook.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.checks import CHECK_MIME

__all__ = [
    "PAPERMILL_TAGS",
    "cell_source",
    "check_payload",
    "count_results",
    "first_error",
    "head_lines",
    "iter_check_payloads",
    "last_results_by_check",
    "load_notebook_json",
    "source_cell_index",
    "strip_ansi",
]

#: Tags of cells papermill adds to an executed notebook; they are not part of the author's notebook.
PAPERMILL_TAGS = frozenset({"injected-parameters", "papermill-error-cell-tag"})

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def load_notebook_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an ``.ipynb`` file as plain JSON (raises ``ValueError`` if it is not a notebook)."""
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a Jupyter notebook (no 'cells' list)")
    return nb


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours tracebacks and error values)."""
    return _ANSI.sub("", text)


def cell_source(cell: Mapping[str, Any]) -> str:
    """The cell's source as one string (the format allows a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _tags(cell: Mapping[str, Any]) -> set[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return {t for t in tags if isinstance(t, str)}


def check_payload(output: Mapping[str, Any]) -> dict[str, Any] | None:
    """The check payload of one stored output, or ``None`` if it carries none.

    Only ``display_data`` and ``execute_result`` outputs count. A payload stored as a JSON string
    (some front ends do that for ``+json`` types) is decoded; anything that is not a JSON object
    with a string ``check`` and ``status`` is ignored.
    """
    if output.get("output_type") not in ("display_data", "execute_result"):
        return None
    payload = (output.get("data") or {}).get(CHECK_MIME)
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict):
        return None
    if not isinstance(payload.get("check"), str) or not isinstance(payload.get("status"), str):
        return None
    return payload


def iter_check_payloads(nb: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Every check payload in document order as ``(cell_index, payload)``."""
    found: list[tuple[int, dict[str, Any]]] = []
    for index, cell in enumerate(nb.get("cells") or []):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs") or []:
            if isinstance(output, Mapping):
                payload = check_payload(output)
                if payload is not None:
                    found.append((index, payload))
    return found


def last_results_by_check(
    payloads: Iterable[tuple[int, Mapping[str, Any]]] | Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Check id → the payload that counts: the *last* one in document order.

    A check shown several times (a step executed again in a later "retry" cell) is judged by its
    last appearance, because that is the state the student left the system in. Document order,
    not the ``at`` timestamp, decides: it has one-second resolution, and in an executed notebook
    document order is execution order. The result is ordered by where each check last appears.
    Accepts the output of :func:`iter_check_payloads` or a notebook dict.
    """
    pairs = iter_check_payloads(payloads) if isinstance(payloads, Mapping) else list(payloads)
    last: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for position, (index, payload) in enumerate(pairs):
        last[str(payload["check"])] = (index, position, dict(payload))
    ordered = sorted(last.items(), key=lambda item: (item[1][0], item[1][1]))
    return {check: payload for check, (_, _, payload) in ordered}


def count_results(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Counts over the payloads that count (see :func:`last_results_by_check`).

    ``run``: the step really ran (``mode == "run"``, any status); ``planned``: only planned
    (``mode == "plan"``); ``passed``; ``skipped``: ran but the host could not do it (``skipped``
    with ``mode == "run"``); ``failed``: ``fail`` or ``error`` whatever the mode.
    """
    counts = {"checks": 0, "run": 0, "passed": 0, "planned": 0, "skipped": 0, "failed": 0}
    for payload in results:
        status, mode = payload.get("status"), payload.get("mode", "run")
        counts["checks"] += 1
        if mode == "plan":
            counts["planned"] += 1
        else:
            counts["run"] += 1
            if status == "skipped":
                counts["skipped"] += 1
        if status == "pass":
            counts["passed"] += 1
        elif status in ("fail", "error"):
            counts["failed"] += 1
    return counts


def source_cell_index(nb: Mapping[str, Any], index: int) -> int:
    """Map a cell index of an executed notebook to the author's notebook (papermill cells removed)."""
    cells = nb.get("cells") or []
    return sum(1 for cell in cells[:index] if not (_tags(cell) & PAPERMILL_TAGS))


def first_error(nb: Mapping[str, Any], *, source_lines: int = 6) -> dict[str, Any] | None:
    """The first cell that raised, summarised for a person (no traceback wall), or ``None``.

    Keys: ``cell_index`` (in the author's notebook), ``output_cell_index`` (in ``nb``),
    ``execution_count``, ``ename``, ``evalue`` (ANSI codes stripped) and ``source`` (the first
    ``source_lines`` lines of the cell). A ``SystemExit`` with status 0 is not an error, as in
    papermill.
    """
    for index, cell in enumerate(nb.get("cells") or []):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code" or _tags(cell) & PAPERMILL_TAGS:
            continue
        for output in cell.get("outputs") or []:
            if not isinstance(output, Mapping) or output.get("output_type") != "error":
                continue
            ename, evalue = str(output.get("ename", "")), strip_ansi(str(output.get("evalue", "")))
            if ename == "SystemExit" and evalue in ("", "0"):
                continue
            return {
                "cell_index": source_cell_index(nb, index),
                "output_cell_index": index,
                "execution_count": cell.get("execution_count"),
                "ename": ename,
                "evalue": evalue,
                "source": head_lines(cell_source(cell), source_lines),
            }
    return None


def head_lines(text: str, lines: int) -> str:
    """The first ``lines`` lines of ``text``, with a marker when some were cut."""
    parts = text.splitlines()
    if len(parts) <= lines:
        return "\n".join(parts)
    return "\n".join([*parts[:lines], f"… (+{len(parts) - lines} lines)"])
