"""Compression before a slow link (course 3.4 "通过压缩数据，减少传输的数据量"), pure part.

The course says compressing saves bandwidth on a virtual LAN. Whether it saves *time* depends on
the link: sending ``S`` bytes raw takes ``8·S / speed``; compressed it takes
``compress + 8·C / speed + decompress``. This module builds the course-like data sets (CSV and
JSON logs from one seeded record generator, random bytes; the qcow2 image is made by the step with
``qemu-img``/``qemu-io``), the ``zstd``/``lz4`` command lines, the :class:`Measurement` a run
records (every figure measured by :mod:`labkit.steps.compression`, none typed in), the transfer
time model and its plot (link throughputs measured elsewhere, e.g. over ZeroTier, are marked on it).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.disk_content import SEED
from labkit.plotfont import plot_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CLI_CODECS",
    "DATASETS",
    "LEVELS",
    "Measurement",
    "break_even_bps",
    "build_compress",
    "build_decompress",
    "csv_logs",
    "format_bps",
    "format_table",
    "json_logs",
    "link_speeds",
    "parse_link_speed",
    "plot_transfer",
    "random_bytes",
    "transfer_seconds",
]

#: The data sets, in table order: CSV logs, JSON-lines logs, a qcow2 image holding logs, random bytes.
DATASETS = ("csv", "json", "qcow2", "random")
#: Levels measured per codec: fast, default, strong (lz4 9 is its high-compression mode).
LEVELS: dict[str, tuple[int, ...]] = {"gzip": (1, 6, 9), "zstd": (1, 3, 9), "lz4": (1, 9)}
#: Codecs run through their Debian command (packages ``zstd``, ``lz4``); gzip runs in Python (zlib).
CLI_CODECS = ("zstd", "lz4")
_LEVEL_RANGE = {"gzip": (1, 9), "zstd": (1, 19), "lz4": (1, 12)}
_HOSTS = ("web-01", "web-02", "mail-01", "app-01", "app-02")
_EVENTS = ("GET /course/bigdata/ch3", "GET /api/v1/grades", "POST /api/v1/submissions", "login", "logout")


def _records(size: int, seed: int) -> Iterable[dict[str, Any]]:
    """Log records of the course's servers, the same sequence for the same seed (endless)."""
    rng = random.Random(seed)
    second = 0
    while True:
        second += rng.randint(0, 3)
        yield {
            "time": f"2026-03-{2 + second // 86400:02d}T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:"
            f"{second % 60:02d}Z",
            "host": rng.choice(_HOSTS),
            "student": f"s{rng.randint(2023000, 2023999)}",
            "event": rng.choice(_EVENTS),
            "status": rng.choice((200, 200, 200, 304, 302, 404, 500)),
            "bytes": rng.randint(200, 90000),
            "ms": round(rng.lognormvariate(3, 1), 1),
        }


def _fill(size: int, seed: int, line: Any, header: str = "") -> bytes:
    out, total = [header], len(header)
    for rec in _records(size, seed):
        if total >= size:
            break
        text = line(rec)
        out.append(text)
        total += len(text)
    return "".join(out).encode("ascii")[:size]


def csv_logs(size: int, *, seed: int = SEED) -> bytes:
    """``size`` bytes of CSV access logs (header line first); the same bytes for the same seed."""
    cols = ("time", "host", "student", "event", "status", "bytes", "ms")
    return _fill(size, seed, lambda r: ",".join(str(r[c]) for c in cols) + "\n", ",".join(cols) + "\n")


def json_logs(size: int, *, seed: int = SEED) -> bytes:
    """``size`` bytes of JSON-lines logs (one object a line), the same records as :func:`csv_logs`."""
    return _fill(size, seed, lambda r: json.dumps(r, separators=(",", ":")) + "\n")


def random_bytes(size: int, *, seed: int = SEED) -> bytes:
    """``size`` pseudo-random bytes: incompressible, like already compressed or encrypted data."""
    return random.Random(seed).randbytes(size)


def _level(codec: str, level: int) -> int:
    lo, hi = _LEVEL_RANGE.get(codec, (1, 0))
    if not isinstance(level, int) or isinstance(level, bool) or not lo <= level <= hi:
        raise InvalidField(
            "level",
            level,
            tr("不是 {c} 的压缩级别", "is not a {c} compression level", c=codec),
            tr("{c} 的级别是 {lo}–{hi}", "{c} levels are {lo}–{hi}", c=codec, lo=lo, hi=hi),
        )
    return level


