"""Time ``labkit validate --mode plan`` against a loop over the papermill CLI (target ≤ 0.3×).

(a) one ``python -m labkit validate --mode plan NOTEBOOKS...`` process;
(b) for each notebook, ``papermill IN OUT -p mode plan -p labkit_workdir DIR --cwd <its folder>``,
    one after another (what a shell loop does, spawned here without a shell; the same parameters
    labkit passes, so both do the same work).

Both start fresh interpreters, so both pay their own imports. Also printed, to explain the ratio:
what a fresh process pays to import papermill (with and without ``rfc3987_syntax``), and the
start-up of a bare kernel. With few notebooks the fixed costs (one interpreter, one papermill
import, one kernel start that cannot overlap anything) dominate (a); ``--copies N`` replicates
every notebook N times (under distinct names) to show how (a) scales against (b).

Run from the repository root::

    .venv/bin/python benchmarks/validate.py [--copies 6] [--jobs N] [--repeat 1] [NOTEBOOK ...]

Default notebooks: ``notebooks/*.ipynb``; if there are none, the passing test notebooks in
tests/data/validate/. Exit status: 0 when the (last) ratio meets the target, 1 when it misses,
2 when a run fails. Timings depend on the host's load; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable without installing labkit

from labkit.errors import CommandFailed  # noqa: E402
from labkit.steps.runner import SubprocessRunner  # noqa: E402

TARGET = 0.3
TEST_NOTEBOOKS = ("pass", "plan", "update", "rerun")
RUNNER = SubprocessRunner()


def _timed(argv: list[str], *, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    RUNNER.run(argv, timeout=1800, cwd=cwd)
    return time.perf_counter() - t0


def default_notebooks() -> list[Path]:
    found = sorted((ROOT / "notebooks").glob("*.ipynb"))
    return found or [ROOT / "tests" / "data" / "validate" / f"{n}.ipynb" for n in TEST_NOTEBOOKS]


def replicate(notebooks: list[Path], copies: int, into: Path) -> list[Path]:
    """Copies next to the originals' content but under distinct names (outputs are named after them).

    The copies live in one temporary folder, so a notebook that reads files relative to its own
    folder should be benchmarked with ``--copies 1``.
    """
    if copies <= 1:
        return notebooks
    into.mkdir(parents=True)
    out = []
    for nb in notebooks:
        for i in range(copies):
            dest = into / f"{nb.stem}-{i}.ipynb"
            shutil.copyfile(nb, dest)
            out.append(dest)
    return out


def run_labkit(notebooks: list[Path], out: Path, jobs: int | None) -> float:
    argv = [sys.executable, "-m", "labkit", "validate", "--mode", "plan", "--out", str(out)]
    if jobs:
        argv += ["--jobs", str(jobs)]
    return _timed(argv + [str(n) for n in notebooks])


def run_papermill_loop(notebooks: list[Path], out: Path) -> float:
    papermill = str(Path(sys.executable).with_name("papermill"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for nb in notebooks:
        work = out / "work" / nb.stem  # the same parameters labkit passes, so both do the same work
        work.mkdir(parents=True)
        argv = [
            papermill,
            str(nb),
            str(out / nb.name),
            "-p",
            "mode",
            "plan",
            "-p",
            "labkit_workdir",
            str(work),
        ]
        RUNNER.run([*argv, "--cwd", str(nb.parent)], timeout=1800)
    return time.perf_counter() - t0


def fixed_costs() -> dict[str, float]:
    """What every fresh process pays before the first cell runs (best of 3 each)."""
    py = sys.executable
    hide = "import sys; sys.modules['rfc3987_syntax'] = None; import papermill"
    kernel = (
        "import jupyter_client; km, kc = jupyter_client.manager.start_new_kernel(kernel_name='python3',"
        " extra_arguments=['--HistoryManager.hist_file=:memory:'])\n"
        "kc.stop_channels(); km.shutdown_kernel()"
    )
    probes = {
        "python -c pass": [py, "-c", "pass"],
        "import labkit.cli": [py, "-c", "import labkit.cli"],
        "import papermill": [py, "-c", "import papermill"],
        "import papermill without rfc3987_syntax": [py, "-c", hide],
        "start + stop one kernel (incl. jupyter_client import)": [py, "-c", kernel],
    }
    return {name: min(_timed(argv) for _ in range(3)) for name, argv in probes.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb (or test notebooks)")
    ap.add_argument("--copies", type=int, default=1, help="replicate each notebook N times (default 1)")
    ap.add_argument("--jobs", type=int, default=None, help="labkit validate --jobs (default: its own)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate (a) and (b) this many times")
    ap.add_argument("--no-fixed", action="store_true", help="skip the fixed-cost probes")
    args = ap.parse_args(argv)

    base = [p.resolve() for p in (args.notebooks or default_notebooks())]
    missing = [p for p in base if not p.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    print(
        f"labkit validate benchmark — {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{len(base)} notebook(s) × {args.copies} cop{'y' if args.copies == 1 else 'ies'}: "
        + ", ".join(p.name for p in base)
    )
    if not args.no_fixed:
        for name, secs in fixed_costs().items():
            print(f"  fixed cost  {name:<55} {secs:6.2f} s")

    ratios = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        notebooks = replicate(base, args.copies, Path(tmp) / "copies")
        for r in range(args.repeat):
            try:
                a = run_labkit(notebooks, Path(tmp) / f"a{r}", args.jobs)
                b = run_papermill_loop(notebooks, Path(tmp) / f"b{r}")
            except CommandFailed as exc:
                print(f"a run failed: {exc}", file=sys.stderr)
                return 2
            ratios.append(a / b)
            print(
                f"  n={len(notebooks):<3} (a) labkit validate --mode plan {a:6.2f} s   "
                f"(b) papermill CLI loop {b:6.2f} s   ratio {a / b:.2f} "
                f"({'meets' if a / b <= TARGET else 'misses'} ≤ {TARGET})   load {os.getloadavg()[0]:.2f}"
            )
    ratio = statistics.median(ratios)
    print(f"median ratio {ratio:.2f} (target ≤ {TARGET})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
