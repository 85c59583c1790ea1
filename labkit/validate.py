"""``labkit validate``: execute the course notebooks headlessly (papermill) and report their checks.

Each notebook runs in its own fresh kernel, several at once, with the papermill parameters
``mode`` (``auto`` / ``plan`` / ``live``) and ``labkit_workdir`` (a fresh per-notebook scratch
folder). The executed copies land in ``--out`` under the same file names; the check payloads the
steps displayed (:data:`~labkit.checks.CHECK_MIME`) are read back from them
(:mod:`labkit.notebooks`) and counted. A table goes to stdout, ``--report`` writes JSON.

Design choices, measured on the 2-core course VM (benchmarks/validate.py):

* **One process, a thread per job.** The work happens in the kernel subprocesses; the parent only
  shuttles ZeroMQ messages, so threads are enough, and papermill + nbformat are imported once
  (a papermill CLI loop pays 2.5-4 s of imports per notebook here). Papermill's ``cwd`` argument does
  ``os.chdir`` in the whole process, so it is never used: the kernel is started with
  ``cwd=<the notebook's folder>`` instead (relative resources resolve as in Jupyter).
* **Kernels start ahead.** Each worker starts the kernel of its next notebook before executing
  the current one, and the first kernels boot while papermill is still being imported, so the
  ~0.8 s kernel start-up overlaps other work instead of adding up.
* **Shutdown does not block.** A finished kernel is asked to shut down gracefully (its ``atexit``
  and ``finally`` blocks run), and the worker moves on while it exits; all are awaited at the end.
  A kernel that timed out or died is killed with its process group.
* **The kernel is this interpreter.** With no ``--kernel``, kernels run ``sys.executable -m
  ipykernel_launcher``: a ``python3`` kernelspec found first on ``JUPYTER_PATH`` / ``~/.local``
  may point at another Python without labkit, and the notebooks must test *this* labkit. Nothing
  is installed on disk. ``--kernel NAME`` uses that kernelspec as usual.
* **Kernel stdout/stderr** (ipykernel's start-up warnings, a crash message) go to
  ``<out>/<name>.kernel.log`` rather than the terminal; a dead kernel's report quotes its tail.
* **Failures are short.** A cell that raised is reported as cell index, ``In [n]``, exception
  name and value and the first lines of the cell, never the traceback (it is in the executed
  notebook). One notebook's failure never stops the others.

Notebook status: ``ok`` ran to the end and no check failed; ``failed`` ran to the end but a
check is ``fail`` / ``error``; ``error`` did not run to the end (a cell raised, a cell timed out,
the kernel died or could not start). Exit status: 0 when every notebook is ``ok``, 1 otherwise,
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit._version import __version__
from labkit.errors import ConsentRequired, InvalidField, LabkitError
from labkit.i18n import tr
from labkit.notebooks import (
    cell_source,
    count_results,
    first_error,
    head_lines,
    last_results_by_check,
    load_notebook_json,
    source_cell_index,
    strip_ansi,
)

__all__ = ["NotebookResult", "ValidateReport", "add_arguments", "cli", "default_notebooks", "main"]

MODES = ("auto", "plan", "live")
#: Marks a scratch folder as created by ``labkit validate``, so a later run may empty it.
WORKDIR_MARK = ".labkit-workdir"
_SOURCE_LINES = 6
_EVALUE_CHARS = 300

#: Set by :func:`cli`: import papermill without ``rfc3987_syntax`` (see :func:`_import_papermill`).
_FAST_IMPORT = False
_import_lock = threading.Lock()


# -- results -------------------------------------------------------------------------------------
@dataclass
class NotebookResult:
    """The outcome of executing one notebook."""

    path: Path
    output: Path
    status: str  # ok | failed | error
    duration_s: float
    counts: dict[str, int]
    checks: list[dict[str, Any]]
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": _display_path(self.path),
            "output": _display_path(self.output),
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "counts": dict(self.counts),
            "checks": list(self.checks),
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass
class ValidateReport:
    """Everything ``labkit validate`` found; ``to_json()`` is the ``--report`` file."""

    mode: str
    started: str
    duration_s: float
    jobs: int
    kernel: str
    notebooks: list[NotebookResult]
    labkit_version: str = __version__

    @property
    def ok(self) -> bool:
        return all(nb.ok for nb in self.notebooks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "labkit_version": self.labkit_version,
            "mode": self.mode,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "jobs": self.jobs,
            "kernel": self.kernel,
            "ok": self.ok,
            "notebooks": [nb.to_json() for nb in self.notebooks],
        }

    def table(self) -> str:
        """The human summary: one row per notebook, then what went wrong, briefly."""
        head = [
            tr("笔记本", "notebook"),
            tr("状态", "status"),
            tr("运行", "run"),
            tr("计划", "planned"),
            tr("跳过", "skipped"),
            tr("失败", "failed"),
            tr("耗时(s)", "time(s)"),
        ]
        rows = [head]
        for nb in self.notebooks:
            c = nb.counts
            rows.append(
                [
                    nb.path.name,
                    f"{_ICONS.get(nb.status, '?')} {nb.status}",
                    str(c.get("run", 0)),
                    str(c.get("planned", 0)),
                    str(c.get("skipped", 0)),
                    str(c.get("failed", 0)),
                    f"{nb.duration_s:.1f}",
                ]
            )
        widths = [max(_width(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for n, row in enumerate(rows):
            cells = [_pad(v, widths[i], right=i >= 2) for i, v in enumerate(row)]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        for nb in self.notebooks:
            lines.extend(_problem_lines(nb))
        total = len(self.notebooks)
        bad = sum(not nb.ok for nb in self.notebooks)
        lines.append(
            tr(
                "{total} 个笔记本，{bad} 个未通过，模式 {mode}，用时 {t:.1f} s",
                "{total} notebook(s), {bad} not ok, mode {mode}, {t:.1f} s",
                total=total,
                bad=bad,
                mode=self.mode,
                t=self.duration_s,
            )
        )
        return "\n".join(lines)


_ICONS = {"ok": "✔", "failed": "✘", "error": "⚠"}


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _problem_lines(nb: NotebookResult) -> list[str]:
    out: list[str] = []
    if nb.error:
        out.append(f"{_ICONS['error']} {nb.path.name}: {nb.error['message']}")
        if nb.error.get("source"):
            out.extend("    | " + line for line in str(nb.error["source"]).splitlines())
        if nb.error.get("kernel_log"):
            out.append("    " + tr("内核日志末尾：", "kernel log tail:"))
            out.extend("    > " + line for line in str(nb.error["kernel_log"]).splitlines())
    for payload in nb.checks:
        if payload.get("status") in ("fail", "error"):
            msg = head_lines(str(payload.get("message", "")), 1)
            out.append(f"{_ICONS['failed']} {nb.path.name}: {payload['check']} {payload['status']}: {msg}")
    out.extend(f"! {nb.path.name}: {w}" for w in nb.warnings)
    return out


def _display_path(path: Path) -> str:
    """Relative to the current directory when below it (shorter reports), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


