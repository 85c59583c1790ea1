"""Read-only ``qemu-img`` commands and their output, as pure facts (no processes here).

pyinfra's split: a *fact* is a command that reads state plus a pure function of its output. A step
runs these as its plan's probes: ``info`` (format, sizes, backing file), ``measure`` (bytes a
conversion needs), ``compare`` (same content?) and ``check`` (consistency, compressed clusters).
Parsers accept the ``--output=json`` text and raise :class:`~labkit.errors.InvalidField` (field
``"qemu-img … output"``) for anything malformed, never ``KeyError`` / ``json.JSONDecodeError``.
The commands that change an image are in :mod:`labkit.logic.qemu_img`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.qemu_img import QEMU_IMG, driver_arg, file_arg
from labkit.logic.sizes import human_size

__all__ = [
    "CompareResult",
    "ImageCheck",
    "ImageInfo",
    "Measure",
    "build_check",
    "build_compare",
    "build_info",
    "build_measure",
    "interpret_compare",
    "measure_format",
    "parse_check",
    "parse_info",
    "parse_measure",
]


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
def build_info(
    path: str | os.PathLike[str], fmt: str | None = None, *, force_share: bool = False
) -> list[str]:
    """``qemu-img info --output=json [-f FMT] [-U] PATH``.

    ``force_share`` (``-U``) is needed to look at an image a running VM holds open; without it
    qemu-img fails with "Failed to get shared 'write' lock".
    """
    argv = [QEMU_IMG, "info", "--output=json"]
    f = driver_arg(fmt, "format")
    if f:
        argv += ["-f", f]
    if force_share:
        argv.append("-U")
    return [*argv, file_arg(path, "path")]


def build_measure(
    src: str | os.PathLike[str], dst_fmt: str = "qcow2", src_fmt: str | None = None
) -> list[str]:
    """``qemu-img measure --output=json [-f SRC_FMT] -O DST_FMT SRC``: bytes a conversion needs.

    QEMU 7.2 measures only qcow2 and raw outputs ("Block driver 'vdi' does not support size
    measurement"), and for raw it answers the full virtual size although ``convert`` writes a sparse
    file. To estimate the space any conversion needs, measure with :func:`measure_format`.
    """
    argv = [QEMU_IMG, "measure", "--output=json"]
    f = driver_arg(src_fmt, "src_format")
    if f:
        argv += ["-f", f]
    return [*argv, "-O", driver_arg(dst_fmt, "dst_format") or "qcow2", file_arg(src, "src")]


def measure_format(dst_fmt: str) -> str:
    """The ``-O`` to measure with when converting to ``dst_fmt``: always qcow2.

    qcow2's ``required`` is the data that really has to be copied plus a little metadata, which is a
    fair estimate for every sparse-capable target (raw, vpc, vmdk, vdi, vhdx, qed) and exact for qcow2.
    """
    return "qcow2"


def build_compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    fmt_a: str | None = None,
    fmt_b: str | None = None,
    *,
    strict: bool = False,
) -> list[str]:
    """``qemu-img compare [-f A_FMT] [-F B_FMT] [-s] A B``: exit 0 identical, 1 different, 2 error.

    Without ``-s`` the extra tail of a larger image only has to read as zeros.
    """
    argv = [QEMU_IMG, "compare"]
    fa, fb = driver_arg(fmt_a, "src_format"), driver_arg(fmt_b, "dst_format")
    if fa:
        argv += ["-f", fa]
    if fb:
        argv += ["-F", fb]
    if strict:
        argv.append("-s")
    return [*argv, file_arg(a, "src"), file_arg(b, "dst")]


def build_check(path: str | os.PathLike[str], fmt: str | None = None) -> list[str]:
    """``qemu-img check --output=json [-f FMT] PATH``: consistency and cluster counts (qcow2, qed, vdi…).

    Its ``compressed-clusters`` count is how you see that ``-c`` really compressed something;
    ``qemu-img info`` does not say.
    """
    argv = [QEMU_IMG, "check", "--output=json"]
    f = driver_arg(fmt, "format")
    if f:
        argv += ["-f", f]
    return [*argv, file_arg(path, "path")]


# ----------------------------------------------------------------------------------------------
# Output parsers
# ----------------------------------------------------------------------------------------------
def _load(text: str | bytes, what: str) -> Any:
    field_name = f"qemu-img {what} output"
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        raise InvalidField(field_name, text, tr("不是文本", "is not text"), _json_fix(what))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidField(
            field_name, _excerpt(text), tr("不是 JSON：", "is not JSON: ") + str(exc)[:120], _json_fix(what)
        ) from exc


def _json_fix(what: str) -> str:
    return tr(
        "自己运行 `qemu-img {w} --output=json …` 看看它输出了什么（需要 QEMU ≥ 2.10）",
        "run `qemu-img {w} --output=json …` yourself to see what it printed (needs QEMU >= 2.10)",
        w=what,
    )


def _excerpt(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _int(d: dict[str, Any], key: str) -> int | None:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def _bool(d: dict[str, Any], key: str) -> bool | None:
    v = d.get(key)
    return v if isinstance(v, bool) else None


@dataclass(frozen=True)
class ImageInfo:
    """What ``qemu-img info --output=json`` says about an image (missing keys become ``None``)."""

    format: str
    virtual_size: int
    filename: str | None = None
    actual_size: int | None = None  # bytes allocated on the host file system (sparse files: small)
    cluster_size: int | None = None
    dirty: bool = False  # qcow2 lazy-refcount dirty flag: the image was not closed cleanly
    encrypted: bool = False
    backing_file: str | None = None
    backing_format: str | None = None
    full_backing_file: str | None = None
    compression_type: str | None = None  # qcow2: zlib / zstd – the algorithm -c would use
    corrupt: bool | None = None  # qcow2 "corrupt" bit
    subformat: str | None = None  # vmdk create-type, e.g. monolithicSparse
    format_specific: dict[str, Any] = field(default_factory=dict)

    @property
    def allocation_ratio(self) -> float | None:
        """actual/virtual: how much of the virtual disk costs real space now (qcow2 / sparse raw: ≈0)."""
        if self.actual_size is None or not self.virtual_size:
            return None
        return self.actual_size / self.virtual_size

    def to_evidence(self) -> dict[str, Any]:
        out = asdict(self)
        out["virtual_size_human"] = human_size(self.virtual_size)
        out["actual_size_human"] = human_size(self.actual_size)
        return out


def parse_info(text: str | bytes) -> ImageInfo:
    """Parse ``qemu-img info --output=json`` (also the first entry of ``--backing-chain`` output).

    ``format`` and ``virtual-size`` are required; every other key may be missing or of a wrong
    type and then reads as ``None`` / ``False``. Malformed output raises :class:`InvalidField`.
    """
    data = _load(text, "info")
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        raise InvalidField(
            "qemu-img info output",
            _excerpt(str(data)),
            tr("不是 JSON 对象", "is not a JSON object"),
            _json_fix("info"),
        )
    fmt, vsize = _str(data, "format"), _int(data, "virtual-size")
    if not fmt or vsize is None:
        raise InvalidField(
            "qemu-img info output",
            _excerpt(json.dumps(data, default=str)),
            tr("缺少 format 或 virtual-size", "lacks format or virtual-size"),
            _json_fix("info"),
        )
    spec = data.get("format-specific")
    spec = spec if isinstance(spec, dict) else {}
    spec_data = spec.get("data")
    spec_data = spec_data if isinstance(spec_data, dict) else {}
    return ImageInfo(
        format=fmt,
        virtual_size=vsize,
        filename=_str(data, "filename"),
        actual_size=_int(data, "actual-size"),
        cluster_size=_int(data, "cluster-size"),
        dirty=bool(_bool(data, "dirty-flag")),
        encrypted=bool(_bool(data, "encrypted")),
        backing_file=_str(data, "backing-filename"),
        backing_format=_str(data, "backing-filename-format"),
        full_backing_file=_str(data, "full-backing-filename"),
        compression_type=_str(spec_data, "compression-type"),
        corrupt=_bool(spec_data, "corrupt"),
        subformat=_str(spec_data, "create-type"),
        format_specific=json.loads(json.dumps(spec, default=str)),
    )


@dataclass(frozen=True)
class Measure:
    """``qemu-img measure``: bytes the output file needs now / if every cluster were allocated."""

    required: int
    fully_allocated: int


def parse_measure(text: str | bytes) -> Measure:
    """Parse ``qemu-img measure --output=json`` (``required`` and ``fully-allocated`` are required)."""
    data = _load(text, "measure")
    req = _int(data, "required") if isinstance(data, dict) else None
    full = _int(data, "fully-allocated") if isinstance(data, dict) else None
    if req is None or full is None:
        raise InvalidField(
            "qemu-img measure output",
            _excerpt(str(data)),
            tr("缺少 required 或 fully-allocated", "lacks required or fully-allocated"),
            _json_fix("measure"),
        )
    return Measure(required=req, fully_allocated=full)


@dataclass(frozen=True)
class ImageCheck:
    """``qemu-img check --output=json``: consistency and cluster counts (keys vary by format)."""

    check_errors: int = 0
    corruptions: int = 0
    leaks: int = 0
    total_clusters: int | None = None
    allocated_clusters: int | None = None
    compressed_clusters: int | None = None
    fragmented_clusters: int | None = None
    image_end_offset: int | None = None

    @property
    def clean(self) -> bool:
        return not (self.check_errors or self.corruptions or self.leaks)


def parse_check(text: str | bytes) -> ImageCheck:
    """Parse ``qemu-img check --output=json`` (printed also when it exits 2 or 3)."""
    data = _load(text, "check")
    if not isinstance(data, dict):
        raise InvalidField(
            "qemu-img check output", _excerpt(str(data)), tr("不是 JSON 对象", "is not a JSON object"),
            _json_fix("check"),
        )  # fmt: skip
    return ImageCheck(
        check_errors=_int(data, "check-errors") or 0,
        corruptions=_int(data, "corruptions") or 0,
        leaks=_int(data, "leaks") or 0,
        total_clusters=_int(data, "total-clusters"),
        allocated_clusters=_int(data, "allocated-clusters"),
        compressed_clusters=_int(data, "compressed-clusters"),
        fragmented_clusters=_int(data, "fragmented-clusters"),
        image_end_offset=_int(data, "image-end-offset"),
    )


@dataclass(frozen=True)
class CompareResult:
    """The verdict of ``qemu-img compare``: ``identical`` is ``None`` when compare itself failed."""

    identical: bool | None
    message: str
    offset: int | None = None  # first differing byte offset, when reported


_MISMATCH = re.compile(r"Content mismatch at offset (\d+)")


def interpret_compare(returncode: int, stdout: str, stderr: str = "") -> CompareResult:
    """Exit 0 → identical; 1 → different (with the offset qemu-img names); anything else → error."""
    text = "\n".join(t for t in (stdout.strip(), stderr.strip()) if t)
    if returncode == 0:
        return CompareResult(True, text or "Images are identical.")
    if returncode == 1:
        m = _MISMATCH.search(text)
        return CompareResult(False, text, int(m.group(1)) if m else None)
    return CompareResult(None, text)
