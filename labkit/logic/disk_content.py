"""Content for the compression demo: course-like server logs written into a raw disk image (pure).

The course converts ``ubuntu-arm64.img`` to a compressed qcow2 (``qemu-img convert -c``). A freshly
created image holds no data, so "compressed" would be bigger than the source (qcow2 metadata, no
data to shrink). :func:`course_logs` makes a few MiB of text like the web, mail and application
servers of the course's consolidation example would write; the fill step writes it at the start
of the image with ``qemu-io`` (:func:`build_io_write`), the same bytes on every run (a fixed seed),
so a second run verifies instead of rewriting and ``qemu-img compare`` of the converted image is
stable. Log text compresses well (zlib, per 64 KiB qcow2 cluster), which is the lesson.
"""

from __future__ import annotations

import os
import random
import re

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic.qemu_img import file_arg
from labkit.logic.sizes import format_size, human_size, parse_size

__all__ = ["QEMU_IO", "SEED", "build_io_write", "compression_summary", "course_logs", "fill_length"]

QEMU_IO = "qemu-io"
#: The generator's seed: the content is part of the course, not random per run.
SEED = 1_2024
#: The most the demo writes (it runs in a student's work folder).
MAX_FILL = 256 * 2**20
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_HOSTS = ("web-01", "web-02", "mail-01", "app-01", "app-02")
_PATHS = (
    "/course/bigdata/ch1/qemu-img.html",
    "/course/bigdata/ch1/qemu-system.html",
    "/course/bigdata/ch2/docker.html",
    "/api/v1/students/{n}/submissions",
    "/api/v1/grades?course=bigdata&chapter={c}",
    "/static/js/labkit.{n}.js",
    "/login",
    "/",
)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
    "curl/7.88.1",
    "python-requests/2.31.0",
)
_MAIL = (
    "postfix/smtpd[{p}]: connect from unknown[10.0.{a}.{b}]",
    "postfix/qmgr[{p}]: {q}: from=<noreply@course.example.edu>, size={s}, nrcpt=1 (queue active)",
    "postfix/smtp[{p}]: {q}: to=<s{n}@stu.example.edu>, relay=mx.example.edu, status=sent (250 OK)",
    "dovecot: imap-login: Login: user=<s{n}>, method=PLAIN, rip=10.0.{a}.{b}, TLS",
)
_APP = (
    "INFO  grading.worker job={q} student=s{n} chapter={c} checks=14 passed={k} took={t}ms",
    "WARN  grading.worker job={q} student=s{n} notebook saved without outputs, re-running",
    "INFO  scheduler assigned vm-{a} to host app-0{c} cpu=30% mem=4G",
    "ERROR storage.quota user=s{n} used={s}K limit=2097152K",
)


def course_logs(size: int, *, seed: int = SEED) -> bytes:
    """``size`` bytes of server log lines (UTF-8 text), the same for the same ``size`` and ``seed``."""
    rng = random.Random(seed)
    out: list[str] = []
    total = 0
    second = 0
    while total < size:
        second += rng.randint(0, 3)
        day, hour, minute = 2 + second // 86400, second // 3600 % 24, second // 60 % 60
        stamp = f"2026-03-{day:02d} {hour:02d}:{minute:02d}:{second % 60:02d}"
        host = rng.choice(_HOSTS)
        fields = {
            "n": rng.randint(2023000, 2023999),
            "c": rng.randint(1, 9),
            "a": rng.randint(1, 254),
            "b": rng.randint(1, 254),
            "p": rng.randint(1000, 32000),
            "q": f"{rng.getrandbits(40):010X}",
            "s": rng.randint(800, 90000),
            "k": rng.randint(10, 14),
            "t": rng.randint(40, 4000),
        }
        if host.startswith("web"):
            path = rng.choice(_PATHS).format(**fields)
            status = rng.choice((200, 200, 200, 200, 304, 302, 404, 500))
            line = (
                f'{stamp} {host} nginx: 10.0.{fields["a"]}.{fields["b"]} "GET {path} HTTP/1.1" {status} '
                f'{fields["s"]} "{rng.choice(_AGENTS)}"'
            )
        elif host.startswith("mail"):
            line = f"{stamp} {host} " + rng.choice(_MAIL).format(**fields)
        else:
            line = f"{stamp} {host} " + rng.choice(_APP).format(**fields)
        out.append(line + "\n")
        total += len(line) + 1
    return "".join(out).encode("ascii")[:size]


def fill_length(size: object, field: str = "size") -> int:
    """The bytes to write: a size (``8M``), a whole number of 512-byte sectors, at most 256 MiB."""
    example = tr("例如 8M（最多 {m}）", "e.g. 8M (at most {m})", m=format_size(MAX_FILL))
    try:
        value = parse_size(size, field)
    except InvalidField as exc:  # its hint is about disk sizes (120G): give this field's own
        raise InvalidField(field, size, exc.problem, example) from None
    if value <= 0 or value % 512 or value > MAX_FILL:
        raise InvalidField(
            field,
            size,
            tr(
                "应为 512 字节的正整数倍，最多 {m}",
                "must be a positive multiple of 512 bytes up to {m}",
                m=format_size(MAX_FILL),
            ),
            example,
        )
    return value


def build_io_write(image: str | os.PathLike[str], fmt: str, source_name: str, length: int) -> list[str]:
    """``qemu-io -f FMT -c 'write -s SOURCE 0 LENGTH' IMAGE``: write ``SOURCE``'s bytes at offset 0.

    ``SOURCE`` is a plain file name (run with the image's folder as working directory): qemu-io
    splits its ``-c`` command at spaces, so a path with spaces could not be given there.
    """
    if not _SAFE_NAME.fullmatch(source_name):
        raise InvalidField(
            "source",
            source_name,
            tr("不是不含空格的文件名", "is not a file name without spaces"),
            tr("例如 course-logs.txt", "e.g. course-logs.txt"),
        )
    return [QEMU_IO, "-f", fmt, "-c", f"write -s {source_name} 0 {length}", file_arg(image, "path")]


def compression_summary(src_allocated: int | None, dst_allocated: int | None) -> str:
    """What ``-c`` achieved, said with the ratio: the compressed file's disk use against the data
    the source image holds (its allocated bytes; a sparse image's holes are not data)."""
    if not src_allocated or dst_allocated is None:
        return tr("压缩后占用 {a}", "compressed, it uses {a}", a=human_size(dst_allocated or 0))
    if dst_allocated >= src_allocated:
        return tr(
            "压缩后占用 {a}，反而比源镜像里的数据 {b} 多：源镜像几乎是空的，qcow2 的元数据占了上风"
            "（先用“写入示例数据”给它真实内容）",
            "compressed, it uses {a}, more than the {b} of data in the source: the source is nearly "
            "empty and qcow2's metadata dominates (give it real content with the sample-data step first)",
            a=human_size(dst_allocated),
            b=human_size(src_allocated),
        )
    return tr(
        "压缩后占用 {a}，是源镜像数据 {b} 的 {p:.0%}（压缩比 {r:.1f} : 1）",
        "compressed, it uses {a}: {p:.0%} of the {b} of data in the source (ratio {r:.1f} : 1)",
        a=human_size(dst_allocated),
        b=human_size(src_allocated),
        p=dst_allocated / src_allocated,
        r=src_allocated / dst_allocated,
    )
