"""Throughput over ZeroTier vs the veth underneath it, and compression, measured in one run (course 3.4).

Brings up ``../shared/tools/zerotier/lab.sh``'s two-node lab in a temporary folder (root needed:
network namespaces and TUN devices), then ``--repeat`` times runs labkit's own
:class:`~labkit.steps.throughput.MeasureThroughput` from node 2 to node 1: iperf3 over the ZeroTier
address and over the veth address of the same peer. It prints each run, the medians and the ratio
ZeroTier ÷ veth (the overlay's cost). Then :class:`~labkit.steps.compression.MeasureCompression`
measures gzip/zstd/lz4 on the course-like data sets, and for each codec on the CSV logs it prints
whether compressing 1 GiB pays off on the ZeroTier link just measured. Every figure comes from this
run; nothing is typed in. Run from the repository root, as root::

    .venv/bin/python benchmarks/zerotier_throughput.py [--repeat 3] [--seconds 3] [--plot out.png]

Exit status: 0 measured, 2 a run failed, 3 skipped (not root, no tools folder, no iperf3; the
reason is printed). Throughput depends on the host's load; the load average is printed with it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runnable without installing labkit

from labkit.errors import LabkitError  # noqa: E402
from labkit.i18n import use_lang  # noqa: E402
from labkit.logic import compression as cz  # noqa: E402
from labkit.logic import throughput as tp  # noqa: E402
from labkit.steps.compression import MeasureCompression  # noqa: E402
from labkit.steps.runner import SubprocessRunner  # noqa: E402
from labkit.steps.throughput import MeasureThroughput  # noqa: E402

RUNNER = SubprocessRunner()
VOLUME = 2**30


def tools_dir() -> Path | None:
    env = os.environ.get("LABKIT_ZT_TOOLS")
    candidates = [Path(env)] if env else []
    candidates += [ROOT.parent / "shared/tools/zerotier", ROOT.parent.parent / "shared/tools/zerotier"]
    return next((c for c in candidates if (c / "lab.sh").is_file() and (c / "build.sh").is_file()), None)


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "the ZeroTier lab needs root (network namespaces, TUN devices)"
    if tools_dir() is None:
        return "no ../shared/tools/zerotier (build.sh, lab.sh) beside this checkout (or set LABKIT_ZT_TOOLS)"
    for tool in ("ip", "iperf3"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt install {'iproute2' if tool == 'ip' else tool})"
    return None


def lab_env(lab: Path, folder: Path) -> dict[str, str]:
    text = RUNNER.run(["bash", str(lab), "env", str(folder)], timeout=30).stdout
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            env[key] = shlex.split(value)[0] if value else ""
    return env


def measure(env: dict[str, str], repeat: int, seconds: int) -> list[dict[str, float]]:
    ns1, ns2 = ("ip", "netns", "exec", env["NS1"]), ("ip", "netns", "exec", env["NS2"])
    targets = {"ZeroTier": env["ADDR1"], "veth": env["UNDERLAY1"]}
    runs = []
    for i in range(repeat):
        step = MeasureThroughput(targets, seconds=seconds, client_prefix=ns2, server_prefix=ns1)
        result = step.execute("live")
        if result.status != "pass":
            raise LabkitError(f"throughput run {i + 1}: {result.status}: {result.message}")
        bps = tp.links(result.evidence["rows"])
        runs.append(bps)
        print(
            f"run {i + 1}: ZeroTier {cz.format_bps(bps['ZeroTier'])}, veth {cz.format_bps(bps['veth'])}, "
            f"ratio {result.evidence['ratio']:.4f}",
            flush=True,
        )
    return runs


def report_compression(
    workdir: Path, zerotier_bps: float, plot: Path | None, links: dict[str, float]
) -> None:
    result = MeasureCompression(str(workdir), size="4M").execute("live")
    if result.status != "pass":
        raise LabkitError(f"compression: {result.status}: {result.message}")
    rows = result.evidence["rows"]
    print("\n" + result.evidence["table"])
    print(f"\nmoving 1 GiB of CSV logs over the measured ZeroTier link ({cz.format_bps(zerotier_bps)}):")
    raw = cz.transfer_seconds(None, VOLUME, zerotier_bps)
    print(f"  raw            {raw:8.2f} s")
    for m in (cz.Measurement.from_row(r) for r in rows if r["dataset"] == "csv"):
        packed = cz.transfer_seconds(m, VOLUME, zerotier_bps)
        verdict = "pays off" if packed < raw else "slower than raw"
        print(f"  {m.label:<12} {packed:8.2f} s  ({verdict}; ratio {m.ratio:.2f})")
    if plot is not None:
        fig = cz.plot_transfer(rows, links=links)
        fig.savefig(plot)
        print(f"\nplot: {plot}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=None, help="write the transfer-time figure here")
    args = parser.parse_args()
    reason = why_not()
    if reason:
        print(f"skipped: {reason}")
        return 3
    tools = tools_dir()
    assert tools is not None
    with use_lang("en"), tempfile.TemporaryDirectory(prefix="zt-bench-") as tmp:
        folder = Path(tmp) / "lab"
        lab = tools / "lab.sh"
        try:
            RUNNER.run(["bash", str(tools / "build.sh")], timeout=1800, env={"ZT_NO_APT": "1"})
            RUNNER.run(["bash", str(lab), "up", str(folder)], timeout=180)
            env = lab_env(lab, folder)
            print(f"lab up: ZeroTier {env['ZT_VERSION']}, node 1 {env['ADDR1']} (veth {env['UNDERLAY1']})")
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.seconds} s per link")
            runs = measure(env, args.repeat, args.seconds)
        except LabkitError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 2
        finally:
            RUNNER.run(["bash", str(lab), "down", str(folder)], timeout=60, check=False)
        zt = statistics.median(r["ZeroTier"] for r in runs)
        veth = statistics.median(r["veth"] for r in runs)
        print(f"\nmedian over {len(runs)} runs: ZeroTier {cz.format_bps(zt)}, veth {cz.format_bps(veth)}")
        print(f"ratio ZeroTier/veth: {zt / veth:.4f}")
        try:
            report_compression(Path(tmp), zt, args.plot, {"ZeroTier": zt, "veth": veth})
        except LabkitError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
