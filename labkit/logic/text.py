"""Small pure text helpers shared by several topics (the guest console, notebook error outputs)."""

from __future__ import annotations

import re

__all__ = ["strip_ansi"]

#: CSI sequences (colours, cursor moves), OSC sequences (window titles), charset selection and
#: two-byte escapes: what IPython's coloured tracebacks and the UEFI firmware's screen use.
_ANSI = re.compile(
    r"\x1b(?:\[[0-9;?=<>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[A-Za-z=>])"
)


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (colour codes, cursor moves, titles)."""
    return _ANSI.sub("", text)
