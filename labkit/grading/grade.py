"""``labkit grade``: executed student notebooks + the release manifest → grades and feedback.

Usage: ``labkit grade downloads/ch1.zip --manifest instructor/ch1-manifest.json --out grades/``.
Inputs are folders (searched recursively), ``.ipynb`` files and ``.zip`` archives, in any mix.
Each file is read once and classified (:mod:`labkit.grading.collect`,
:mod:`labkit.grading.classify`); students are identified and submissions compared
(:mod:`labkit.grading.gradebook`). Nothing from a submission is executed unless ``--rerun`` is
given (:mod:`labkit.grading.rerun`). Arguments and the manifest are checked before any file is
read (:func:`_check_args`, :func:`load_manifest`); which ``--out`` may be used and how it is
replaced whole: :mod:`labkit.grading.output`; the exit status: :attr:`GradeRun.exit_code`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.checks import now_iso
from labkit.errors import InvalidField, LabkitError
from labkit.i18n import check_lang, option_labels, tr, use_labels, use_lang

from .classify import Submission
from .collect import DEFAULT_MAX_BYTES, Source, compile_id_pattern, find_inputs, grade_sources
from .gradebook import Gradebook, assemble, pick_graded
from .manifest import MAX_MANIFEST_BYTES, Manifest, parse_manifest
from .output import REPORT, OutputFolder
from .render import (
    feedback_html,
    feedback_name,
    flag_text,
    gradebook_csv,
    lms_csv,
    status_label,
    summary_html,
)

__all__ = ["GradeRun", "add_arguments", "cli", "load_manifest", "main"]

#: ``--jobs`` above this is refused (worker processes and --rerun kernels).
MAX_JOBS = 256
#: ``--max-mb``: at most 64 GiB.
MAX_BYTES = 64 * 2**30


@dataclass
class GradeRun:
    """What one ``labkit grade`` produced."""

    gradebook: Gradebook
    out_dir: Path
    outputs: dict[str, Any]
    duration_s: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 graded and nothing needs a look; 1 graded, but some submission is unreadable, foreign,
        tampered, unidentified or disagrees about its identity (see report.json ``flags``).
        (The CLI exits 2 for bad arguments.)"""
        return 1 if self.gradebook.needs_attention() else 0


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest written by ``labkit release`` (raises :class:`InvalidField`).

    Only a regular file is read (a FIFO or ``/proc/kmsg`` would block), at most
    :data:`~labkit.grading.manifest.MAX_MANIFEST_BYTES` of it (:func:`parse_manifest`).
    """
    p = Path(path)
    try:
        if not p.is_file():
            raise InvalidField(
                "manifest",
                str(path),
                tr("不是文件", "is not a file"),
                tr("传入 labkit release 写出的清单文件", "pass the file labkit release wrote"),
            )
        with open(p, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise InvalidField(
            "manifest",
            str(path),
            tr("无法读取（{e}）", "cannot be read ({e})", e=exc.strerror or exc),
            tr("传入 labkit release 写出的清单文件", "pass the file labkit release wrote"),
        ) from exc
    return parse_manifest(data, where=str(path))


def _dump_report(report: dict[str, Any]) -> str:
    """JSON with one top-level key, student and submission per line.

    Readable and diff-able, and written by the C encoder: ``indent=`` switches json to its
    pure-Python encoder, which took longer than grading itself for 300 students.
    """
    parts = []
    for key, value in report.items():
        if isinstance(value, list):
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value)
            text = f"[\n  {items}\n ]" if value else "[]"
        else:
            text = json.dumps(value, ensure_ascii=False)
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(
    *,
    submissions: Sequence[str | Path],
    manifest: str | Path | Manifest,
    out_dir: str | Path,
    jobs: int | None = None,
    id_pattern: str | None = None,
    rerun: bool = False,
    cell_timeout: float = 60,
    notebook_timeout: float = 300,
    max_bytes: int = DEFAULT_MAX_BYTES,
    lang: str | None = None,
    plot: bool = True,
    on_file: Callable[[Submission], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    fast_import: bool = False,
    overwrite: bool = False,
) -> GradeRun:
    """Grade ``submissions`` against ``manifest`` and write everything into ``out_dir``.

    ``jobs`` worker processes read files (default: one per CPU; small batches are read in this
    process); ``id_pattern`` is a regex with a group ``id`` searched in each file's relative path
    (default: the file name before the notebook's name); ``rerun`` re-executes notebooks with
    rerun checks (``cell_timeout`` / ``notebook_timeout`` seconds; ``fast_import`` as in
    :func:`labkit.validate.main`); files above ``max_bytes`` are ``unreadable``; ``lang``
    (``zh`` / ``en``; default: the caller's language) is the feedback language; ``on_start(n)``
    and ``on_file(submission)`` report progress; ``overwrite`` allows replacing the grades of
    another course or assignment in ``out_dir``, which are kept as ``<out_dir>.labkit-bak-*`` (the
    rules: :mod:`labkit.grading.output`). Raises :class:`InvalidField` /
    :class:`ConsentRequired` for bad arguments, a bad manifest or an ``out_dir`` that cannot be
    used, all before any submission is read; problems with submissions are in the results, never
    exceptions.
    """
    t0 = time.perf_counter()
    check_lang(lang)
    with use_lang(lang):
        jobs = _check_args(jobs, max_bytes, cell_timeout, notebook_timeout)
        man = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
        if rerun:
            check_rerun(man)
        pattern = compile_id_pattern(id_pattern)
        out = Path(out_dir).resolve()
        target = OutputFolder.claim(out, man, overwrite=overwrite)
        try:
            found = find_inputs(submissions)
            sources = found.sources
            if not sources:
                left_out = "; ".join(f"{p['source']}: {p['message']}" for p in found.problems[:3])
                raise InvalidField(
                    "submissions",
                    ", ".join(map(str, submissions)),
                    tr("没有可读取的 .ipynb 文件", "hold no .ipynb file")
                    + (tr("（未读取：{x}）", " (not read: {x})", x=left_out) if left_out else ""),
                    tr("检查路径", "check the paths"),
                )
            if on_start is not None:
                on_start(len(sources))
            subs = grade_sources(
                sources, man, jobs=jobs, id_pattern=pattern, max_bytes=max_bytes, on_done=on_file
            )
            timings = {"read": time.perf_counter() - t0}
            if rerun:
                t1 = time.perf_counter()
                _rerun(subs, sources, man, jobs, cell_timeout, notebook_timeout, fast_import)
                timings["rerun"] = time.perf_counter() - t1
            gb = assemble(subs, man, found.problems)
            t2 = time.perf_counter()
            run = {
                "started": now_iso(),
                "inputs": [str(p) for p in submissions],
                "manifest": str(manifest) if not isinstance(manifest, Manifest) else "<object>",
                "jobs": jobs,
                "rerun": rerun,
                "id_pattern": id_pattern,
                "files": len(sources),
            }
            outputs = _write_outputs(gb, target, plot=plot, run=run)
        except BaseException:
            target.abandon()
            raise
        timings["write"] = time.perf_counter() - t2
    return GradeRun(gb, out, outputs, time.perf_counter() - t0, timings)


def _check_args(jobs: int | None, max_bytes: int, cell_timeout: float, notebook_timeout: float) -> int:
    """Refuse bad arguments before anything is read; returns ``jobs`` (default: one per CPU)."""
    from labkit.validate.inputs import check_seconds  # the same rule as labkit validate's

    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InvalidField(
            "jobs",
            jobs,
            tr("应为 1 到 {m} 之间的整数", "must be a whole number from 1 to {m}", m=MAX_JOBS),
            tr("例如 --jobs 2", "e.g. --jobs 2"),
        )
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= MAX_BYTES:
        raise InvalidField(
            "max_bytes",
            max_bytes,
            tr("应为 1 字节到 {m} GiB 之间", "must be from 1 byte to {m} GiB", m=MAX_BYTES >> 30),
            tr("例如 --max-mb 256", "e.g. --max-mb 256"),
        )
    check_seconds(cell_timeout, "timeout")
    check_seconds(notebook_timeout, "notebook_timeout")
    return jobs


def check_rerun(man: Manifest) -> None:
    """Refuse ``--rerun`` when it could re-run nothing, or not in isolation (raises
    :class:`InvalidField`)."""
    checks = [c for nb in man.notebooks for c in nb.checks if c.rerun]
    if not checks:
        raise InvalidField(
            "rerun",
            "--rerun",
            tr(
                "没有可重新运行的检查：清单中没有标记 rerun 的检查",
                "has nothing to re-run: no check of the manifest is marked rerun",
            ),
            tr(
                '给能在评分机器上重新生成的检查加上 {"labkit": {"rerun": true}}，再运行 labkit release；'
                "或者不加 --rerun 评分",
                'mark re-creatable checks {"labkit": {"rerun": true}} and run labkit release again, '
                "or grade without --rerun",
            ),
        )
    if any(c.source is None for c in checks):
        raise InvalidField(
            "manifest",
            "--rerun",
            tr(
                "没有 rerun 检查的教师检查代码（由旧版 labkit 生成）",
                "holds no instructor check code for its rerun checks (written by an older labkit)",
            ),
            tr("重新运行 labkit release", "run labkit release again"),
        )
    from .sandbox import unavailable

    why = unavailable()
    if why is not None:
        raise InvalidField(
            "rerun",
            "--rerun",
            tr("无法在这里隔离作业：{w}", "cannot isolate submissions here: it {w}", w=why),
            tr(
                "在 Linux 上以 root 运行 labkit grade --rerun，最好在一次性的虚拟机或容器里",
                "run labkit grade --rerun as root on Linux, in a throwaway VM or container",
            ),
        )


def mib_to_bytes(mib: object, field: str = "max_mb") -> int:
    """``--max-mb`` in bytes; :class:`InvalidField` for ``nan``, ``inf``, 0 or less, or above
    :data:`MAX_BYTES` (``int(nan)`` would raise after all the argument parsing)."""
    if (
        isinstance(mib, bool)
        or not isinstance(mib, (int, float))
        or not math.isfinite(mib)
        or not 0 < mib * 2**20 <= MAX_BYTES
    ):
        raise InvalidField(
            field,
            mib,
            tr(
                "应为大于 0、不超过 {m} 的 MiB 数",
                "must be a number of MiB above 0 and at most {m}",
                m=MAX_BYTES >> 20,
            ),
            tr("例如 --max-mb 256", "e.g. --max-mb 256"),
        )
    return max(1, int(mib * 2**20))


def _has_rerun(man: Manifest, sub: Submission) -> bool:
    spec = man.by_name(sub.notebook or "")
    return spec is not None and spec.has_rerun


def _rerun(
    subs: list[Submission],
    sources: Sequence[Source],
    man: Manifest,
    jobs: int,
    cell_timeout: float,
    notebook_timeout: float,
    fast_import: bool,
) -> None:
    """``--rerun``: re-execute the graded submissions of notebooks that have rerun checks."""
    from .rerun import rerun_submissions

    src_of = {id(s): src for s, src in zip(subs, sources, strict=True)}
    todo = [(s, src_of[id(s)]) for s in pick_graded(subs) if _has_rerun(man, s)]
    rerun_submissions(
        todo,
        man,
        jobs=min(jobs, os.cpu_count() or 1),
        cell_timeout=cell_timeout,
        notebook_timeout=notebook_timeout,
        fast_import=fast_import,
    )


def _write_outputs(gb: Gradebook, target: OutputFolder, *, plot: bool, run: dict[str, Any]) -> dict[str, Any]:
    def build(stage: Path) -> dict[str, Any]:
        (stage / "feedback").mkdir()
        feedback: dict[str, str] = {}
        for st in gb.students:
            name = f"feedback/{feedback_name(st)}"
            (stage / name).write_text(feedback_html(gb, st), encoding="utf-8")
            feedback[st.student_id] = name
        plot_name = None
        if plot:
            from .plot import summary_png

            plot_name = "summary.png"
            summary_png(gb, stage / plot_name)
        html = summary_html(gb, plot_name=plot_name, feedback=feedback)
        (stage / "summary.html").write_text(html, encoding="utf-8")
        (stage / "lms.csv").write_text(lms_csv(gb), encoding="utf-8", newline="")
        (stage / "gradebook.csv").write_text(gradebook_csv(gb), encoding="utf-8", newline="")
        outputs = {
            "gradebook": "gradebook.csv",
            "lms": "lms.csv",
            "summary": "summary.html",
            "plot": plot_name,
            "feedback": feedback,
        }
        report = {**gb.to_json(), "run": run, "outputs": outputs}
        (stage / REPORT).write_text(_dump_report(report), encoding="utf-8")
        return outputs

    return target.publish(build)


# -- CLI -----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="folders, .ipynb files or .zip archives",
    )
    parser.add_argument(
        "--manifest", required=True, type=Path, metavar="FILE", help="written by labkit release"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="where grades and feedback go")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="parallel readers for big batches, and --rerun kernels (default: CPUs)",
    )
    parser.add_argument(
        "--id-pattern",
        default=None,
        metavar="REGEX",
        help="regex with a group named id, searched in each file's relative path "
        "(default: the file name part before the notebook's name, e.g. 2023123456_zhangsan_01-...)",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="redo the checks marked rerun with the instructor's code after running each submission in "
        "its own jail (own user, no network, 4 GiB memory, CPU/process/time limits; needs root on Linux)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60, metavar="SECONDS", help="--rerun: limit per cell (60)"
    )
    parser.add_argument(
        "--notebook-timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="--rerun: limit per notebook (300)",
    )
    parser.add_argument(
        "--max-mb",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        metavar="MIB",
        help="larger files are unreadable (256); so is a file whose parsed form would need more "
        "than 4x this in memory (at least 256 MiB): each reader stays within about that, "
        "the whole run within --jobs times that (default: 1 GiB per reader)",
    )
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="language of feedback and report")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out holding another course's or assignment's grades (kept as DIR.labkit-bak-*); "
        "re-grading the same assignment needs no flag (the earlier report.json is kept inside DIR)",
    )


def cli(args: argparse.Namespace) -> int:
    # Messages name the flags the instructor typed (--max-mb), not the keywords (max_mb).
    with use_lang(args.lang), use_labels(option_labels(vars(args), positional=("submissions",))):
        return _cli(args)


def _cli(args: argparse.Namespace) -> int:
    bar: Any = None

    def on_start(n: int) -> None:
        nonlocal bar
        from tqdm import tqdm

        bar = tqdm(total=n, unit="nb", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)

    def on_file(_sub: Submission) -> None:
        if bar is not None:
            bar.update(1)

    try:
        run = main(
            submissions=args.submissions,
            manifest=args.manifest,
            out_dir=args.out,
            jobs=args.jobs,
            id_pattern=args.id_pattern,
            rerun=args.rerun,
            cell_timeout=args.timeout,
            notebook_timeout=args.notebook_timeout,
            max_bytes=mib_to_bytes(args.max_mb),
            lang=args.lang,
            on_start=on_start,
            on_file=on_file,
            fast_import=True,  # as under `labkit validate`: papermill without rfc3987_syntax
            overwrite=args.overwrite,
        )
    except LabkitError as exc:
        print(f"labkit grade: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            tr(
                "labkit grade：已中断（没有写出不完整的文件）",
                "labkit grade: interrupted (no partial files written)",
            ),
            file=sys.stderr,
        )
        return 130
    finally:
        if bar is not None:
            bar.close()
    print(summary_text(run))
    return run.exit_code


def summary_text(run: GradeRun) -> str:
    gb = run.gradebook
    files = gb.file_counts()
    lines = [
        tr(
            "{n} 个文件：{parts}",
            "{n} file(s): {parts}",
            n=len(gb.submissions),
            parts=", ".join(f"{status_label(k)} {v}" for k, v in files.items() if v),
        )
    ]
    graded = [st for st in gb.students if st.identified and st.total is not None]
    lines.append(
        tr(
            "{s} 名学生，{g} 名已评分（满分 {m}）",
            "{s} student(s), {g} graded (max {m} points)",
            s=sum(st.identified for st in gb.students),
            g=len(graded),
            m=gb.manifest.total_points,
        )
    )
    for s in gb.submissions:
        if s.status in ("unreadable", "foreign"):
            lines.append(f"! {s.source}: {status_label(s.status)}: {s.reason}")
    lines.extend(f"! {flag_text(f)}" for f in gb.flags)
    for st in gb.students:
        tampered = [c.check for nb in st.notebooks for c in nb.checks if c.status == "tampered"]
        if tampered:
            lines.append(f"! {st.student_id}: {status_label('tampered')}: {', '.join(tampered)}")
    lines.append(
        tr("输出：{o}（用时 {t:.2f} s）", "output: {o} ({t:.2f} s)", o=run.out_dir, t=run.duration_s)
    )
    return "\n".join(lines)
