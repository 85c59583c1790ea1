"""Sizes as qemu-img reads them (labkit.logic.sizes), checked by examples, properties and real qemu-img."""

from __future__ import annotations

import re
import shutil
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from labkit.errors import InvalidField
from labkit.logic.sizes import MAX_SIZE, UNITS, format_size, human_size, parse_size, round_up
from labkit.steps.runner import SubprocessRunner

GiB = 1 << 30
LETTERS = "KMGTPE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("120G", 120 * GiB),
        ("120g", 120 * GiB),
        ("120GiB", 120 * GiB),
        ("120GB", 120 * GiB),  # binary on purpose, like qemu-img's own letters
        ("120 gib", 120 * GiB),
        ("  120G  ", 120 * GiB),
        ("１２０Ｇ", 120 * GiB),  # full-width, as typed with a Chinese input method
        ("1.5G", 3 * GiB // 2),
        (".5K", 512),
        ("0.3K", 307),  # truncated to whole bytes, like QEMU
        ("1024", 1024),
        ("1024B", 1024),
        ("0", 0),
        ("1T", 1 << 40),
        ("7E", 7 << 60),
        (1536, 1536),
    ],
)
def test_parse_size_examples(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "-1", "-1G", "1.5", "abc", "G", ".", "0x10", "1e3", "inf", "nan", "10GG", "1.5.5G",
     "8E", "9999999999999999999999", "12 34", "+5G", "5X", "1" * 200, "²G", None, 1.5, True, -3, [1]],
)  # fmt: skip
def test_parse_size_rejects_with_invalid_field(bad):
    with pytest.raises(InvalidField) as info:
        parse_size(bad, field="memory")
    assert info.value.field == "memory"
    assert info.value.fix  # every rejection says what to do


def test_rejection_names_the_fix_in_both_languages(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    with pytest.raises(InvalidField) as info:
        parse_size("lots")
    assert info.value.field == "size"
    assert "e.g. 120G" in info.value.fix
    assert "'lots'" in str(info.value)
    monkeypatch.setenv("LABKIT_LANG", "zh")
    with pytest.raises(InvalidField) as info:
        parse_size("lots")
    assert "120G" in info.value.fix
    assert info.value.fix != "use a number with K/M/G/T, e.g. 120G"


@given(st.integers(min_value=0, max_value=MAX_SIZE))
@example(120 * GiB)
@example(MAX_SIZE)
def test_format_parse_round_trip(n):
    text = format_size(n)
    assert re.fullmatch(r"[0-9]+[KMGTPE]?", text)  # a spelling QEMU 7.2 itself accepts
    assert parse_size(text) == n


@given(st.integers(min_value=1, max_value=MAX_SIZE))
def test_format_size_picks_the_largest_exact_unit(n):
    text = format_size(n)
    if text[-1] in LETTERS:
        mult = UNITS[text[-1]]
        bigger = LETTERS[LETTERS.index(text[-1]) + 1 :]
    else:
        mult, bigger = 1, LETTERS
    assert int(text.rstrip(LETTERS)) * mult == n
    assert all(n % UNITS[b] for b in bigger)


@given(
    st.integers(min_value=0, max_value=1 << 20),
    st.sampled_from(LETTERS),
    st.sampled_from(["", "B", "iB"]),
    st.booleans(),
    st.booleans(),
)
def test_every_unit_spelling_means_the_binary_multiple(n, letter, tail, lower, space):
    unit = letter + tail
    text = f"{n}{' ' if space else ''}{unit.lower() if lower else unit}"
    expected = n * UNITS[letter]
    if expected > MAX_SIZE:
        with pytest.raises(InvalidField):
            parse_size(text)
    else:
        assert parse_size(text) == expected


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from("KMGT"))
def test_decimal_fractions_truncate_like_qemu(whole, frac, letter):
    text = f"{whole}.{frac}{letter}"
    assert parse_size(text) == int(Fraction(f"{whole}.{frac}") * UNITS[letter])


@given(st.text(max_size=40))
@example("1.5")
@example("\x00")
@example("٣G")  # an Arabic-Indic digit: Python's \d would accept it, qemu-img would not
def test_any_text_is_a_valid_size_or_invalid_field(text):
    try:
        value = parse_size(text, field="size")
    except InvalidField as exc:
        assert exc.field == "size"
    else:
        assert isinstance(value, int)
        assert 0 <= value <= MAX_SIZE


@given(st.text(alphabet="0123456789.kmgtpeKMGTPEiIbBx+- ", max_size=25))
def test_near_miss_text_never_raises_anything_else(text):
    try:
        value = parse_size(text)
    except InvalidField:
        return
    assert 0 <= value <= MAX_SIZE
    assert parse_size(format_size(value)) == value


@given(st.integers(min_value=0, max_value=7 << 60))  # just below 8E, display rounds up to "8 EiB" > limit
def test_human_size_reads_back_within_rounding(n):
    text = human_size(n)
    assert re.fullmatch(r"[0-9]+(\.[0-9])? (B|KiB|MiB|GiB|TiB|PiB|EiB)", text)
    back = parse_size(text)  # labkit accepts its own display spelling
    assert abs(back - n) <= n * 0.05 + 1


def test_human_size_examples():
    assert human_size(3 * GiB // 2) == "1.5 GiB"
    assert human_size(120 * GiB) == "120 GiB"
    assert human_size(512) == "512 B"
    assert human_size(None) == "?"


@given(st.integers(min_value=0, max_value=1 << 62), st.sampled_from([512, 65536, 1 << 20]))
def test_round_up(value, multiple):
    r = round_up(value, multiple)
    assert r % multiple == 0
    assert value <= r < value + multiple


@pytest.mark.parametrize("bad", [-1, MAX_SIZE + 1, True, 1.0, "1G"])
def test_format_size_rejects_non_byte_counts(bad):
    with pytest.raises(InvalidField):
        format_size(bad)


# -- against the real qemu-img -----------------------------------------------------------------
@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
@pytest.mark.parametrize("text", ["120G", "120g", "1.5G", "10k", "1536", "0.5M", "3T", " 10G", "1.3K"])
def test_qemu_img_reads_sizes_the_same_way(tmp_path, text):
    """What qemu-img itself prints as size=N for a spelling it accepts equals parse_size."""
    runner = SubprocessRunner()
    done = runner.run(["qemu-img", "create", "-f", "raw", str(tmp_path / "s.img"), text])
    qemu_bytes = int(re.search(r"size=([0-9]+)", done.stdout).group(1))
    assert parse_size(text) == qemu_bytes


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
@pytest.mark.parametrize("text", ["120GB", "120GiB", "120 G", "１２０Ｇ", "1.5 TiB"])
def test_spellings_qemu_rejects_are_passed_on_in_a_form_it_accepts(tmp_path, text):
    runner = SubprocessRunner()
    raw = runner.run(["qemu-img", "create", "-f", "raw", str(tmp_path / "a.img"), text], check=False)
    assert raw.returncode != 0  # qemu-img 7.2 itself refuses these spellings
    done = runner.run(
        ["qemu-img", "create", "-f", "raw", str(tmp_path / "b.img"), format_size(parse_size(text))]
    )
    assert int(re.search(r"size=([0-9]+)", done.stdout).group(1)) == parse_size(text)
