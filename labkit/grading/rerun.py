"""``labkit grade --rerun``: re-execute submissions whose checks are reproducible off the student's
machine (check cells marked ``"rerun": true`` in the course notebook: pure-Python exercises).

This is the only part of grading that executes anything from a submission, and only when the
instructor asks for it. It is not a sandbox: the code runs with the grader's user rights, so rerun
untrusted submissions in a container or VM. How it runs: :func:`rerun_submissions`; how fresh
results merge with recorded ones: :func:`_merge`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit.i18n import tr
from labkit.notebooks import load_notebook_json

from .classify import CheckGrade, Submission, classify_notebook
from .collect import Archives, Source
from .manifest import Manifest

__all__ = ["rerun_submissions"]


def _copy(src: Source, dest: Path, archives: Archives) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.member is None:
        shutil.copyfile(src.path, dest)
        return
    with archives.open(src.path).open(src.member) as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def _merge(
    sub: Submission, fresh: Submission | None, run_error: dict[str, Any] | None, manifest: Manifest
) -> None:
    """Merge, per check marked ``rerun``: a recorded ``tampered`` or deleted check stays as it is (a
    rerun cannot undo an edited check cell, and an edited output remains evidence); otherwise the
    re-executed result decides, and a check that produced no result because the run failed is
    ``error`` with the run's failure message."""
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
        if new is None or (new.status == "missing" and run_error):
            new = CheckGrade(
                old.check,
                "error",
                0,
                old.max_points,
                "rerun-failed",
                tr("重新运行失败：{e}", "re-execution failed: {e}", e=failure or "?"),
            )
        new.rerun = True
        new.message = tr("（重新运行）", "(re-executed) ") + new.message
        merged.append(new)
    sub.checks = merged


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
) -> None:
    """Re-execute each submission and merge the results into its check grades (in place).

    It reuses :func:`labkit.validate.main` – papermill in one process, a thread and a fresh kernel
    per notebook, per-cell timeout, a per-notebook timeout that kills the kernel, structured
    failures – instead of a second executor. Each submission is copied into its own folder of a
    temporary directory (the kernel's working directory), so student code writes there and never
    next to the originals; the folder is removed afterwards. A timeout, a dead kernel or a cell
    that raised is *that* submission's ``rerun`` status; the batch goes on (otter-grader #813 is
    the opposite).

    ``lang`` (default: the caller's language) goes to the kernels and the messages;
    ``fast_import`` as in :func:`labkit.validate.main`.
    """
    if not items:
        return
    from labkit import validate

    with tempfile.TemporaryDirectory(prefix="labkit-rerun-") as tmp:
        root = Path(tmp)
        paths: list[Path] = []
        with Archives() as archives:
            for n, (_sub, src) in enumerate(items):
                p = root / "in" / f"s{n:05d}" / f"s{n:05d}.ipynb"
                _copy(src, p, archives)
                paths.append(p)
        report = validate.main(
            notebooks=paths,
            mode="auto",
            jobs=jobs,
            out_dir=root / "out",
            cell_timeout=cell_timeout,
            notebook_timeout=notebook_timeout,
            lang=lang,
            fast_import=fast_import,
        )
        for (sub, _src), result in zip(items, report.notebooks, strict=True):
            fresh = None
            if result.output.is_file():
                try:
                    fresh = classify_notebook(load_notebook_json(result.output), manifest, source=sub.source)
                except (OSError, ValueError):
                    fresh = None
            _merge(sub, fresh, result.error, manifest)
            if result.error is None:
                message = tr("已重新运行（{t:.1f} s）", "re-executed ({t:.1f} s)", t=result.duration_s)
            else:
                message = tr(
                    "重新运行失败：{e}", "re-execution failed: {e}", e=result.error.get("message", "")
                )
            sub.rerun = {
                "status": "ok" if result.error is None else str(result.error.get("kind", "error")),
                "message": message,
                "duration_s": round(result.duration_s, 3),
            }
            if on_done is not None:
                on_done(sub)
