"""Boot the tiny aarch64 guest N times and report the median time to userspace (target ≤ 5 s).

Also boots it once per CPU variant, for the chapter 1 lesson on emulation cost: ``-cpu max`` with
the architected pointer-authentication algorithm (QARMA) is several times slower to emulate than
``pauth-impdef=on``; an older core without pointer authentication (``cortex-a57``) is faster still;
going through the UEFI firmware (``efi.img``) adds its own start-up time.

Run from the repository root::

    .venv/bin/python benchmarks/boot.py [--runs 3] [--compare-runs 1] [--no-compare]

Exit status: 0 when the median meets the target, 1 when it misses, 2 when a boot fails.
Timings depend on the host's load; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing labkit

from labkit.steps.firmware import BuildEfiImage, find_firmware
from labkit.steps.guest import BootGuest, PrepareTinyGuest, default_cache_dir
from labkit.steps.runner import SubprocessRunner

TARGET_S = 5.0


def boot_once(cache: Path, **kw) -> float:
    res = BootGuest(cache_dir=cache, **kw).execute("live")
    if not res.ok:
        tail = "\n".join(res.evidence.get("console_tail") or [])
        raise SystemExit(f"boot failed ({kw}): {res.message}\n{tail}")
    return float(res.evidence["time_to_marker_s"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="boots of the default configuration (default 3)")
    ap.add_argument("--compare-runs", type=int, default=1, help="boots per compared variant (default 1)")
    ap.add_argument("--no-compare", action="store_true", help="skip the CPU-variant comparison")
    ap.add_argument("--cache-dir", type=Path, default=None, help="guest assets (default: labkit's cache)")
    ap.add_argument("--target", type=float, default=TARGET_S, help=f"seconds (default {TARGET_S:g})")
    args = ap.parse_args(argv)
    cache = args.cache_dir or default_cache_dir()

    prep = PrepareTinyGuest(cache_dir=cache).execute("live")
    if not prep.ok:
        print(f"cannot prepare the guest: {prep.message}", file=sys.stderr)
        return 2
    version = SubprocessRunner().run(["qemu-system-aarch64", "--version"], timeout=30).stdout.splitlines()[0]
    load = os.getloadavg()[0]
    print(
        f"tiny aarch64 guest boot benchmark — {version}; {os.cpu_count()} host CPUs; load average {load:.2f}"
    )
    ev = prep.evidence
    print(f"kernel {ev.get('kernel_package')} {ev.get('kernel_version')}; assets in {cache}")

    times = [boot_once(cache) for _ in range(max(1, args.runs))]
    median = statistics.median(times)
    verdict = "PASS" if median <= args.target else "MISS"
    print(
        f"default -cpu max,pauth-impdef=on: {len(times)} boots "
        f"[{', '.join(f'{t:.2f}' for t in times)}] s -> median {median:.2f} s; "
        f"target <= {args.target:g} s: {verdict}"
    )

    if not args.no_compare:
        n = max(1, args.compare_runs)
        variants: list[tuple[str, dict]] = [
            ("-cpu max,pauth-impdef=on", {}),
            ("-cpu max (QARMA pointer auth)", {"pauth_impdef": False}),
            ("-cpu cortex-a57", {"cpu": "cortex-a57"}),
        ]
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
            if find_firmware() is not None:
                efi = Path(tmp) / "efi.img"
                if BuildEfiImage(dest=efi).execute("live").ok:
                    variants.append(("-cpu max,pauth-impdef=on + efi.img pflash", {"efi": efi}))
            print(f"time to userspace by variant (median of {n}):")
            for label, kw in variants:
                t = statistics.median(boot_once(cache, **kw) for _ in range(n))
                print(f"  {label:<44} {t:6.2f} s")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other work on the host slows TCG down)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
