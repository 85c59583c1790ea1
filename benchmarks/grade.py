"""Time ``labkit grade`` on 300 executed notebooks against a bare ``json.load`` of the same files.

Targets (2 cores): 300 notebooks graded in ≤ 2 s wall, and ≤ 4× the bare read.

The class is built from the real chapter-1 notebook: ``labkit release`` it, execute it once with
papermill (``labkit validate --mode plan``, so no VM boots), then make 300 student copies, each
with its own "who am I" output and its check results re-issued with a fresh kernel session,
timestamp and digest (as 300 separate kernel runs would leave them; a seeded quarter of the
checks are turned into failures). Two files are truncated and one result is hand-edited, so the
unhappy paths are timed too. ``metadata.widgets`` is dropped unless ``--widget-state``:
JupyterLab does not save widget state by default, papermill does (it makes each file ~8× larger).

Timed in this process, page cache warm for both, alternating ``--repeat`` times:

(a) bare: ``json.load`` of every file, one after another;
(b) grade: :func:`labkit.grading.grade.main` – read, classify, compare, write gradebook, LMS CSV,
    report, 300 feedback pages and the summary (with ``--no-plot``, without the matplotlib PNG).

Also printed: CPU seconds (this process + worker processes) next to each wall time, one
end-to-end ``python -m labkit grade`` (a fresh interpreter, imports and the plot included), and
nbgrader's autograde time per submission when nbgrader is installed.

The verdict uses the best of the runs for each (as ``timeit`` does: slower runs measure other
processes on the machine, and the course VM is shared): best grade time, and its ratio to the best
bare read; the medians are printed beside them with the load average.

Run from the repository root::

    .venv/bin/python benchmarks/grade.py [--students 300] [--jobs 2] [--repeat 3] [--widget-state]

Exit status: 0 when the best run meets both targets, 1 when it misses one, 2 when a run fails.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable without installing labkit

from labkit.checks import CHECK_MIME, CheckResult  # noqa: E402
from labkit.identity import STUDENT_MIME, StudentIdentity  # noqa: E402
from labkit.steps.runner import SubprocessRunner  # noqa: E402

CH1 = ROOT / "notebooks" / "01-virtualization.ipynb"
TARGET_S = 2.0
TARGET_RATIO = 4.0


def build_class(tmp: Path, students: int, *, widget_state: bool, seed: int = 1) -> tuple[Path, Path]:
    """Release chapter 1, execute it once (plan mode), and write ``students`` submissions."""
    from labkit import validate
    from labkit.grading import release

    manifest = tmp / "manifest.json"
    release.main(
        notebooks=[CH1], course="bigdata-2026", assignment="ch1", out_dir=tmp / "release", manifest=manifest
    )
    report = validate.main(notebooks=[tmp / "release" / CH1.name], mode="plan", out_dir=tmp / "exec", jobs=1)
    if report.notebooks[0].status != "ok":
        raise RuntimeError(f"executing the released notebook failed: {report.notebooks[0].error}")
    executed = json.loads((tmp / "exec" / CH1.name).read_text(encoding="utf-8"))
    if not widget_state:
        executed["metadata"].pop("widgets", None)
    rng = random.Random(seed)
    subs = tmp / "subs"
    subs.mkdir()
    for n in range(students):
        nb = copy.deepcopy(executed)
        sid = f"2026{n:06d}"
        session = f"{rng.getrandbits(128):032x}"
        at = f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        for cell in nb["cells"]:
            text = "".join(cell.get("source", ""))
            if "whoami(" in text:
                who = StudentIdentity(sid, f"学生{n}", session=session, at=at).to_payload()
                cell["outputs"] = [
                    {"output_type": "display_data", "metadata": {}, "data": {STUDENT_MIME: who}}
                ]
            for out in cell.get("outputs", []):
                payload = (out.get("data") or {}).get(CHECK_MIME)
                if isinstance(payload, dict):
                    status = "fail" if rng.random() < 0.25 else "pass"
                    result = CheckResult.from_payload({**payload, "status": status, "mode": "run"})
                    fresh = CheckResult(
                        result.check,
                        result.status,
                        result.message,
                        result.evidence,
                        "run",
                        at=at,
                        session=session,
                    ).to_payload()
                    out["data"][CHECK_MIME] = fresh
                    if n == 100 and status == "fail":  # a hand-edited result: the digest no longer matches
                        fresh["status"] = "pass"
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if n in (7, 77):
            text = text[: len(text) // 3]  # a cut-off upload
        (subs / f"{sid}_xs{n}_{CH1.name}").write_text(text, encoding="utf-8")
    return subs, manifest


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bare_read(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        with open(f, encoding="utf-8") as fh, contextlib.suppress(ValueError):
            json.load(fh)
    return time.perf_counter() - t0


def grade_once(subs: Path, manifest: Path, out: Path, jobs: int) -> tuple[float, object]:
    from labkit.grading import grade

    t0 = time.perf_counter()
    run = grade.main(submissions=[subs], manifest=manifest, out_dir=out, jobs=jobs, plot=False)
    return time.perf_counter() - t0, run


def nbgrader_note() -> str:
    if importlib.util.find_spec("nbgrader") is None:
        return (
            "nbgrader: not installed here, not timed (FINDINGS.md measured ~0.85 s per submission for "
            "autograde, which re-executes every notebook)"
        )
    return "nbgrader: installed, but an autograde course directory is not set up by this script; not timed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--widget-state", action="store_true", help="keep papermill's saved widget state")
    args = ap.parse_args(argv)
    os.environ.setdefault("LABKIT_LANG", "zh")
    with tempfile.TemporaryDirectory(prefix="labkit-grade-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        subs, manifest = build_class(tmp, args.students, widget_state=args.widget_state)
        files = sorted(subs.glob("*.ipynb"))
        size = sum(f.stat().st_size for f in files)
        print(
            f"labkit grade benchmark — {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
            f"{len(files)} executed chapter-1 notebooks, {size / 2**20:.1f} MiB "
            f"({size / len(files) / 1024:.0f} KiB each{', widget state kept' if args.widget_state else ''}); "
            f"class built in {time.perf_counter() - t0:.1f} s"
        )
        bare_read(files)  # warm the page cache for both
        bares, grades, ratios = [], [], []
        for r in range(args.repeat):
            c0 = _cpu()
            a = bare_read(files)
            c1 = _cpu()
            b, run = grade_once(subs, manifest, tmp / "grades", args.jobs)
            c2 = _cpu()
            bares.append(a)
            grades.append(b)
            ratios.append(b / a)
            timings = ", ".join(f"{k} {v:.2f} s" for k, v in run.timings.items())  # type: ignore[attr-defined]
            print(
                f"  run {r + 1}: (a) bare json.load {a:5.2f} s (cpu {c1 - c0:4.2f})   "
                f"(b) labkit grade --jobs {args.jobs} {b:5.2f} s (cpu {c2 - c1:4.2f}; {timings})   "
                f"ratio {b / a:4.2f}   load {os.getloadavg()[0]:.2f}"
            )
        gb = run.gradebook  # type: ignore[attr-defined]
        files_by_status = gb.file_counts()
        print(f"  files: {files_by_status}; students graded: {sum(s.total is not None for s in gb.students)}")
        try:
            t0 = time.perf_counter()
            SubprocessRunner().run(
                [
                    sys.executable,
                    "-m",
                    "labkit",
                    "grade",
                    str(subs),
                    "--manifest",
                    str(manifest),
                    "--out",
                    str(tmp / "cli"),
                    "--jobs",
                    str(args.jobs),
                ],
                timeout=600,
                check=False,
            )
            cli = time.perf_counter() - t0
            print(f"  end to end: python -m labkit grade (fresh interpreter, imports, PNG plot) {cli:.2f} s")
        except Exception as exc:  # the in-process numbers above still stand
            print(f"  end to end run failed: {exc}", file=sys.stderr)
        print("  " + nbgrader_note())
    grade_s, bare_s = min(grades), min(bares)
    ratio = grade_s / bare_s
    ok = grade_s <= TARGET_S and ratio <= TARGET_RATIO
    print(
        f"median: labkit grade {statistics.median(grades):.2f} s, "
        f"{statistics.median(ratios):.2f}× the bare read "
        f"{statistics.median(bares):.2f} s (load average {os.getloadavg()[0]:.2f})"
    )
    print(
        f"best:   labkit grade {grade_s:.2f} s for {len(files)} notebooks (target ≤ {TARGET_S:g} s), "
        f"{ratio:.2f}× the best bare json.load {bare_s:.2f} s (target ≤ {TARGET_RATIO:g}×): "
        f"{'meets' if ok else 'misses'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
