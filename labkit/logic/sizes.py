"""Disk sizes the way ``qemu-img`` reads them, plus friendly display.

:func:`parse_size` reads a size like QEMU's ``qemu_strtosz`` (binary suffixes), also accepting
spellings students type that QEMU 7.2 rejects (``120GB``, ``120GiB``, full-width digits) and
reading them binary like QEMU's own letters; :func:`format_size` turns the number back into a
string QEMU 7.2 accepts (``120G``), so the student's spelling is never passed through. Every
rejection is an :class:`~labkit.errors.InvalidField` that names the field and shows the fix.
"""

from __future__ import annotations

import re
from fractions import Fraction

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = ["MAX_SIZE", "UNITS", "format_size", "human_size", "parse_size", "round_up"]

#: Suffix letter → multiplier; QEMU's letters, all binary.
UNITS: dict[str, int] = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "M": 1 << 20,
    "G": 1 << 30,
    "T": 1 << 40,
    "P": 1 << 50,
    "E": 1 << 60,
}

#: The largest size qemu-img accepts ("Must be between 0 and 9223372036854775807").
MAX_SIZE = (1 << 63) - 1

_MAX_CHARS = 64  # longer input is garbage; also keeps Fraction/int away from huge digit strings
_PATTERN = re.compile(
    r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>(?:[KMGTPE](?:I?B)?|B)?)",
    re.IGNORECASE | re.ASCII,
)
# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, as typed with a Chinese IME.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def _fix() -> str:
    return tr("请写数字加单位 K/M/G/T，例如 120G", "use a number with K/M/G/T, e.g. 120G")


def _negative(field: str, text: object) -> InvalidField:
    return InvalidField(
        field,
        text,
        tr("是负数", "is negative"),
        tr("磁盘大小必须为正，例如 120G", "a disk size must be positive, e.g. 120G"),
    )


def parse_size(text: str | int, field: str = "size") -> int:
    """Return the number of bytes ``text`` means to ``qemu-img``.

    An ``int`` is taken as bytes already. Raises :class:`InvalidField` naming ``field`` for
    anything unusable, including negative numbers and sizes above :data:`MAX_SIZE`; no other
    exception escapes for a bad ``str``.

    ``qemu-img create disk.qcow2 120G`` reads ``120G`` with QEMU's ``qemu_strtosz``: a plain number
    is bytes, the suffixes ``K M G T P E`` (either case) are *binary* multiples (1024, 1024², …),
    ``B`` is bytes, and a decimal fraction is allowed with a suffix (``1.5G``) and truncated to
    whole bytes. QEMU 7.2 rejects ``120GB`` and ``120GiB`` outright; students type those all the
    time, so labkit also accepts ``KB``/``KiB`` … ``EB``/``EiB`` and reads them **binary like
    QEMU's own letters** (``120GB`` = ``120GiB`` = ``120G`` = 128 849 018 880 bytes). That is a
    deliberate choice: a disk image has no use for decimal gigabytes, and reading ``GB`` as 10⁹
    would silently hand QEMU a size that differs from the one in the course text. labkit never
    passes the student's spelling through: :func:`format_size` turns the parsed number back into
    a string QEMU 7.2 accepts (``120G``).

    Also accepted for convenience: full-width digits/letters typed with a Chinese input method
    (``１２０Ｇ``) and spaces around or before the unit (``"120 G"``, which QEMU itself rejects).
    Rejected on purpose (QEMU accepts some of these, but they only confuse): hex (``0x10``),
    exponents (``1e3``), signs, ``inf``/``nan``, a fraction without a unit (``1.5`` bytes), and
    anything above QEMU's limit of 2⁶³-1 bytes.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InvalidField(field, text, tr("不是大小", "is not a size"), _fix())
    if isinstance(text, int):
        value = text
    else:
        cleaned = text.translate(_FULLWIDTH).strip()
        if not cleaned:
            raise InvalidField(field, text, tr("为空", "is empty"), _fix())
        if cleaned.startswith("-"):
            raise _negative(field, text)
        m = _PATTERN.fullmatch(cleaned) if len(cleaned) <= _MAX_CHARS else None
        if m is None:
            raise InvalidField(field, text, tr("不是有效的大小", "is not a valid size"), _fix())
        unit = m["unit"].upper()
        mult = UNITS[unit[:1]]  # "GIB" / "GB" / "G" all mean 2**30, see the docstring
        number = Fraction(m["num"].rstrip(".") or "0")
        if mult == 1 and number.denominator != 1:
            raise InvalidField(
                field,
                text,
                tr("含有不足一字节的小数", "has a fraction of a byte"),
                tr("加上单位，例如 1.5G，或写整数字节", "add a unit such as 1.5G, or give whole bytes"),
            )
        value = int(number * mult)  # truncates towards zero, like QEMU's conversion to uint64
    if value < 0:
        raise _negative(field, text)
    if value > MAX_SIZE:
        raise InvalidField(
            field,
            text,
            tr("超过 qemu-img 的上限（8E 减 1 字节）", "is larger than qemu-img allows (8E minus one byte)"),
            tr("请用更小的大小，例如 120G", "use a smaller size, e.g. 120G"),
        )
    return value


def format_size(size: int) -> str:
    """The shortest exact spelling QEMU 7.2 accepts: ``128849018880`` → ``"120G"``, ``1536`` → ``"1536"``.

    Only whole multiples get a suffix, so ``parse_size(format_size(n)) == n`` for every valid ``n``.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 0 or size > MAX_SIZE:
        raise InvalidField(
            "size", size, tr("不是 qemu-img 接受的字节数", "is not a byte count qemu-img accepts"), _fix()
        )
    for letter in "EPTGMK":
        mult = UNITS[letter]
        if size and size % mult == 0:
            return f"{size // mult}{letter}"
    return str(size)


def human_size(size: int | float | None, digits: int = 1) -> str:
    """For display only: ``1610612736`` → ``"1.5 GiB"``, ``512`` → ``"512 B"``, ``None`` → ``"?"``."""
    if size is None:
        return "?"
    value = float(size)
    sign = "-" if value < 0 else ""
    value = abs(value)
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    step = 0
    while value >= 1024 and step < len(units) - 1:
        value /= 1024
        step += 1
    unit = units[step]
    if unit == "B":
        return f"{sign}{int(value)} B"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return f"{sign}{text} {unit}"


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (qemu-img rounds sizes up to 512-byte sectors)."""
    return -(-value // multiple) * multiple
