"""Language selection for notebook narrative and widget labels.

Simplified Chinese is the course language and the default; ``LABKIT_LANG=en`` switches to
English. Strings are written side by side at the point of use (``tr("运行", "Run")``) so a
module's labels stay next to the code that shows them and no central catalogue can drift.
"""

from __future__ import annotations

import os

__all__ = ["lang", "tr"]


def lang() -> str:
    """Return ``"zh"`` or ``"en"`` from ``LABKIT_LANG`` (read on every call so tests can switch)."""
    value = os.environ.get("LABKIT_LANG", "zh").strip().lower()
    return "en" if value.startswith("en") else "zh"


def tr(zh: str, en: str, /, **fmt: object) -> str:
    """Pick the string for the current language and ``str.format`` it with ``fmt``."""
    text = en if lang() == "en" else zh
    return text.format(**fmt) if fmt else text
