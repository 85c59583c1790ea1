"""All chapter-1 performance targets in one run (issue: foundation + chapter 1).

Prints, each against a baseline measured in this same run:

1. ``import labkit`` time vs a bare interpreter start;
2. ``labkit validate --mode plan`` on the course vs a loop of the papermill CLI (target ≤ 0.3×);
3. the tiny aarch64 guest's boot time to the userspace marker (target ≤ 5 s);
4. ``qemu-img convert`` of a 1 GiB image through labkit vs bare (target ≤ 1.05×).

Run from the repository root: ``.venv/bin/python benchmarks/chapter1.py`` (``--quick`` for fewer
repetitions). Machines are noisy: read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t0


def import_time(repeat: int) -> None:
    bare = [_time([PY, "-c", "pass"]) for _ in range(repeat)]
    lab = [_time([PY, "-c", "import labkit"]) for _ in range(repeat)]
    b, lk = statistics.median(bare), statistics.median(lab)
    heavy_names = ("torch", "docker", "kubernetes", "papermill", "ipywidgets")
    code = f"import sys, labkit; print(sorted(m for m in {heavy_names!r} if m in sys.modules))"
    heavy = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    print(
        f"import labkit: interpreter+import {lk * 1000:.0f} ms vs bare interpreter {b * 1000:.0f} ms "
        f"→ import itself ≈ {(lk - b) * 1000:.0f} ms; heavy modules loaded: {heavy}"
    )


def run_script(name: str, args: list[str]) -> int:
    print(f"\n=== benchmarks/{name} {' '.join(args)}", flush=True)
    return subprocess.run([PY, str(HERE / name), *args], check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    args = parser.parse_args()
    os.chdir(HERE.parent)
    n = 3 if args.quick else 5
    print(f"labkit chapter-1 benchmarks — {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    import_time(n)
    codes = {
        "validate": run_script("validate.py", ["--repeat", "1" if args.quick else "2"]),
        "boot": run_script("boot.py", ["--runs", "3" if args.quick else "5"]),
        "convert": run_script("convert.py", ["--repeat", "3" if args.quick else "5"]),
    }
    print(
        "\nsummary (exit status of each script; 0 = target met):",
        ", ".join(f"{k}={v}" for k, v in codes.items()),
    )
    return 0 if all(v == 0 for v in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