# -- inputs --------------------------------------------------------------------------------------
def default_notebooks() -> list[Path]:
    """``notebooks/*.ipynb`` below the current directory, else in the repository labkit lives in."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        found = sorted((root / "notebooks").glob("*.ipynb"))
        if found:
            return found
    return []


def _check_inputs(
    notebooks: Sequence[Path], mode: str, jobs: int | None, out_dir: Path, cell_timeout: float
) -> tuple[list[Path], int]:
    if mode not in MODES:
        raise InvalidField("mode", mode, "is not a run mode", f"use one of {', '.join(MODES)}")
    if not notebooks:
        raise InvalidField(
            "notebooks",
            "notebooks/*.ipynb",
            "matched no notebook",
            "pass notebook paths, or run from the repository root",
        )
    paths: list[Path] = []
    names: dict[str, Path] = {}
    for nb in notebooks:
        p = Path(nb).resolve()
        if p.suffix != ".ipynb":
            raise InvalidField("notebooks", str(nb), "is not an .ipynb file", "pass Jupyter notebooks")
        if not p.is_file():
            raise InvalidField("notebooks", str(nb), "does not exist", "check the path")
        if p.name in names and names[p.name] != p:
            raise InvalidField(
                "notebooks",
                str(nb),
                f"has the same file name as {names[p.name]}",
                "outputs are named after the notebook; validate them in separate runs with different --out",
            )
        if p not in paths:
            names[p.name] = p
            paths.append(p)
    out = out_dir.resolve()
    if any(p.parent == out for p in paths):
        raise InvalidField("out", str(out_dir), "is the notebooks' own folder", "choose another --out folder")
    if jobs is None:
        jobs = min(len(paths), os.cpu_count() or 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise InvalidField("jobs", jobs, "must be a whole number of at least 1", "e.g. --jobs 2")
    if not cell_timeout or cell_timeout <= 0:
        raise InvalidField(
            "timeout", cell_timeout, "must be a positive number of seconds", "e.g. --timeout 600"
        )
    return paths, min(jobs, len(paths))


def _fresh_workdir(path: Path) -> Path:
    """Create (or empty, if labkit made it) the scratch folder a notebook gets as ``labkit_workdir``.

    A stale image from a previous run must not make a check pass, so the folder starts empty; it
    is only emptied when it carries labkit's marker, anything else is left alone.
    """
    if path.exists():
        if (path / WORKDIR_MARK).is_file():
            shutil.rmtree(path)
        elif path.is_dir() and not any(path.iterdir()):
            pass
        else:
            raise ConsentRequired(
                f"use {path} (not created by labkit validate) as a scratch folder",
                "remove it yourself or choose another --out",
            )
    path.mkdir(parents=True, exist_ok=True)
    (path / WORKDIR_MARK).write_text(
        "created by labkit validate; emptied on the next run\n", encoding="utf-8"
    )
    return path


def _parameter_warnings(path: Path) -> list[str]:
    """Course convention: a cell tagged ``parameters`` declares ``mode`` and ``labkit_workdir``."""
    try:
        nb = load_notebook_json(path)
    except (OSError, ValueError) as exc:
        return [tr("无法读取：{e}", "cannot read it: {e}", e=exc)]
    for cell in nb["cells"]:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and "parameters" in tags:
            names = {
                line.split("=", 1)[0].split(":", 1)[0].strip()
                for line in cell_source(cell).splitlines()
                if "=" in line and not line.lstrip().startswith("#")
            }
            missing = [n for n in ("mode", "labkit_workdir") if n not in names]
            if missing:
                return [
                    tr(
                        "parameters 单元格没有声明 {names}",
                        "the parameters cell does not declare {names}",
                        names=", ".join(missing),
                    )
                ]
            return []
    return [
        tr(
            "没有标记为 parameters 的单元格（参数被插入到最前面）",
            "no cell tagged 'parameters' (papermill put the parameters first)",
        )
    ]


# -- kernels -------------------------------------------------------------------------------------
_KM_CLASS: Any = None


def _kernel_manager_class() -> Any:
    """An ``AsyncKernelManager`` that can pin the kernel to this interpreter, log to a file, and
    remember the clients it hands out (papermill does not close them when it does not own the
    manager)."""
    global _KM_CLASS
    if _KM_CLASS is not None:
        return _KM_CLASS
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class LabkitKernelManager(AsyncKernelManager):  # type: ignore[misc]
        def __init__(self, *, pinned: bool, log_path: Path, **kw: Any) -> None:
            super().__init__(**kw)
            self.labkit_pinned = pinned
            self.labkit_log = log_path
            self.labkit_clients: list[Any] = []

        @property
        def kernel_spec(self) -> Any:
            if not self.labkit_pinned:
                return super().kernel_spec
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    display_name=f"Python 3 ({sys.executable})",
                    language="python",
                    name="python3",
                )
            return self._kernel_spec

        @property
        def ipykernel(self) -> bool:
            return self.labkit_pinned or super().ipykernel

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            self.labkit_clients.append(kc)
            return kc

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            with open(self.labkit_log, "ab") as log:  # the child keeps its own copy of the fd
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    _KM_CLASS = LabkitKernelManager
    return _KM_CLASS


@dataclass
class _Options:
    mode: str
    cell_timeout: float
    kernel_name: str | None
    lang: str | None
    cancel: threading.Event
    notebook_timeout: float | None = None


@dataclass
class _Job:
    source: Path
    output: Path
    workdir: Path
    log: Path
    km: Any = None
    start_error: BaseException | None = None
    warnings: list[str] = field(default_factory=list)
    expired: bool = False  # the notebook ran past opts.notebook_timeout and its kernel was killed


async def _start_kernel(job: _Job, opts: _Options) -> None:
    """Launch the kernel for ``job`` (returns once the process exists, not when it is ready)."""
    try:
        job.log.unlink(missing_ok=True)
        km_class = _kernel_manager_class()
        kw: dict[str, Any] = {"pinned": opts.kernel_name is None, "log_path": job.log}
        if opts.kernel_name is not None:
            kw["kernel_name"] = opts.kernel_name
        km = km_class(**kw)
        env = dict(os.environ)
        if opts.lang:
            env["LABKIT_LANG"] = opts.lang
        extra = ["--HistoryManager.hist_file=:memory:"] if km.ipykernel else []
        await km.start_kernel(cwd=str(job.source.parent), env=env, extra_arguments=extra)
        job.km = km
    except Exception as exc:
        job.start_error = exc


async def _stop_kernel(job: _Job, *, kill: bool) -> None:
    """Close the clients, then shut the kernel down (gracefully unless ``kill``)."""
    km = job.km
    if km is None:
        return
    for kc in km.labkit_clients:
        with contextlib.suppress(Exception):
            kc.stop_channels()
    try:
        if km.has_kernel:
            await km.shutdown_kernel(now=kill)
        else:
            await km.cleanup_resources()
    except Exception:
        with contextlib.suppress(Exception):
            await km.shutdown_kernel(now=True)


def _kill_now(job: _Job) -> None:
    """Ctrl-C: kill a running kernel and its process group from another thread (no event loop)."""
    prov = getattr(job.km, "provisioner", None)
    pgid = getattr(prov, "pgid", None)
    with contextlib.suppress(OSError, AttributeError):
        if pgid and pgid != os.getpgrp():  # kernels get their own session; never signal ours
            os.killpg(pgid, signal.SIGKILL)
        elif prov is not None and prov.process is not None:
            prov.process.kill()


def _watchdog(job: _Job, opts: _Options) -> threading.Timer | None:
    """Kill ``job``'s kernel once the whole notebook has run ``opts.notebook_timeout`` seconds.

    The cell timeout alone does not bound a notebook of many slow cells; nbclient then sees a dead
    kernel and the failure is reported as a timeout (``job.expired``).
    """
    if not opts.notebook_timeout:
        return None

    def expire() -> None:
        job.expired = True
        _kill_now(job)

    timer = threading.Timer(opts.notebook_timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def _import_papermill() -> Any:
    """Import papermill once, for all worker threads.

    Under :func:`cli`, ``rfc3987_syntax`` is hidden during the import: jsonschema imports it
    optionally (``with suppress(ImportError)``) only to check the ``iri`` / ``iri-reference``
    string formats, building a grammar that costs 0.9-2.6 s here. nbformat validates with
    Draft 4 and never uses those formats, so the import is pure cost. A ``None`` entry in
    ``sys.modules`` is Python's documented way to make one import fail; it is removed right after,
    so later code may import the package normally. The Python API leaves imports alone.
    """
    with _import_lock:
        if "papermill" in sys.modules:
            return sys.modules["papermill"]
        hide = _FAST_IMPORT and "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules
        if hide:
            sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import papermill
        finally:
            if hide and sys.modules.get("rfc3987_syntax", 0) is None:
                del sys.modules["rfc3987_syntax"]
        return papermill


# -- executing one notebook ----------------------------------------------------------------------
def _execute(job: _Job, opts: _Options) -> tuple[NotebookResult, bool]:
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
                "内核无法启动：{e}", "the kernel could not start: {e}", e=_one_line(job.start_error)
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


def _run_papermill(job: _Job, opts: _Options) -> tuple[Any, dict[str, Any] | None, bool]:
    """Execute with papermill on ``job.km``; returns (executed notebook or None, error, kill?)."""
    papermill = _import_papermill()
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


def _one_line(exc: BaseException) -> str:
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
    exc: Exception, job: _Job, current: dict[str, Any], opts: _Options, kinds: tuple[type, type, type]
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
            e=_one_line(exc),
        )
        return {"kind": "kernel", "message": message, "kernel_log": _log_tail(job.log), **where}
    if opts.cancel.is_set():
        return {"kind": "cancelled", "message": tr("已取消", "cancelled"), **where}
    message = f"{type(exc).__name__}: {_one_line(exc)}"
    return {"kind": "internal", "message": message, "kernel_log": _log_tail(job.log), **where}


def _source_index_of(job: _Job, index: int) -> int:
    """Index in the author's notebook of cell ``index`` as nbclient / papermill counted it.

    Their count includes the cell papermill injected but not the error banner papermill puts at
    the top of the saved copy afterwards, so the banner is dropped before mapping.
    """
    try:
        nb = load_notebook_json(job.output)
    except (OSError, ValueError):
        return index
    cells = [
        c
        for c in nb["cells"]
        if "papermill-error-cell-tag" not in ((c.get("metadata") or {}).get("tags") or [])
    ]
    return source_cell_index({"cells": cells}, index)


def _log_tail(path: Path, lines: int = 8) -> str:
    """The end of a kernel log, without ipykernel's start-up noise."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    keep = [ln for ln in strip_ansi(text).splitlines() if ln.strip() and "without encryption" not in ln]
    return "\n".join(keep[-lines:])


