"""``labkit validate``'s Python API: :func:`main` runs a pool of notebooks and returns the report.

**One process, a thread per job**: the work happens in the kernel subprocesses and the parent
only shuttles ZeroMQ messages, so threads are enough and papermill + nbformat are imported once
(a papermill CLI loop pays 2.5-4 s of imports per notebook on the 2-core course VM; see
benchmarks/validate.py). Each worker thread runs in a copy of the caller's context, so messages
follow the caller's language (:func:`labkit.i18n.use_lang`). One notebook's failure never stops
the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from labkit.checks import now_iso
from labkit.i18n import check_lang, lang, use_lang

from .execute import execute, internal_failure, not_run
from .inputs import (
    check_inputs,
    check_seconds,
    claim_outputs,
    claim_report,
    default_notebooks,
    fresh_workdir,
    kept_workdir,
    output_files,
    parameter_warnings,
)
from .kernels import Job, Options, import_papermill, kill_now, start_kernel, start_watchdog, stop_kernel
from .report import NotebookResult, ValidateReport

__all__ = ["main"]


class _Pool:
    """``jobs`` worker threads over a shared queue; each worker owns one asyncio loop."""

    def __init__(self, jobs: list[Job], workers: int, opts: Options, done: Callable[[NotebookResult], None]):
        self.queue: deque[Job] = deque(jobs[workers:])
        self.first = jobs[:workers]
        self.opts = opts
        self.done = done
        self.lock = threading.Lock()
        self.running: list[Job] = []
        self.results: dict[Path, NotebookResult] = {}

    def _next(self) -> Job | None:
        with self.lock:
            if self.opts.cancel.is_set() or not self.queue:
                return None
            return self.queue.popleft()

    def _worker_in(self, language: str, first: Job) -> None:
        """A worker in its thread's own fresh context, with the caller's language chosen.

        Not a copy of the caller's context: that would carry other libraries' context variables
        too, such as jupyter_core's event loop of the calling thread, which a worker must not
        share (``This event loop is already running``)."""
        with use_lang(language):
            self._worker(first)

    def _worker(self, first: Job) -> None:
        from jupyter_core.utils import ensure_event_loop

        loop = ensure_event_loop()  # the loop nbclient's run_sync uses in this thread too
        stopping: list[asyncio.Task[None]] = []
        job: Job | None = first
        nxt: Job | None = None
        try:
            loop.run_until_complete(start_kernel(first, self.opts))
            while job is not None:
                nxt = self._next()
                if nxt is not None:  # boots while `job` runs
                    loop.run_until_complete(start_kernel(nxt, self.opts))
                with self.lock:
                    self.running.append(job)
                if self.opts.notebook_timeout:
                    import_papermill(fast=self.opts.fast_import)  # once: not on a notebook's clock
                watchdog = start_watchdog(job, self.opts)
                try:
                    result, kill = execute(job, self.opts)
                except Exception as exc:  # a bug here must not lose the other notebooks
                    result = internal_failure(job, exc)
                    kill = True
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
                    with self.lock:
                        self.running.remove(job)
                stopping.append(loop.create_task(stop_kernel(job, kill=kill)))
                with self.lock:
                    self.results[job.source] = result
                with contextlib.suppress(Exception):  # a broken callback must not stop the pool
                    self.done(result)
                job, nxt = nxt, None
        finally:
            if nxt is not None:  # only after an unexpected error: do not leave its kernel behind
                stopping.append(loop.create_task(stop_kernel(nxt, kill=True)))
            loop.run_until_complete(asyncio.gather(*stopping, return_exceptions=True))
            loop.close()

    def run(self) -> dict[Path, NotebookResult]:
        threads = [
            threading.Thread(
                target=self._worker_in, args=(lang(), job), name=f"labkit-validate-{i}", daemon=True
            )
            for i, job in enumerate(self.first)
        ]
        for t in threads:
            t.start()
        with _sigterm_interrupts():
            try:
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM: kill every kernel and what it started
                self.opts.cancel.set()
                with self.lock:
                    for job in self.running:
                        kill_now(job)
                for t in threads:
                    t.join(10)
                raise
        return self.results


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While the pool runs in the main thread, SIGTERM interrupts it like Ctrl-C, so kernels and
    what they started are killed, not orphaned; afterwards the signal goes on to the previous
    handler (by default the process then ends with SIGTERM's status)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        got.append(signum)
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        if got:
            os.kill(os.getpid(), signal.SIGTERM)


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
    fast_import: bool = False,
    workdir: Path | None = None,
    overwrite: bool = False,
) -> ValidateReport:
    """Execute ``notebooks`` (default: the course's ``notebooks/*.ipynb``) and report.

    ``mode`` is passed to every notebook; ``jobs`` notebooks run at once (default: one per CPU);
    ``cell_timeout`` limits each cell in seconds; ``kernel_name`` picks a kernelspec instead of
    this interpreter; ``lang`` (``zh`` / ``en``; default: the caller's language) is the language
    of the report's messages and is passed to the kernels as ``LABKIT_LANG``;
    ``on_result`` is called (from a worker thread) as each notebook finishes;
    ``notebook_timeout`` (seconds) limits each whole notebook: its kernel is killed and the
    notebook reported as a timeout (the others go on); ``fast_import`` imports papermill without
    ``rfc3987_syntax`` (see :func:`~labkit.validate.kernels.import_papermill`); ``workdir`` gives
    each notebook ``workdir/<notebook name>`` as its work folder and keeps it between runs
    (default: a fresh folder under ``out_dir`` every run, see :mod:`~labkit.validate.inputs`).
    Files an earlier ``labkit validate`` wrote into ``out_dir`` and an earlier ``report`` are
    replaced; any other file in the way only with ``overwrite``, which keeps it as
    ``<name>.labkit-bak-*`` (:func:`~labkit.validate.inputs.claim_outputs`).
    Raises :class:`~labkit.errors.InvalidField` / :class:`~labkit.errors.ConsentRequired` for bad
    arguments, before any notebook runs; notebook failures are in the report.
    """
    started = now_iso()
    t0 = time.monotonic()
    check_lang(lang)
    with use_lang(lang) as chosen:
        if notebook_timeout is not None:
            check_seconds(notebook_timeout, "notebook_timeout")
        paths, workers = check_inputs(
            list(notebooks) if notebooks is not None else default_notebooks(),
            mode,
            jobs,
            out_dir,
            cell_timeout,
        )
        backup_report = claim_report(Path(report), overwrite=overwrite) if report is not None else False
        out = Path(out_dir).resolve()
        claim_outputs(out, [f for p in paths for f in output_files(out, p)], overwrite=overwrite)
        job_list = _jobs(paths, out, Path(workdir).resolve() if workdir else None)
        opts = Options(
            mode, float(cell_timeout), kernel_name, chosen, threading.Event(), notebook_timeout, fast_import
        )
        results = _run_pool(job_list, workers, opts, on_result or (lambda r: None))
        rep = ValidateReport(
            mode=mode,
            started=started,
            duration_s=time.monotonic() - t0,
            jobs=workers,
            kernel=kernel_name or f"python3 ({sys.executable})",
            notebooks=[results.get(job.source) or not_run(job) for job in job_list],
        )
        if report is not None:
            _write_report(Path(report), rep, backup=backup_report)
    return rep


def _jobs(paths: Sequence[Path], out: Path, keep: Path | None = None) -> list[Job]:
    """One job per notebook: its output copy, scratch folder and kernel log under ``out`` (the work
    folder under ``keep`` instead, kept from run to run, when given)."""
    out.mkdir(parents=True, exist_ok=True)
    return [
        Job(
            source=p,
            output=output_files(out, p)[0],
            workdir=kept_workdir(keep / p.stem) if keep else fresh_workdir(out / "work" / p.stem),
            log=output_files(out, p)[1],
            warnings=parameter_warnings(p),
        )
        for p in paths
    ]


def _run_pool(
    jobs: list[Job], workers: int, opts: Options, done: Callable[[NotebookResult], None]
) -> dict[Path, NotebookResult]:
    pm_log = logging.getLogger("papermill")
    old_level = pm_log.level
    pm_log.setLevel(logging.CRITICAL)  # nbclient logs timeouts / dead kernels: we report those ourselves
    try:
        return _Pool(jobs, workers, opts, done).run()
    finally:
        pm_log.setLevel(old_level)


def _write_report(path: Path, rep: ValidateReport, *, backup: bool) -> None:
    """Atomically (a reader never sees half a report). An earlier report is replaced; another
    file (allowed by ``overwrite``, see :func:`~labkit.validate.inputs.claim_report`) is kept as a
    backup."""
    from labkit.files import atomic_target

    data = json.dumps(rep.to_json(), ensure_ascii=False, indent=1) + "\n"
    with atomic_target(path, overwrite=True, backup=backup, field="report") as tmp:
        tmp.write_text(data, encoding="utf-8")
