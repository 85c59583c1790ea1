"""Pure ``qemu-img`` logic: format names, argv builders and output parsers (no processes here).

What the course text gets wrong or leaves out, and this module encodes (measured on QEMU 7.2, see
``FINDINGS.md``):

* QEMU calls VHD ``vpc`` (after Microsoft Virtual PC). ``qemu-img convert -f vhd`` fails with
  ``Unknown driver 'vhd'``. :func:`normalize_format` maps ``vhd`` → ``vpc`` and returns a note that
  the step shows in its plan, so students learn the real name instead of meeting the error.
* A *dynamic* VHD is auto-detected, but a *fixed* VHD (raw data + a 512-byte footer) is detected as
  ``raw`` unless ``-f vpc`` is given; converting it as raw copies the footer into the guest disk.
  Builders therefore always pass ``-f`` when the format is known, and :func:`looks_like_fixed_vhd`
  lets a step recognise the footer when it is not.
* ``qemu-img create`` silently overwrites an existing file (labkit's step checks first).
* ``-c`` (compress) is only offered for qcow2 here; raw / vdi / … answer "Compression not supported
  for this file format".
* ``qemu-img resize`` works for qcow2, raw and qed only; shrinking (qcow2, raw) needs ``--shrink``
  and a size that is a multiple of 512 bytes.
* VHD sizes are rounded up to a whole cylinder of the CHS geometry (``120G`` becomes 128 849 141 760
  bytes); :func:`expected_virtual_size` reproduces QEMU's arithmetic so checks can be exact.

Builders return argv lists (never shell strings); parsers accept the ``--output=json`` text and
raise :class:`~labkit.errors.InvalidField` (field ``"qemu-img … output"``) for anything malformed,
never ``KeyError`` / ``json.JSONDecodeError``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.sizes import MAX_SIZE, format_size, human_size, parse_size, round_up

__all__ = [
    "ALIASES",
    "COMPRESSIBLE",
    "EXTENSIONS",
    "FORMATS",
    "MAX_VIRTUAL_SIZE",
    "QEMU_IMG",
    "RESIZABLE",
    "SHRINKABLE",
    "CompareResult",
    "ImageCheck",
    "ImageInfo",
    "Measure",
    "build_check",
    "build_compare",
    "build_convert",
    "build_create",
    "build_info",
    "build_measure",
    "build_resize",
    "expected_virtual_size",
    "format_from_name",
    "interpret_compare",
    "looks_like_fixed_vhd",
    "measure_format",
    "normalize_format",
    "parse_check",
    "parse_info",
    "parse_measure",
    "parse_progress",
    "validate_size_for",
    "vpc_geometry",
]

QEMU_IMG = "qemu-img"

#: Formats the course meets, QEMU driver name → what it is.
FORMATS: dict[str, str] = {
    "qcow2": "QEMU copy-on-write v2: grows on demand, snapshots, compression",
    "raw": "plain bytes, sparse on Linux file systems (the course's .img)",
    "vpc": "Microsoft VHD (Virtual PC / Hyper-V gen 1), dynamic or fixed",
    "vmdk": "VMware disk",
    "vdi": "VirtualBox disk",
    "vhdx": "Microsoft VHDX (Hyper-V)",
    "qed": "QEMU enhanced disk (legacy)",
}

#: Names students use that QEMU does not know → the QEMU driver name.
ALIASES: dict[str, str] = {"vhd": "vpc", "img": "raw"}

#: File name extensions whose format is unambiguous. ``.img`` is missing on purpose: Ubuntu's cloud
#: images are qcow2 files named ``.img``, so only qemu-img's probing can tell.
EXTENSIONS: dict[str, str] = {
    ".qcow2": "qcow2",
    ".raw": "raw",
    ".vhd": "vpc",
    ".vpc": "vpc",
    ".vmdk": "vmdk",
    ".vdi": "vdi",
    ".vhdx": "vhdx",
    ".qed": "qed",
}

COMPRESSIBLE = frozenset({"qcow2"})
RESIZABLE = frozenset({"qcow2", "raw", "qed"})
SHRINKABLE = frozenset({"qcow2", "raw"})

_VHD_MAX_SECTORS = 0xFF000000  # QEMU block/vpc.c: 2040 GiB
_VHD_MAX_GEOMETRY = 65535 * 16 * 255
#: Largest virtual size per format (QEMU 7.2); formats not listed are limited by qemu-img's 2**63-1.
MAX_VIRTUAL_SIZE: dict[str, int] = {
    "vpc": _VHD_MAX_SECTORS * 512,
    "vhdx": 64 << 40,
    "qed": 64 << 40,
}

_SECTOR = 512


# ----------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------
def normalize_format(name: str, field: str = "format") -> tuple[str, str | None]:
    """Return ``(qemu_driver_name, note)`` for a format name a student typed.

    ``note`` is ``None`` for a name QEMU knows; for an alias (``vhd``, ``img``) it explains the
    mapping and belongs in the plan's notes. Unknown names raise :class:`InvalidField`.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidField(
            field,
            name,
            tr("不是格式名", "is not a format name"),
            tr("可选：", "choose one of: ") + _choices(),
        )
    key = name.strip().lower()
    if key in FORMATS:
        return key, None
    if key == "vhd":
        return "vpc", tr(
            "QEMU 把 VHD 格式叫做 vpc（源自 Microsoft Virtual PC）：`-f vhd` 会报 "
            "\"Unknown driver 'vhd'\"，所以 labkit 传给 qemu-img 的是 `-f vpc`。",
            "QEMU calls the VHD format vpc (after Microsoft Virtual PC): `-f vhd` fails with "
            "\"Unknown driver 'vhd'\", so labkit passes `-f vpc` to qemu-img.",
        )
    if key == "img":
        return "raw", tr(
            ".img 只是扩展名，课程里的 img 镜像其实是 raw 格式（逐字节的磁盘内容）。",
            ".img is only a file extension; the course's img images are in raw format "
            "(the disk's bytes as is).",
        )
    hint = tr("，是不是 qcow2？", "; did you mean qcow2?") if key.startswith("qcow") else ""
    raise InvalidField(
        field,
        name,
        tr("不是 qemu-img 认识的格式", "is not a format qemu-img knows") + hint,
        tr("可选：", "choose one of: ") + _choices(),
    )


