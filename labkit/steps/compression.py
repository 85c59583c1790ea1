"""Measure compression on course-like data (course 3.4, ``ch3.compression``).

:class:`MeasureCompression` writes the data sets into ``workdir/compression/`` (CSV and JSON logs,
random bytes from :mod:`labkit.logic.compression`; a qcow2 image made with ``qemu-img create`` and
filled with the course logs by ``qemu-io``, as chapter 1's sample-data step does), then measures for
each data set and level: gzip in this process (``zlib``, timed around the call), ``zstd`` and ``lz4``
through their commands (timed by the runner, so a few milliseconds of process start are included).
Every decompressed output is compared with its input. A codec whose command is missing is left
out and named in the plan and the evidence (install the Debian packages ``zstd`` / ``lz4``).
"""

from __future__ import annotations

import filecmp
import gzip
import shutil
import time
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic import compression as cz
from labkit.logic import disk_content as dc
from labkit.logic import qemu_img as qi
from labkit.logic.sizes import parse_size
from labkit.steps.base import Plan, RunContext, Step

__all__ = ["MeasureCompression"]

_WRITE = {"csv": cz.csv_logs, "json": cz.json_logs, "random": cz.random_bytes}
_NAMES = {"csv": "logs.csv", "json": "logs.jsonl", "qcow2": "logs.qcow2", "random": "random.bin"}
_QCOW2_SOURCE = "qcow2-content.log"


