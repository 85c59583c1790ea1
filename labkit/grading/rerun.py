"""``labkit grade --rerun``: re-create the results of the checks marked ``"rerun": true`` on the
grading machine, from the instructor's check code, instead of believing the submission's outputs.

Trust model (the README's "What grading can and cannot prove" says the same for instructors):

* Everything in a submitted notebook is the student's claim. Its check outputs carry a digest,
  but labkit's code is public: a student can recompute it, so a forged ``pass`` with a valid
  digest is only caught when the check is re-run (or the same result is in two files).
* A rerun check's grade is decided by the **instructor's** code: the check cell's source and the
  ``setup`` cells' sources stored in the manifest by ``labkit release``, never the cells of the
  submission. Per submission, in two steps, each in its own jail (:mod:`labkit.grading.sandbox`:
  own uid, no network, own PID/mount namespaces, memory/CPU/process limits, a timeout, every
  process killed at the end):

  1. **the student's run**: the submitted notebook, as submitted, executes in the submission's
     private folder (its outputs are discarded; only whether it finished is reported). This is
     what leaves artifacts (disk images, ``efi.img``, JSON files …) in its work folder.
  2. **the instructor's checks**: after every process of step 1 is gone, a *fresh* interpreter
     with a fresh ``HOME`` and working directory (nothing the student wrote is on its
     ``sys.path`` or in its configuration) executes a notebook built from the manifest: the setup
     cells, then each rerun check cell, against that work folder. Its results are the grades.

  Student code therefore cannot patch the checks (``CheckResult.failed = CheckResult.passed`` in
  step 1 is gone in step 2); it can only leave files, and a check that reads them judges them.
* What it proves: the instructor's check code, run on the grading machine, accepts what the
  submitted notebook produces there. It does not prove the student ran anything on their own
  machine. A check that depends on the student's machine (host facts, KVM, a guest that booted,
  the Docker engine) is not a rerun check; its grade is the student's claim.
* Recorded ``tampered`` (edited check cells or outputs) and deleted checks stay as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from labkit.i18n import lang as current_lang
from labkit.i18n import tr
from labkit.notebooks import load_notebook_json

from .classify import CheckGrade, Submission, classify_notebook
from .collect import DEFAULT_MAX_BYTES, Archives, Source, source_bytes
from .manifest import CHECK_TAG, Manifest, NotebookSpec
from .sandbox import Limits, Task, jail_argv, make_cgroup, owners, remove_cgroup, sweep

__all__ = ["rerun_submissions", "verification_notebook"]

_NB = "submission.ipynb"
#: Seconds the jail gets beyond the notebook timeout (interpreter start, kernel start and stop).
_GRACE_S = 60


def _copy(src: Source, dest: Path, archives: Archives) -> None:
    """The bytes that were graded (the same zip entry, within the same kind of cap) into ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(source_bytes(src, max(src.size, DEFAULT_MAX_BYTES), archives))


def verification_notebook(spec: NotebookSpec, manifest: Manifest) -> dict[str, Any]:
    """The notebook of step 2: the parameters, the manifest's setup cells, then each rerun check
    cell with the manifest's source. Check cells are tagged ``raises-exception`` so one check
    that raises does not stop the others (it is graded ``error``)."""

    def code(source: str, **metadata: Any) -> dict[str, Any]:
        return {
            "cell_type": "code",
            "execution_count": None,
            "metadata": metadata,
            "outputs": [],
            "source": source,
        }

    cells = [code('mode = "auto"\nlabkit_workdir = None', tags=["parameters"])]
    cells += [code(src) for src in spec.setup]
    for c in spec.checks:
        if c.rerun and c.source is not None:
            meta = {"check": c.check, "points": c.points, "rerun": True}
            cells.append(code(c.source, labkit=meta, tags=[CHECK_TAG, "raises-exception"]))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "labkit": {"course": manifest.course, "assignment": manifest.assignment, "release": spec.release},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _merge(
    sub: Submission, fresh: Submission | None, run_error: dict[str, Any] | None, manifest: Manifest
) -> None:
    """Merge, per check marked ``rerun``: a recorded ``tampered`` or deleted check stays as it is (a
    rerun cannot undo an edited check cell, and an edited output remains evidence); otherwise the
    instructor's check code decides, and a check that produced no result because the run failed
    is ``error`` with the run's failure message."""
    spec = manifest.by_name(sub.notebook or "")
    if spec is None:
        return
    rerun_ids = {c.check for c in spec.checks if c.rerun}
    fresh_by_id = {c.check: c for c in fresh.checks} if fresh is not None else {}
    failure = str(run_error.get("message", "")) if run_error else ""
    merged: list[CheckGrade] = []
    for old in sub.checks:
        if old.check not in rerun_ids or old.status == "tampered" or old.reason == "deleted":
            merged.append(old)
            continue
        new = fresh_by_id.get(old.check)
        if new is None or new.status == "missing":
            new = CheckGrade(
                old.check,
                "error",
                0,
                old.max_points,
                "rerun-failed",
                tr("重新运行失败：{e}", "re-execution failed: {e}", e=failure or "?"),
            )
        new.rerun = True
        new.cell_index = old.cell_index
        new.message = tr("（重新运行）", "(re-executed) ") + new.message
        merged.append(new)
    sub.checks = merged


