"""Every helper that reads a notebook's cells: JSON loading, tags, check metadata, outputs, payloads.

Shared by ``labkit validate`` (executes notebooks, then reads them), ``labkit release`` (check
cells) and the grader (reads what students saved): the one place that knows the cell format, so
grading modules import it and never each other for cell details. A notebook is read with plain
:func:`json.load`: nbformat's import and schema validation cost up to a second, and a grader must
still read a file a student's editor saved slightly off-schema.

What counts is the *stored* output: a step displays a :class:`~labkit.checks.CheckResult` whose
MIME bundle carries :data:`~labkit.checks.CHECK_MIME`; an updated ``display_id`` output has
already replaced the original in the file. Cell indices are positions in the notebook as given
(an executed one includes papermill's cells); :func:`source_cell_index` maps them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from labkit.checks import CHECK_MIME
from labkit.logic.text import strip_ansi

__all__ = [
    "PAPERMILL_ERROR_TAG",
    "PAPERMILL_TAGS",
    "cell_labkit",
    "cell_outputs",
    "cell_source",
    "cell_source_text",
    "cell_tags",
    "check_payload",
    "count_results",
    "error_output",
    "first_error",
    "head_lines",
    "iter_check_payloads",
    "last_results_by_check",
    "load_notebook_json",
    "mime_payload",
    "source_cell_index",
    "strip_ansi",
]

#: The banner cell papermill puts at the top of a saved notebook whose execution failed.
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
#: Tags of cells papermill adds to an executed notebook; they are not part of the author's notebook.
PAPERMILL_TAGS = frozenset({"injected-parameters", PAPERMILL_ERROR_TAG})


#: Terminal escape sequences: CSI (colours, cursor moves, private modes such as ``ESC[=3h``),
#: OSC (titles, hyperlinks; ended by BEL or ``ESC \``), character-set selection (``ESC ( B``) and
#: two-character escapes (``ESC c``). IPython colours tracebacks with them, UEFI paints its screen.
def load_notebook_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse an ``.ipynb`` file as plain JSON (raises ``ValueError`` if it is not a notebook)."""
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a Jupyter notebook (no 'cells' list)")
    return nb


def cell_source_text(cell: Mapping[str, Any]) -> str | None:
    """The cell's source as one string (the format allows a string or a list of lines), or
    ``None`` when it is malformed: a number, an object, a list holding anything but strings."""
    src = cell.get("source", "")
    if isinstance(src, str):
        return src
    if isinstance(src, list) and all(isinstance(line, str) for line in src):
        return "".join(src)
    return None


def cell_source(cell: Mapping[str, Any]) -> str:
    """The cell's source as one string; ``""`` for a malformed one (see :func:`cell_source_text`)."""
    text = cell_source_text(cell)
    return "" if text is None else text


def cell_tags(cell: Mapping[str, Any]) -> list[str]:
    """The cell's ``metadata.tags`` (only the strings; ``[]`` when absent or malformed)."""
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, Mapping) else None
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def cell_labkit(cell: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The cell's ``metadata.labkit`` mapping (a graded cell's check id and points), or ``None``."""
    meta = cell.get("metadata")
    value = meta.get("labkit") if isinstance(meta, Mapping) else None
    return value if isinstance(value, Mapping) else None


def cell_outputs(cell: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The cell's stored outputs that are JSON objects (anything else in the list is skipped)."""
    outs = cell.get("outputs")
    return [o for o in outs if isinstance(o, Mapping)] if isinstance(outs, list) else []


def mime_payload(output: Mapping[str, Any], mime: str) -> dict[str, Any] | None:
    """The JSON object stored under ``mime`` in a ``display_data`` / ``execute_result`` output.

    A payload stored as a JSON string (some front ends do that for ``+json`` types) is decoded;
    anything that is not a JSON object gives ``None``.
    """
    if output.get("output_type") not in ("display_data", "execute_result"):
        return None
    data = output.get("data")
    payload = data.get(mime) if isinstance(data, Mapping) else None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    return payload if isinstance(payload, dict) else None


def check_payload(output: Mapping[str, Any]) -> dict[str, Any] | None:
    """The check payload of one stored output: a :func:`mime_payload` of :data:`CHECK_MIME` with a
    string ``check`` and ``status``, else ``None``."""
    payload = mime_payload(output, CHECK_MIME)
    if payload is None:
        return None
    if not isinstance(payload.get("check"), str) or not isinstance(payload.get("status"), str):
        return None
    return payload


def error_output(cell: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the first error the cell stored (ANSI codes stripped), or ``None``.

    A ``SystemExit`` with status 0 is not an error, as in papermill.
    """
    for output in cell_outputs(cell):
        if output.get("output_type") != "error":
            continue
        ename, evalue = str(output.get("ename", "")), strip_ansi(str(output.get("evalue", "")))
        if ename == "SystemExit" and evalue in ("", "0"):
            continue
        return ename, evalue
    return None


def _cells(nb: Mapping[str, Any]) -> list[Any]:
    """The notebook's ``cells`` when they are a list; anything else holds no cell."""
    cells = nb.get("cells")
    return cells if isinstance(cells, list) else []


def iter_check_payloads(nb: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Every check payload in document order as ``(cell_index, payload)``."""
    found: list[tuple[int, dict[str, Any]]] = []
    for index, cell in enumerate(_cells(nb)):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        for output in cell_outputs(cell):
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
    cells = _cells(nb)
    return sum(1 for cell in cells[:index] if not PAPERMILL_TAGS.intersection(cell_tags(cell)))


def first_error(nb: Mapping[str, Any], *, source_lines: int = 6) -> dict[str, Any] | None:
    """The first cell that raised, summarised for a person (no traceback wall), or ``None``.

    Keys: ``cell_index`` (in the author's notebook), ``output_cell_index`` (in ``nb``),
    ``execution_count``, ``ename``, ``evalue`` (ANSI codes stripped) and ``source`` (the first
    ``source_lines`` lines of the cell). A ``SystemExit`` with status 0 is not an error, as in
    papermill.
    """
    for index, cell in enumerate(_cells(nb)):
        if not isinstance(cell, Mapping) or cell.get("cell_type") != "code":
            continue
        found = None if PAPERMILL_TAGS.intersection(cell_tags(cell)) else error_output(cell)
        if found is not None:
            return {
                "cell_index": source_cell_index(nb, index),
                "output_cell_index": index,
                "execution_count": cell.get("execution_count"),
                "ename": found[0],
                "evalue": found[1],
                "source": head_lines(cell_source(cell), source_lines),
            }
    return None


def head_lines(text: str, lines: int) -> str:
    """The first ``lines`` lines of ``text``, with a marker when some were cut."""
    parts = text.splitlines()
    if len(parts) <= lines:
        return "\n".join(parts)
    return "\n".join([*parts[:lines], f"… (+{len(parts) - lines} lines)"])
