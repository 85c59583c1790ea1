"""Time labkit's offline manifest validation against the ``kubernetes-validate`` CLI (target ≤ 0.15×).

The same N manifests (default 200: the official examples and the seed's nginx Deployment of
``tests/data/k8s/``, copied under distinct names) are validated, strict, in the same run by:

(a) ``python -m kubernetes_validate --strict --quiet FILES...``: one process (it reloads the schema
    definitions for every document and stops at each document's first error);
(b) labkit in this process, after the one-time schema load (printed separately, with the import of
    jsonschema it needs): :func:`labkit.logic.k8s_rules.validate_text` on every file, every error
    plus the semantic rules;
(c) ``python -m labkit k8s validate FILES...``: one process, end to end (interpreter start, imports,
    schema load, all files), for the record.

The ratio judged against the target is (b) / (a); (c) / (a) is printed too. Run from the
repository root::

    .venv/bin/python benchmarks/k8s_validate.py [--files 200] [--repeat 3]

Exit status: 0 when the ratio meets the target, 1 when it misses, 2 when a run fails. Timings
depend on the host's load; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable without installing labkit

from labkit.errors import CommandFailed  # noqa: E402
from labkit.steps.runner import SubprocessRunner  # noqa: E402

TARGET = 0.15
DATA = ROOT / "tests" / "data" / "k8s"
RUNNER = SubprocessRunner()
THEIRS = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]


def make_files(folder: Path, count: int) -> list[Path]:
    examples = sorted(DATA.glob("*.yaml"))
    out = []
    for i in range(count):
        src = examples[i % len(examples)]
        text = src.read_text(encoding="utf-8")
        dest = folder / f"{i:04d}-{src.name}"
        dest.write_text(text, encoding="utf-8")
        out.append(dest)
    return out


def _runs(times: list[float]) -> str:
    return ", ".join(f"{x:.3f}" for x in times)


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    RUNNER.run(argv, timeout=1800)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from labkit.k8s_schemas import import_jsonschema, load_schemas
    from labkit.logic.k8s_rules import validate_text

    import_jsonschema(fast=True)
    schemas = load_schemas()
    load_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="labkit-k8s-bench-") as tmp:
        files = make_files(Path(tmp), args.files)
        names = [str(f) for f in files]
        theirs, ours, ours_cli = [], [], []
        try:
            for _ in range(args.repeat):
                theirs.append(_timed([*THEIRS, *names]))
                t = time.perf_counter()
                reports = [validate_text(f.read_text(encoding="utf-8"), schemas) for f in files]
                ours.append(time.perf_counter() - t)
                ours_cli.append(_timed([sys.executable, "-m", "labkit", "k8s", "validate", *names]))
        except CommandFailed as exc:
            print(f"a run failed: {exc}", file=sys.stderr)
            return 2
        bad = [r for r in reports if not r.ok]
        if bad:
            print(f"{len(bad)} example manifests did not validate", file=sys.stderr)
            return 2

    a, b, c = statistics.median(theirs), statistics.median(ours), statistics.median(ours_cli)
    load = os.getloadavg()[0]
    print(f"load average: {load:.2f}; {args.files} manifests, Kubernetes {schemas.version}, strict")
    print(f"one-time schema load (jsonschema import as the CLI does it, definitions): {load_s:.3f} s")
    print(f"(a) kubernetes-validate CLI:          {a:.3f} s  (runs: {_runs(theirs)})")
    print(f"(b) labkit, in process, after load:   {b:.3f} s  (runs: {_runs(ours)})")
    print(f"(c) labkit k8s validate, end to end:  {c:.3f} s  (runs: {_runs(ours_cli)})")
    print(f"ratio (b)/(a): {b / a:.3f}  (target <= {TARGET})")
    print(f"ratio (c)/(a): {c / a:.3f}  (whole process: interpreter, imports, schema load)")
    return 0 if b / a <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
