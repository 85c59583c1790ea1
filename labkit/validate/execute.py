"""Executing one notebook with papermill on its already started kernel, and describing failures.

A failure becomes a short, structured ``error`` dict (``kind``: ``cell`` / ``timeout`` /
``kernel`` / ``startup`` / ``cancelled`` / ``internal``, a ``message`` for a person, the cell it
happened in), never a traceback. Papermill and nbclient are imported only when a notebook runs.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from labkit.i18n import tr
from labkit.notebooks import (
    PAPERMILL_ERROR_TAG,
    cell_source,
    cell_tags,
    count_results,
    first_error,
    head_lines,
    last_results_by_check,
    load_notebook_json,
    source_cell_index,
    strip_ansi,
)

from .kernels import Job, Options, import_papermill
from .report import NotebookResult

__all__ = ["execute", "internal_failure", "not_run", "one_line"]

_SOURCE_LINES = 6
_EVALUE_CHARS = 300


def execute(job: Job, opts: Options) -> tuple[NotebookResult, bool]:
    """Run one notebook on its (already started) kernel; returns the result and whether to kill."""
    t0 = time.monotonic()
    error: dict[str, Any] | None = None
    kill = False
    executed: Any = None
    with contextlib.suppress(FileNotFoundError):
        job.output.unlink()  # a stale copy from an earlier run must not be read as this run's
    if job.start_error is not None:
        error = {
            "kind": "startup",
            "message": tr(
                "内核无法启动：{e}", "the kernel could not start: {e}", e=one_line(job.start_error)
            ),
        }
    elif opts.cancel.is_set():
        error = {"kind": "cancelled", "message": tr("已取消", "cancelled")}
    else:
        executed, error, kill = _run_papermill(job, opts)
    if error is not None and error["kind"] == "cell":
        kill = False  # the kernel is healthy, it only ran code that raised

    nb: Any = executed
    if nb is None and job.output.is_file():
        try:
            nb = load_notebook_json(job.output)
        except (OSError, ValueError):
            nb = None
    checks = list(last_results_by_check(nb).values()) if nb is not None else []
    if error is not None and error["kind"] == "cell" and nb is not None:
        found = first_error(nb, source_lines=_SOURCE_LINES)
        if found is not None:
            error.update(found)
            error["message"] = _cell_message(found)
    counts = count_results(checks)
    status = "error" if error is not None else ("failed" if counts["failed"] else "ok")
    result = NotebookResult(
        path=job.source,
        output=job.output,
        status=status,
        duration_s=time.monotonic() - t0,
        counts=counts,
        checks=checks,
        error=error,
        warnings=job.warnings,
    )
    return result, kill


def _run_papermill(job: Job, opts: Options) -> tuple[Any, dict[str, Any] | None, bool]:
    """Execute with papermill on ``job.km``; returns (executed notebook or None, error, kill?)."""
    papermill = import_papermill(fast=opts.fast_import)
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    current: dict[str, Any] = {}

    def on_cell_start(cell: Any, cell_index: int) -> None:
        current.update(cell=cell, index=cell_index)

    try:
        executed = papermill.execute_notebook(
            str(job.source),
            str(job.output),
            parameters={"mode": opts.mode, "labkit_workdir": str(job.workdir)},
            kernel_name=opts.kernel_name or "python3",
            language=None if opts.kernel_name else "python",
            progress_bar=False,
            log_output=False,
            execution_timeout=opts.cell_timeout,
            km=job.km,
            on_cell_start=on_cell_start,
            # Saving after every cell lets a slow live run be watched; a plan run takes seconds.
            request_save_on_cell_execute=opts.mode != "plan",
        )
    except Exception as exc:
        kinds = (PapermillExecutionError, CellTimeoutError, DeadKernelError)
        return None, _describe_failure(exc, job, current, opts, kinds), True
    return executed, None, False


def one_line(exc: BaseException) -> str:
    text = strip_ansi(str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:_EVALUE_CHARS]


def _cell_message(err: dict[str, Any]) -> str:
    evalue = head_lines(str(err.get("evalue", "")), 1)[:_EVALUE_CHARS]
    return tr(
        "cell[{i}] (In [{n}]) 抛出 {ename}: {evalue}",
        "cell[{i}] (In [{n}]) raised {ename}: {evalue}",
        i=err.get("cell_index"),
        n=err.get("execution_count") or " ",
        ename=err.get("ename", "?"),
        evalue=evalue,
    )


def _describe_failure(
    exc: Exception, job: Job, current: dict[str, Any], opts: Options, kinds: tuple[type, type, type]
) -> dict[str, Any]:
    """Turn what papermill / nbclient raised into a short, structured error (no traceback).

    ``kinds`` are papermill's cell error, nbclient's cell timeout and dead-kernel exceptions
    (passed in because this module does not import papermill at import time).
    """
    cell_error, timeout_cls, dead_cls = kinds
    if isinstance(exc, cell_error) and not job.expired:
        index = getattr(exc, "cell_index", None)
        return {
            "kind": "cell",
            "cell_index": _source_index_of(job, index) if isinstance(index, int) else None,
            "output_cell_index": index,
            "execution_count": getattr(exc, "exec_count", None),
            "ename": str(getattr(exc, "ename", "")),
            "evalue": strip_ansi(str(getattr(exc, "evalue", ""))),
            "source": head_lines(str(getattr(exc, "source", "")), _SOURCE_LINES),
            "message": "",
        }
    where: dict[str, Any] = {}
    if "index" in current:  # the cell nbclient was executing (from the on_cell_start hook)
        where = {
            "cell_index": _source_index_of(job, current["index"]),
            "output_cell_index": current["index"],
            "source": head_lines(cell_source(current["cell"]), _SOURCE_LINES),
        }
    if job.expired:
        message = tr(
            "笔记本超过 {t:g} s 仍未运行完（notebook_timeout），内核已被终止",
            "the notebook did not finish within {t:g} s (notebook_timeout); the kernel was stopped",
            t=opts.notebook_timeout,
        )
        return {"kind": "timeout", "message": message, **where}
    cell = f"cell[{where.get('cell_index', '?')}]"
    if isinstance(exc, timeout_cls):
        message = tr(
            "{cell} 超过 {t:g} s 仍未结束（--timeout），内核已被终止",
            "{cell} did not finish within {t:g} s (--timeout); the kernel was stopped",
            cell=cell,
            t=opts.cell_timeout,
        )
        return {"kind": "timeout", "message": message, **where}
    if isinstance(exc, dead_cls) or "Kernel died" in str(exc):
        message = tr(
            "内核在运行 {cell} 时退出了：{e}",
            "the kernel died while running {cell}: {e}",
            cell=cell,
            e=one_line(exc),
        )
        return {"kind": "kernel", "message": message, "kernel_log": _log_tail(job.log), **where}
    if opts.cancel.is_set():
        return {"kind": "cancelled", "message": tr("已取消", "cancelled"), **where}
    message = f"{type(exc).__name__}: {one_line(exc)}"
    return {"kind": "internal", "message": message, "kernel_log": _log_tail(job.log), **where}


def _source_index_of(job: Job, index: int) -> int:
    """Index in the author's notebook of cell ``index`` as nbclient / papermill counted it.

    Their count includes the cell papermill injected but not the error banner papermill puts at
    the top of the saved copy afterwards, so the banner is dropped before mapping.
    """
    try:
        nb = load_notebook_json(job.output)
    except (OSError, ValueError):
        return index
    cells = [c for c in nb["cells"] if PAPERMILL_ERROR_TAG not in cell_tags(c)]
    return source_cell_index({"cells": cells}, index)


def _log_tail(path: Path, lines: int = 8) -> str:
    """The end of a kernel log, without ipykernel's start-up noise."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    keep = [ln for ln in strip_ansi(text).splitlines() if ln.strip() and "without encryption" not in ln]
    return "\n".join(keep[-lines:])


def internal_failure(job: Job, exc: Exception) -> NotebookResult:
    return NotebookResult(
        path=job.source,
        output=job.output,
        status="error",
        duration_s=0.0,
        counts=count_results([]),
        checks=[],
        error={"kind": "internal", "message": f"{type(exc).__name__}: {one_line(exc)}"},
        warnings=job.warnings,
    )


def not_run(job: Job) -> NotebookResult:
    """A notebook no worker reported on (its worker thread failed): never silently dropped."""
    result = internal_failure(job, RuntimeError("not run: its worker stopped unexpectedly"))
    if job.start_error is not None:
        result.error = {"kind": "startup", "message": one_line(job.start_error)}
    return result