class MeasureCompression(Step):
    """Ratio and (de)compression speed of gzip, zstd and lz4 on logs, a qcow2 image, random bytes."""

    check_id = "ch3.compression"
    timeout = 300.0

    def __init__(
        self, workdir: str = ".", size: str | int = "4M", datasets: tuple[str, ...] = cz.DATASETS
    ) -> None:
        self.workdir = workdir
        self.size = size
        self.datasets = tuple(datasets)

    @property
    def folder(self) -> Path:
        return Path(self.workdir) / "compression"

    def _length(self) -> int:
        return dc.fill_length(self.size)

    def _codecs(self) -> tuple[list[str], list[str]]:
        """(command codecs present, missing)."""
        present = [c for c in cz.CLI_CODECS if shutil.which(c)]
        return present, [c for c in cz.CLI_CODECS if c not in present]

    def _datasets(self) -> list[str]:
        unknown = [d for d in self.datasets if d not in cz.DATASETS]
        if unknown:
            from labkit.errors import InvalidField

            raise InvalidField(
                "datasets", unknown, tr("不是数据集", "are not data sets"), ", ".join(cz.DATASETS)
            )
        if "qcow2" in self.datasets and not (shutil.which(qi.QEMU_IMG) and shutil.which(dc.QEMU_IO)):
            return [d for d in self.datasets if d != "qcow2"]
        return list(self.datasets)

    def _qcow2_argv(self) -> list[list[str]]:
        image = self.folder / _NAMES["qcow2"]
        length = self._length()
        return [
            qi.build_create(image, 2 * length, "qcow2"),
            dc.build_io_write(image, "qcow2", _QCOW2_SOURCE, length),
        ]

    def _codec_argv(self, dataset: str, codec: str, level: int) -> tuple[list[str], list[str]]:
        src = self.folder / _NAMES[dataset]
        packed = src.with_name(f"{src.name}.{codec}{level}")
        back = src.with_name(f"{src.name}.{codec}{level}.out")
        return cz.build_compress(codec, level, src, packed), cz.build_decompress(codec, packed, back)

    def _commands(self) -> list[list[str]]:
        present, _ = self._codecs()
        datasets = self._datasets()
        cmds = self._qcow2_argv() if "qcow2" in datasets else []
        for d in datasets:
            for codec in present:
                for level in cz.LEVELS[codec]:
                    cmds.extend(self._codec_argv(d, codec, level))
        return cmds

    def plan(self) -> Plan:
        length = self._length()
        _, missing = self._codecs()
        datasets = self._datasets()
        notes = [
            tr(
                "数据集（各 {n} 字节，固定随机种子，每次相同）：{d}",
                "data sets ({n} bytes each, fixed seed, the same every run): {d}",
                n=length,
                d=", ".join(str(self.folder / _NAMES[d]) for d in datasets),
            ),
            tr(
                "gzip 在本进程内用 zlib 测量（级别 {g}）；每个解压结果都与原数据逐字节比较",
                "gzip is measured in this process with zlib (levels {g}); every decompressed output is "
                "compared byte by byte with its input",
                g=", ".join(map(str, cz.LEVELS["gzip"])),
            ),
            tr(
                "命令的计时包含几毫秒的进程启动时间",
                "command timings include a few milliseconds of process start",
            ),
        ]
        notes += [
            tr(
                "没有 {c} 命令：不测量它（安装 Debian 包 {c}）",
                "no {c} command: not measured (install the Debian package {c})",
                c=c,
            )
            for c in missing
        ]
        if "qcow2" in self.datasets and "qcow2" not in datasets:
            notes.append(
                tr("没有 qemu-img/qemu-io：跳过 qcow2 数据集", "no qemu-img/qemu-io: qcow2 data set skipped")
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 {f} 中测量 gzip、zstd、lz4 的压缩比与压缩/解压速度",
                "measure gzip, zstd and lz4 ratio and compress/decompress speed in {f}",
                f=self.folder,
            ),
            commands=self._commands(),
            notes=notes,
        )

    def _write_data(self, ctx: RunContext, datasets: list[str]) -> None:
        length = self._length()
        self.folder.mkdir(parents=True, exist_ok=True)
        for d in datasets:
            if d in _WRITE:
                (self.folder / _NAMES[d]).write_bytes(_WRITE[d](length))
        if "qcow2" in datasets:
            (self.folder / _QCOW2_SOURCE).write_bytes(dc.course_logs(length))
            (self.folder / _NAMES["qcow2"]).unlink(missing_ok=True)
            create, write = self._qcow2_argv()
            ctx.run(create, timeout=60)
            ctx.run(write, timeout=120, cwd=self.folder)

    def _gzip(self, dataset: str, data: bytes, level: int) -> tuple[cz.Measurement, bool]:
        t0 = time.perf_counter()
        packed = gzip.compress(data, compresslevel=level, mtime=0)
        t1 = time.perf_counter()
        back = gzip.decompress(packed)
        t2 = time.perf_counter()
        return cz.Measurement(dataset, "gzip", level, len(data), len(packed), t1 - t0, t2 - t1), back == data

    def _cli(self, ctx: RunContext, dataset: str, codec: str, level: int) -> tuple[cz.Measurement, bool]:
        pack, unpack = self._codec_argv(dataset, codec, level)
        src, packed, back = Path(pack[-3] if codec == "zstd" else pack[-2]), Path(pack[-1]), Path(unpack[-1])
        done = ctx.run(pack, timeout=120)
        undone = ctx.run(unpack, timeout=120)
        same = filecmp.cmp(src, back, shallow=False)
        m = cz.Measurement(
            dataset, codec, level, src.stat().st_size, packed.stat().st_size, done.duration, undone.duration
        )
        packed.unlink(missing_ok=True)
        back.unlink(missing_ok=True)
        return m, same

    def run(self, ctx: RunContext) -> dict[str, Any]:
        present, missing = self._codecs()
        datasets = self._datasets()
        self._write_data(ctx, datasets)
        rows, mismatched = [], []
        total = len(datasets) * (len(cz.LEVELS["gzip"]) + sum(len(cz.LEVELS[c]) for c in present))
        for d in datasets:
            data = (self.folder / _NAMES[d]).read_bytes()
            runs = [("gzip", lv) for lv in cz.LEVELS["gzip"]] + [
                (c, lv) for c in present for lv in cz.LEVELS[c]
            ]
            for codec, level in runs:
                ctx.check_cancelled()
                m, same = self._gzip(d, data, level) if codec == "gzip" else self._cli(ctx, d, codec, level)
                rows.append(m.to_row())
                if not same:
                    mismatched.append(f"{d} {m.label}")
                ctx.progress(len(rows) / total)
        return {
            "folder": str(self.folder),
            "size": parse_size(self.size),
            "rows": rows,
            "table": cz.format_table(rows),
            "missing_codecs": missing,
            "datasets": datasets,
            "mismatched": mismatched,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if evidence["mismatched"]:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "解压结果与原数据不同：{m}",
                    "decompressed output differs from the input: {m}",
                    m=", ".join(evidence["mismatched"]),
                ),
                **evidence,
            )
        if not evidence["rows"]:
            return CheckResult.failed(self.check_id, tr("没有测量结果", "nothing was measured"), **evidence)
        message = tr(
            "测量了 {n} 组（数据集 × 压缩器 × 级别），解压结果都与原数据一致",
            "measured {n} combinations (data set × codec × level); every decompressed output matches "
            "its input",
            n=len(evidence["rows"]),
        )
        if evidence["missing_codecs"]:
            message += tr(
                "；未测量（缺少命令）：{c}",
                "; not measured (command missing): {c}",
                c=", ".join(evidence["missing_codecs"]),
            )
        return CheckResult.passed(self.check_id, message, **evidence)