# -- the pool ------------------------------------------------------------------------------------
class _Pool:
    """``jobs`` worker threads over a shared queue; each worker owns one asyncio loop."""

    def __init__(
        self, jobs: list[_Job], workers: int, opts: _Options, done: Callable[[NotebookResult], None]
    ):
        self.queue: deque[_Job] = deque(jobs[workers:])
        self.first = jobs[:workers]
        self.opts = opts
        self.done = done
        self.lock = threading.Lock()
        self.running: list[_Job] = []
        self.results: dict[Path, NotebookResult] = {}

    def _next(self) -> _Job | None:
        with self.lock:
            if self.opts.cancel.is_set() or not self.queue:
                return None
            return self.queue.popleft()

    def _worker(self, first: _Job) -> None:
        from jupyter_core.utils import ensure_event_loop

        loop = ensure_event_loop()  # the loop nbclient's run_sync uses in this thread too
        stopping: list[asyncio.Task[None]] = []
        job: _Job | None = first
        nxt: _Job | None = None
        try:
            loop.run_until_complete(_start_kernel(first, self.opts))
            while job is not None:
                nxt = self._next()
                if nxt is not None:  # boots while `job` runs
                    loop.run_until_complete(_start_kernel(nxt, self.opts))
                with self.lock:
                    self.running.append(job)
                if self.opts.notebook_timeout:
                    _import_papermill()  # once per process: its import must not eat a notebook's time
                watchdog = _watchdog(job, self.opts)
                try:
                    result, kill = _execute(job, self.opts)
                except Exception as exc:  # a bug here must not lose the other notebooks
                    result = _internal_failure(job, exc)
                    kill = True
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
                    with self.lock:
                        self.running.remove(job)
                stopping.append(loop.create_task(_stop_kernel(job, kill=kill)))
                with self.lock:
                    self.results[job.source] = result
                with contextlib.suppress(Exception):  # a broken callback must not stop the pool
                    self.done(result)
                job, nxt = nxt, None
        finally:
            if nxt is not None:  # only after an unexpected error: do not leave its kernel behind
                stopping.append(loop.create_task(_stop_kernel(nxt, kill=True)))
            loop.run_until_complete(asyncio.gather(*stopping, return_exceptions=True))
            loop.close()

    def run(self) -> dict[Path, NotebookResult]:
        threads = [
            threading.Thread(target=self._worker, args=(job,), name=f"labkit-validate-{i}", daemon=True)
            for i, job in enumerate(self.first)
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self.opts.cancel.set()
            with self.lock:
                for job in self.running:
                    _kill_now(job)
            for t in threads:
                t.join(10)
            raise
        return self.results


def _internal_failure(job: _Job, exc: Exception) -> NotebookResult:
    return NotebookResult(
        path=job.source,
        output=job.output,
        status="error",
        duration_s=0.0,
        counts=count_results([]),
        checks=[],
        error={"kind": "internal", "message": f"{type(exc).__name__}: {_one_line(exc)}"},
        warnings=job.warnings,
    )


def _not_run(job: _Job) -> NotebookResult:
    """A notebook no worker reported on (its worker thread failed): never silently dropped."""
    result = _internal_failure(job, RuntimeError("not run: its worker stopped unexpectedly"))
    if job.start_error is not None:
        result.error = {"kind": "startup", "message": _one_line(job.start_error)}
    return result


# -- API -----------------------------------------------------------------------------------------
def main(
    *,
    notebooks: Sequence[Path] | None = None,
    mode: str = "auto",
    jobs: int | None = None,
    out_dir: Path = Path("_validate"),
    report: Path | None = None,
    cell_timeout: float = 600,
    kernel_name: str | None = None,
    lang: str | None = None,
    on_result: Callable[[NotebookResult], None] | None = None,
    notebook_timeout: float | None = None,
) -> ValidateReport:
    """Execute ``notebooks`` (default: the course's ``notebooks/*.ipynb``) and report.

    ``mode`` is passed to every notebook; ``jobs`` notebooks run at once (default: one per CPU);
    ``cell_timeout`` limits each cell in seconds; ``kernel_name`` picks a kernelspec instead of
    this interpreter; ``lang`` (``zh`` / ``en``) sets ``LABKIT_LANG`` in the kernels;
    ``on_result`` is called (from a worker thread) as each notebook finishes;
    ``notebook_timeout`` (seconds) limits each whole notebook: its kernel is killed and the
    notebook reported as a timeout (the others go on). Raises
    :class:`~labkit.errors.InvalidField` for bad arguments; notebook failures are in the report.
    """
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.monotonic()
    if lang is not None and lang not in ("zh", "en"):
        raise InvalidField("lang", lang, "is not a course language", "use zh or en")
    if notebook_timeout is not None and not notebook_timeout > 0:
        raise InvalidField(
            "notebook_timeout", notebook_timeout, "must be a positive number of seconds", "e.g. 300"
        )
    paths, workers = _check_inputs(
        list(notebooks) if notebooks is not None else default_notebooks(), mode, jobs, out_dir, cell_timeout
    )
    out = out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    job_list = [
        _Job(
            source=p,
            output=out / p.name,
            workdir=_fresh_workdir(out / "work" / p.stem),
            log=out / f"{p.stem}.kernel.log",
            warnings=_parameter_warnings(p),
        )
        for p in paths
    ]
    opts = _Options(mode, float(cell_timeout), kernel_name, lang, threading.Event(), notebook_timeout)
    pm_log = logging.getLogger("papermill")
    old_level = pm_log.level
    pm_log.setLevel(logging.CRITICAL)  # nbclient logs timeouts / dead kernels: we report those ourselves
    try:
        results = _Pool(job_list, workers, opts, on_result or (lambda r: None)).run()
    finally:
        pm_log.setLevel(old_level)
    kernel = kernel_name or f"python3 ({sys.executable})"
    rep = ValidateReport(
        mode=mode,
        started=started,
        duration_s=time.monotonic() - t0,
        jobs=workers,
        kernel=kernel,
        notebooks=[results.get(job.source) or _not_run(job) for job in job_list],
    )
    if report is not None:
        _write_report(Path(report), rep)
    return rep


def _write_report(path: Path, rep: ValidateReport) -> None:
    """Atomically (a reader never sees half a report); the previous report is simply replaced."""
    from labkit.files import atomic_target

    data = json.dumps(rep.to_json(), ensure_ascii=False, indent=1) + "\n"
    with atomic_target(path, overwrite=True, backup=False) as tmp:
        tmp.write_text(data, encoding="utf-8")


# -- CLI -----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="notebooks to run (default: notebooks/*.ipynb)",
    )
    parser.add_argument("--mode", choices=MODES, default="auto", help="run mode passed to every notebook")
    parser.add_argument(
        "--jobs", "-j", type=int, default=None, metavar="N", help="notebooks at once (default: CPUs)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("_validate"), metavar="DIR", help="executed notebooks"
    )
    parser.add_argument("--report", type=Path, default=None, metavar="FILE", help="write a JSON report")
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS", help="limit per cell (600)")
    parser.add_argument("--kernel", default=None, metavar="NAME", help="kernelspec (default: this Python)")
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="course language in the kernels")


def cli(args: argparse.Namespace) -> int:
    global _FAST_IMPORT
    _FAST_IMPORT = True
    if args.lang:  # the table too, not only the kernels, speaks the chosen language
        os.environ["LABKIT_LANG"] = args.lang

    def progress(result: NotebookResult) -> None:
        print(
            f"{_ICONS.get(result.status, '?')} {result.path.name} {result.status} {result.duration_s:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    try:
        rep = main(
            notebooks=args.notebooks or None,
            mode=args.mode,
            jobs=args.jobs,
            out_dir=args.out,
            report=args.report,
            cell_timeout=args.timeout,
            kernel_name=args.kernel,
            lang=args.lang,
            on_result=progress,
        )
    except LabkitError as exc:
        print(f"labkit validate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(tr("labkit validate：已中断", "labkit validate: interrupted"), file=sys.stderr)
        return 130
    print(rep.table())
    return rep.exit_code