def _choices() -> str:
    return ", ".join([*FORMATS, "vhd (= vpc)"])


def format_from_name(path: str | os.PathLike[str]) -> str | None:
    """The format a file name's extension implies (``disk.vhd`` → ``vpc``), or ``None`` if ambiguous."""
    return EXTENSIONS.get(os.path.splitext(os.fspath(path))[1].lower())


def looks_like_fixed_vhd(tail: bytes) -> bool:
    """True if ``tail`` (a file's last 512 bytes) is a fixed-VHD footer.

    A fixed VHD is the raw disk followed by a footer starting with the cookie ``conectix``; its
    disk-type field (big-endian, offset 60) is 2. QEMU's probe does not look at the end of a file,
    so such an image is detected as raw.
    """
    if len(tail) < 512:
        return False
    footer = tail[-512:]
    return footer[:8] == b"conectix" and int.from_bytes(footer[60:64], "big") == 2


# ----------------------------------------------------------------------------------------------
# Sizes per format
# ----------------------------------------------------------------------------------------------
def vpc_geometry(total_sectors: int) -> tuple[int, int, int]:
    """CHS geometry (cylinders, heads, sectors per track) for a VHD, as QEMU's ``calculate_geometry``."""
    total = min(total_sectors, _VHD_MAX_GEOMETRY)
    if total >= 65535 * 16 * 63:
        secs, heads = 255, 16
        cyls_times_heads = total // secs
    else:
        secs = 17
        cyls_times_heads = total // secs
        heads = max(-(-cyls_times_heads // 1024), 4)
        if cyls_times_heads >= heads * 1024 or heads > 16:
            secs, heads = 31, 16
            cyls_times_heads = total // secs
        if cyls_times_heads >= heads * 1024:
            secs, heads = 63, 16
            cyls_times_heads = total // secs
    return cyls_times_heads // heads, heads, secs


def _vpc_virtual_size(size: int) -> int:
    sectors = -(-size // _SECTOR)  # the block layer first rounds up to whole sectors
    total = min(sectors, _VHD_MAX_GEOMETRY)
    cyls = heads = secs = 0
    i = 0
    while total > cyls * heads * secs:  # QEMU retries with one more sector until the geometry fits
        cyls, heads, secs = vpc_geometry(total + i)
        i += 1
    if cyls * heads * secs == _VHD_MAX_GEOMETRY:
        return sectors * _SECTOR  # above ~127 GiB QEMU stores the size itself, not the geometry
    return cyls * heads * secs * _SECTOR


def expected_virtual_size(size: int, fmt: str) -> int:
    """The virtual size ``qemu-img create -f FMT x SIZE`` really produces.

    Every format rounds up to whole 512-byte sectors; VHD (``vpc``) rounds to its CHS geometry.
    """
    if fmt == "vpc":
        return _vpc_virtual_size(size)
    return round_up(size, _SECTOR)


def validate_size_for(fmt: str, size: int | str, field: str = "size", *, allow_zero: bool = False) -> int:
    """Parse ``size`` and check it fits ``fmt`` (VHD ≤ 2040 GiB, VHDX ≤ 64 TiB, …); return bytes."""
    value = parse_size(size, field)
    if value == 0 and not allow_zero:
        raise InvalidField(
            field,
            size,
            tr("为 0", "is zero"),
            tr("请给出磁盘大小，例如 120G", "give the disk a size, e.g. 120G"),
        )
    limit = MAX_VIRTUAL_SIZE.get(fmt, MAX_SIZE)
    if value > limit:
        raise InvalidField(
            field,
            size,
            tr(
                "超过 {f} 格式的上限 {m}", "exceeds the {f} format's limit of {m}", f=fmt, m=human_size(limit)
            ),
            tr("用更小的大小，或换成 qcow2", "use a smaller size, or the qcow2 format"),
        )
    return value


# ----------------------------------------------------------------------------------------------
# argv builders
# ----------------------------------------------------------------------------------------------
def _path(value: str | os.PathLike[str], field: str) -> str:
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not text or not str(text).strip():
        raise InvalidField(
            field,
            value,
            tr("不是文件名", "is not a file name"),
            tr("例如 ubuntu-arm64.qcow2", "e.g. ubuntu-arm64.qcow2"),
        )
    return str(text)


def _fmt(value: str | None, field: str) -> str | None:
    return None if value is None else normalize_format(value, field)[0]


def build_create(path: str | os.PathLike[str], size: int | str, fmt: str | None = "raw") -> list[str]:
    """``qemu-img create -f FMT PATH SIZE`` – always with ``-f`` (``raw`` when omitted, QEMU's default)."""
    f = _fmt(fmt, "format") or "raw"
    return [QEMU_IMG, "create", "-f", f, _path(path, "path"), format_size(validate_size_for(f, size))]


def build_info(
    path: str | os.PathLike[str], fmt: str | None = None, *, force_share: bool = False
) -> list[str]:
    """``qemu-img info --output=json [-f FMT] [-U] PATH``.

    ``force_share`` (``-U``) is needed to look at an image a running VM holds open; without it
    qemu-img fails with "Failed to get shared 'write' lock".
    """
    argv = [QEMU_IMG, "info", "--output=json"]
    f = _fmt(fmt, "format")
    if f:
        argv += ["-f", f]
    if force_share:
        argv.append("-U")
    return [*argv, _path(path, "path")]


def build_convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    src_fmt: str | None = None,
    dst_fmt: str = "qcow2",
    compress: bool = False,
    progress: bool = True,
) -> list[str]:
    """``qemu-img convert [-p] [-f SRC_FMT] -O DST_FMT [-c] SRC DST``.

    ``-f`` is given whenever the source format is known (a fixed VHD is otherwise read as raw);
    ``-c`` only for qcow2. ``-p`` makes qemu-img print ``(12.34/100%)`` progress separated by ``\\r``.
    """
    s, d = _path(src, "src"), _path(dst, "dst")
    if os.path.normpath(s) == os.path.normpath(d):
        raise InvalidField(
            "dst",
            d,
            tr("与源文件相同", "is the source file itself"),
            tr("换一个目标文件名", "choose another target name"),
        )
    out = _fmt(dst_fmt, "dst_format") or "qcow2"
    if compress and out not in COMPRESSIBLE:
        raise InvalidField(
            "compress",
            compress,
            tr(
                "只适用于 qcow2（{f} 不支持压缩）",
                "only works for qcow2 (qemu-img cannot compress {f})",
                f=out,
            ),
            tr("把目标格式设为 qcow2，或关闭压缩", "set dst_format='qcow2', or compress=False"),
        )
    argv = [QEMU_IMG, "convert"]
    if progress:
        argv.append("-p")
    f = _fmt(src_fmt, "src_format")
    if f:
        argv += ["-f", f]
    argv += ["-O", out]
    if compress:
        argv.append("-c")
    return [*argv, s, d]


def build_resize(
    path: str | os.PathLike[str], size: int | str, fmt: str | None = None, shrink: bool = False
) -> list[str]:
    """``qemu-img resize [-f FMT] [--shrink] PATH SIZE`` (absolute sizes only).

    ``shrink`` is the caller's consent: QEMU refuses to shrink without ``--shrink`` because data
    beyond the new end is lost. Passing it while growing is harmless.
    """
    f = _fmt(fmt, "format")
    if f is not None and f not in RESIZABLE:
        raise InvalidField(
            "format",
            f,
            tr("qemu-img 不能调整此格式的大小", "cannot be resized by qemu-img"),
            tr("先转换成 qcow2 再调整", "convert it to qcow2 first, then resize"),
        )
    if shrink and f is not None and f not in SHRINKABLE:
        raise InvalidField(
            "format",
            f,
            tr("不支持缩小", "cannot be shrunk"),
            tr("转换成 qcow2 或 raw 后再缩小", "convert it to qcow2 or raw first"),
        )
    value = validate_size_for(f or "raw", size)
    if value % _SECTOR:
        raise InvalidField(
            "size",
            size,
            tr("不是 512 字节的整数倍", "is not a multiple of 512 bytes"),
            tr("例如 {s}", "e.g. {s}", s=format_size(round_up(value, 1 << 20))),
        )
    argv = [QEMU_IMG, "resize"]
    if f:
        argv += ["-f", f]
    if shrink:
        argv.append("--shrink")
    return [*argv, _path(path, "path"), format_size(value)]


def build_measure(
    src: str | os.PathLike[str], dst_fmt: str = "qcow2", src_fmt: str | None = None
) -> list[str]:
    """``qemu-img measure --output=json [-f SRC_FMT] -O DST_FMT SRC``: bytes a conversion needs.

    QEMU 7.2 measures only qcow2 and raw outputs ("Block driver 'vdi' does not support size
    measurement"), and for raw it answers the full virtual size although ``convert`` writes a sparse
    file. To estimate the space any conversion needs, measure with :func:`measure_format`.
    """
    argv = [QEMU_IMG, "measure", "--output=json"]
    f = _fmt(src_fmt, "src_format")
    if f:
        argv += ["-f", f]
    return [*argv, "-O", _fmt(dst_fmt, "dst_format") or "qcow2", _path(src, "src")]


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
    fa, fb = _fmt(fmt_a, "src_format"), _fmt(fmt_b, "dst_format")
    if fa:
        argv += ["-f", fa]
    if fb:
        argv += ["-F", fb]
    if strict:
        argv.append("-s")
    return [*argv, _path(a, "src"), _path(b, "dst")]


def build_check(path: str | os.PathLike[str], fmt: str | None = None) -> list[str]:
    """``qemu-img check --output=json [-f FMT] PATH``: consistency and cluster counts (qcow2, qed, vdi…).

    Its ``compressed-clusters`` count is how you see that ``-c`` really compressed something;
    ``qemu-img info`` does not say.
    """
    argv = [QEMU_IMG, "check", "--output=json"]
    f = _fmt(fmt, "format")
    if f:
        argv += ["-f", f]
    return [*argv, _path(path, "path")]


# ----------------------------------------------------------------------------------------------
# Parsers
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


_PROGRESS = re.compile(r"\s*\(\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*100%\)\s*", re.ASCII)


def parse_progress(line: str) -> float | None:
    """``"    (12.34/100%)"`` → ``0.1234``; any other line → ``None``.

    qemu-img ``-p`` rewrites one terminal line using ``\\r``; the runner splits on ``\\r`` so each
    update arrives as its own line.
    """
    if not isinstance(line, str):
        return None
    m = _PROGRESS.fullmatch(line)
    if m is None:
        return None
    return min(1.0, float(m.group(1)) / 100.0)


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