def _codec(codec: str) -> str:
    if codec not in CLI_CODECS:
        raise InvalidField(
            "codec", codec, tr("不是命令行压缩工具", "is not a command-line codec"), ", ".join(CLI_CODECS)
        )
    return codec


def build_compress(
    codec: str, level: int, src: str | os.PathLike[str], dst: str | os.PathLike[str]
) -> list[str]:
    """``zstd -q -f -LEVEL SRC -o DST`` or ``lz4 -q -f -LEVEL SRC DST`` (``-f``: replace DST)."""
    lvl = f"-{_level(_codec(codec), level)}"
    if codec == "zstd":
        return ["zstd", "-q", "-f", lvl, os.fspath(src), "-o", os.fspath(dst)]
    return ["lz4", "-q", "-f", lvl, os.fspath(src), os.fspath(dst)]


def build_decompress(codec: str, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> list[str]:
    """``zstd -q -f -d SRC -o DST`` or ``lz4 -q -f -d SRC DST``."""
    if _codec(codec) == "zstd":
        return ["zstd", "-q", "-f", "-d", os.fspath(src), "-o", os.fspath(dst)]
    return ["lz4", "-q", "-f", "-d", os.fspath(src), os.fspath(dst)]


@dataclass(frozen=True)
class Measurement:
    """One measured (data set, codec, level): sizes in bytes, times in seconds."""

    dataset: str
    codec: str
    level: int
    size: int
    compressed: int
    compress_s: float
    decompress_s: float

    @property
    def ratio(self) -> float:
        return self.size / self.compressed if self.compressed else math.inf

    @property
    def compress_mbs(self) -> float:
        return self.size / 1e6 / max(self.compress_s, 1e-9)

    @property
    def decompress_mbs(self) -> float:
        return self.size / 1e6 / max(self.decompress_s, 1e-9)

    @property
    def label(self) -> str:
        return f"{self.codec} -{self.level}"

    def to_row(self) -> dict[str, Any]:
        """The JSON row kept in the check evidence (raw figures plus the derived ones, rounded)."""
        return {
            **asdict(self),
            "ratio": round(self.ratio, 3),
            "compress_MBps": round(self.compress_mbs, 1),
            "decompress_MBps": round(self.decompress_mbs, 1),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Measurement:
        return cls(
            str(row["dataset"]),
            str(row["codec"]),
            int(row["level"]),
            int(row["size"]),
            int(row["compressed"]),
            float(row["compress_s"]),
            float(row["decompress_s"]),
        )


def _as_measurements(rows: Iterable[Measurement | Mapping[str, Any]]) -> list[Measurement]:
    return [r if isinstance(r, Measurement) else Measurement.from_row(r) for r in rows]


def transfer_seconds(m: Measurement | None, size: int, bps: float) -> float:
    """Seconds to move ``size`` bytes over a ``bps`` bit/s link: raw (``m`` is ``None``), or
    compressed with ``m``'s ratio and speeds (compress + send the smaller data + decompress)."""
    if m is None:
        return 8 * size / bps
    scale = size / m.size
    return scale * (m.compress_s + m.decompress_s) + 8 * size / m.ratio / bps


def break_even_bps(m: Measurement) -> float | None:
    """The link speed below which compressing with ``m`` is faster than sending raw (``None``: never,
    the output is not smaller)."""
    saved = 8 * (m.size - m.compressed)
    if saved <= 0:
        return None
    return saved / max(m.compress_s + m.decompress_s, 1e-9)


_SPEED = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)\s*(?:bit/s|bps|bit|b/s)?\s*")
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_link_speed(text: str | float | int) -> float:
    """A link speed in bit/s: a number, or ``100M``, ``1 Gbit/s``, ``2.5Gbps`` (SI prefixes)."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0 and math.isfinite(text):
        return float(text)
    match = _SPEED.fullmatch(str(text))
    value = float(match.group(1)) * _PREFIX[match.group(2).lower()] if match else 0.0
    if value <= 0:
        raise InvalidField(
            "link",
            text,
            tr("不是链路速率", "is not a link speed"),
            tr("例如 100M、1 Gbit/s（比特每秒）", "e.g. 100M, 1 Gbit/s (bits per second)"),
        )
    return value


def format_bps(bps: float) -> str:
    """``bps`` as ``12.5 Mbit/s`` (SI prefixes, as link speeds are quoted)."""
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {prefix}bit/s"
    return f"{bps:.3g} bit/s"


def link_speeds(low: float = 1e6, high: float = 1e10, points: int = 81) -> list[float]:
    """Log-spaced link speeds from ``low`` to ``high`` bit/s (default 1 Mbit/s … 10 Gbit/s)."""
    step = (math.log10(high) - math.log10(low)) / (points - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(points)]


def format_table(rows: Iterable[Measurement | Mapping[str, Any]]) -> str:
    """The measurements as a fixed-width text table (the check's evidence, printable)."""
    head = tr(
        "数据集  压缩器    原始大小   压缩后     压缩比  压缩MB/s  解压MB/s  低于此速率压缩更快",
        "dataset codec     size       compressed ratio   comp MB/s decomp MB/s pays off below",
    )
    lines = [head]
    for m in _as_measurements(rows):
        even = break_even_bps(m)
        lines.append(
            f"{m.dataset:<7} {m.label:<9} {m.size:>10,} {m.compressed:>10,} {m.ratio:>6.2f} "
            f"{m.compress_mbs:>9.1f} {m.decompress_mbs:>9.1f}   "
            + (format_bps(even) if even else tr("从不", "never"))
        )
    return "\n".join(lines)


def plot_transfer(
    rows: Sequence[Measurement | Mapping[str, Any]],
    *,
    dataset: str = "csv",
    volume: int = 2**30,
    links: Mapping[str, float | str] | None = None,
    speeds: Sequence[float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Time to move ``volume`` bytes of ``dataset``-like data vs link speed: raw and each codec/level.

    ``links`` marks measured throughputs (name → bit/s or ``"85M"``), e.g. the ZeroTier and veth
    figures of :class:`labkit.steps.throughput.MeasureThroughput` (``labkit.logic.throughput.links``
    of its rows), as vertical lines; the speed axis is widened to include them. Labels are Chinese
    with a CJK font (:func:`labkit.plotfont.plot_text`). matplotlib is imported here only.
    """
    import matplotlib.pyplot as plt

    ms = [m for m in _as_measurements(rows) if m.dataset == dataset]
    if not ms:
        raise InvalidField(
            "dataset", dataset, tr("没有这个数据集的测量", "has no measurements"), ", ".join(DATASETS)
        )
    text = plot_text()
    marked = {name: parse_link_speed(speed) for name, speed in (links or {}).items()}
    # the curves span the measured links too (a veth runs at tens of Gbit/s)
    low, high = min([1e6, *(b / 2 for b in marked.values())]), max([1e10, *(b * 2 for b in marked.values())])
    xs = list(speeds or link_speeds(low, high))
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 5))
    else:
        fig = ax.figure
    ax.plot(
        [x / 1e6 for x in xs],
        [transfer_seconds(None, volume, x) for x in xs],
        "k-",
        lw=2.5,
        label=text.label("不压缩", "raw"),
    )
    for m in ms:
        ax.plot(
            [x / 1e6 for x in xs],
            [transfer_seconds(m, volume, x) for x in xs],
            lw=1.2,
            label=f"{m.label} (×{m.ratio:.2f})",
        )
    for name, bps in marked.items():
        ax.axvline(bps / 1e6, color="grey", ls="--", lw=1)
        ax.annotate(
            f"{name}\n{format_bps(bps)}",
            (bps / 1e6, 0.98),
            xycoords=("data", "axes fraction"),
            va="top",
            ha="left",
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(text.label("链路速率（Mbit/s）", "link speed (Mbit/s)"))
    ax.set_ylabel(text.label("传输时间（秒）", "transfer time (s)"))
    ax.set_title(
        text.label(
            "传输 {v:.0f} MiB {d} 数据：何时压缩更快",
            "Moving {v:.0f} MiB of {d} data: when compressing pays off",
            v=volume / 2**20,
            d=dataset,
        )
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return text.apply(fig)