@dataclass
class _Jails:
    """One grading run's jails: a private temp root (``0711``: folders inside cannot be listed),
    a uid block nobody else uses, the limits and timeouts."""

    root: Path
    uid_base: int
    limits: Limits
    cell_timeout: float
    notebook_timeout: float
    lang: str | None
    fast_import: bool
    jobs: int = 1

    def run(self, n: int, folder: Path, notebook: Path, keep: Sequence[Path]) -> dict[str, Any]:
        """Run ``notebook`` (in ``folder``, its working directory) as the jail user of submission
        ``n``, with the submission's work folder; returns the jail's summary."""
        uid = self.uid_base + n
        home = folder / "home"
        home.mkdir()
        result = folder / "result.json"
        _give([folder, *folder.iterdir()], uid)
        task = Task(
            uid=uid,
            notebook=str(notebook),
            cwd=str(folder),
            home=str(home),
            workdir=str(self.root / f"s{n:05d}" / "work"),
            out_dir=str(folder / "out"),
            result=str(result),
            log=str(folder / "log.txt"),
            cell_timeout=self.cell_timeout,
            notebook_timeout=self.notebook_timeout,
            lang=self.lang,
            fast_import=self.fast_import,
            limits=self.limits,
            keep=tuple(str(p) for p in keep),
        )
        cgroup = make_cgroup(self.limits.memory_bytes)
        task = replace(task, cgroup=None if cgroup is None else str(cgroup))
        try:
            summary = _jailed(task, result, self.notebook_timeout + _GRACE_S)
        finally:
            leftover = sweep(uid)
            remove_cgroup(cgroup)
        summary["leftover"] = leftover
        summary["memory_limit"] = "cgroup" if cgroup is not None else "RLIMIT_AS"
        return summary


def _give(paths: Sequence[Path], uid: int) -> None:
    """Give the grader-made ``paths`` to the jail user (folders ``0700``: no other jail enters)."""
    for path in paths:
        os.chown(path, uid, uid, follow_symlinks=False)
        if path.is_dir():
            os.chmod(path, 0o700)


def _jailed(task: Task, result: Path, timeout: float) -> dict[str, Any]:
    from labkit.errors import LabkitError
    from labkit.steps.runner import SubprocessRunner

    try:
        done = SubprocessRunner().run(jail_argv(task), timeout=timeout, check=False)
    except LabkitError as exc:  # CommandTimeout: the runner killed unshare, and so the jail
        return {"output": "", "error": {"kind": "timeout", "message": str(exc)[:300]}, "duration_s": timeout}
    return _read_result(result, done.returncode, done.stderr)


def _read_result(path: Path, returncode: int, stderr: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, dict):
            return data
    except (OSError, ValueError):
        pass
    message = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {returncode}"
    return {"output": "", "error": {"kind": "jail", "message": message[:300]}, "duration_s": 0.0}


def _one(jails: _Jails, n: int, sub: Submission, src: Source, manifest: Manifest) -> None:
    """Both steps for one submission, then the merge (see the module docstring)."""
    box = jails.root / f"s{n:05d}"  # step 1's folder: the student's code may write anything in it
    (box / "work").mkdir(parents=True)
    with Archives() as archives:
        _copy(src, box / _NB, archives)
    os.chown(box / "work", jails.uid_base + n, jails.uid_base + n)
    first = jails.run(n, box, box / _NB, [box])
    spec = manifest.by_name(sub.notebook or "")
    assert spec is not None
    # Step 2's folder is made only now, when no process of step 1 is left: nothing in it (its
    # HOME, its notebook, the result it reports) can have been prepared by the student's code.
    check = jails.root / f"v{n:05d}"
    check.mkdir()
    (check / _NB).write_text(json.dumps(verification_notebook(spec, manifest)), encoding="utf-8")
    second = jails.run(n, check, check / _NB, [check, box / "work"])
    fresh = None
    if second.get("output"):
        with contextlib.suppress(OSError, ValueError):
            fresh = classify_notebook(load_notebook_json(second["output"]), manifest, source=sub.source)
    _merge(sub, fresh, second.get("error"), manifest)
    sub.rerun = _summary(first, second)


def _summary(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    err1, err2 = first.get("error"), second.get("error")
    if err1 is None:
        message = tr(
            "已在隔离环境中重新运行（{t:.1f} s），检查由教师的代码重新完成",
            "re-executed in isolation ({t:.1f} s); the checks were redone by the instructor's code",
            t=float(first.get("duration_s", 0)),
        )
    else:
        message = tr(
            "你的笔记本在评分机上没有运行完：{e}；检查按它留下的文件完成",
            "your notebook did not finish on the grading machine: {e}; the checks judged the files it left",
            e=str(err1.get("message", ""))[:300],
        )
    if err2 is not None:
        message += tr(
            "；检查本身失败：{e}", "; the checks failed to run: {e}", e=str(err2.get("message", ""))[:300]
        )
    return {
        "status": "ok" if err1 is None and err2 is None else str((err1 or err2 or {}).get("kind", "error")),
        "message": message,
        "duration_s": round(float(first.get("duration_s", 0)) + float(second.get("duration_s", 0)), 3),
        "killed_after": int(first.get("leftover", 0)) + int(second.get("leftover", 0)),
        "memory_limit": first.get("memory_limit", ""),
    }


def _uid_base(count: int) -> int:
    """A block of ``count`` uids above any real account, none of which owns a process now."""
    for _ in range(20):
        base = 2_000_000_000 + secrets.randbelow(1_000_000) * 1000
        if not owners(range(base, base + count)):
            return base
    raise RuntimeError("no free uid block for the rerun jails")


def rerun_submissions(
    items: Sequence[tuple[Submission, Source]],
    manifest: Manifest,
    *,
    jobs: int | None = None,
    cell_timeout: float = 60,
    notebook_timeout: float = 300,
    lang: str | None = None,
    on_done: Callable[[Submission], None] | None = None,
    fast_import: bool = False,
    limits: Limits | None = None,
) -> None:
    """Re-create each submission's rerun checks (see the module docstring) and merge them into its
    check grades (in place). ``jobs`` submissions at once; a timeout, a dead kernel or a jail that
    failed is *that* submission's ``rerun`` status, the batch goes on. ``lang`` (default: the
    caller's language) goes to the kernels and the messages; ``fast_import`` as in
    :func:`labkit.validate.main`; ``limits`` per jail (default :class:`Limits`)."""
    if not items:
        return
    language = lang or current_lang()
    with _terminate_as_exit(), tempfile.TemporaryDirectory(prefix="labkit-rerun-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o711)
        jails = _Jails(
            root,
            _uid_base(len(items)),
            limits or Limits(cpu_s=int(notebook_timeout) + _GRACE_S),
            cell_timeout,
            notebook_timeout,
            language,
            fast_import,
            max(1, jobs or 1),
        )

        def work(n: int) -> Submission:
            sub, src = items[n]
            try:
                _one(jails, n, sub, src, manifest)
            except Exception as exc:  # this submission's problem (e.g. its zip member vanished)
                error = {"kind": "error", "message": f"{type(exc).__name__}: {exc}"[:300]}
                _merge(sub, None, error, manifest)
                sub.rerun = _summary(error | {"error": error}, {"error": error})
            return sub

        _run_all(jails, len(items), work, on_done)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While jails run, SIGTERM ends the grader like Ctrl-C does (``SystemExit(143)``): the jails
    are killed, their cgroups and the temp root removed (only in the main thread, where Python
    lets a handler be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_all(
    jails: _Jails, count: int, work: Callable[[int], Submission], on_done: Callable[[Submission], None] | None
) -> None:
    """``work(n)`` for every submission, ``jobs`` at once. However this ends (Ctrl-C included),
    no jail outlives it: pending ones are cancelled and running ones killed by their uid."""
    from concurrent.futures import wait

    pool = ThreadPoolExecutor(max_workers=max(1, jails.jobs))
    futures = [pool.submit(copy_context().run, work, n) for n in range(count)]
    try:
        for fut in futures:
            sub = fut.result()
            if on_done is not None:
                on_done(sub)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        while not all(f.done() for f in futures):
            for n in range(count):
                sweep(jails.uid_base + n)
            wait(futures, timeout=0.5)
