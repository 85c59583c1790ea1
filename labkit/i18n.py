"""Language selection for notebook narrative, widget labels and every message a person reads.

Simplified Chinese is the course language and the default. The language is a *context variable*,
never a process-wide setting that library code writes: CLI entry points and panels choose it with
:func:`use_lang` (or :func:`set_lang` once per kernel), and everything below reads it through
:func:`tr`. ``LABKIT_LANG=en`` in the environment is only the fallback when nothing chose one, so
a grader running in English and a panel's worker thread in Chinese never see each other's choice.

Threads do not inherit context variables: a thread that must speak the caller's language either
runs in :func:`contextvars.copy_context` (a panel's Run thread) or enters ``use_lang(lang())``
taken from the caller (``labkit validate``'s workers, which must not share other libraries'
context, e.g. jupyter_core's event loop).

Strings are written side by side at the point of use (``tr("运行", "Run")``) so a module's labels
stay next to the code that shows them and no central catalogue can drift.

A message speaks about what its reader sees. In a panel that is a field label and a checkbox
(「允许覆盖（保留备份）」), in Python a keyword (``overwrite=True``). A panel chooses its labels with
:func:`use_labels` (another context variable, set around building, planning and running its step);
messages name a keyword through :func:`field_name`, :func:`consent_hint`, :func:`fill_hint` and
:func:`api_note`, which give the label inside a panel and the keyword outside one.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping

__all__ = [
    "LANGS",
    "api_note",
    "check_lang",
    "consent_hint",
    "field_name",
    "fill_hint",
    "has_field",
    "in_panel",
    "lang",
    "normalize_lang",
    "option_labels",
    "set_lang",
    "tr",
    "use_labels",
    "use_lang",
]

LANGS = ("zh", "en")

#: The language chosen by the caller; ``None`` means "not chosen: use LABKIT_LANG, else zh".
_LANG: contextvars.ContextVar[str | None] = contextvars.ContextVar("labkit_lang", default=None)

#: The labels of the panel whose step is being built, planned or run: step keyword → the label the
#: student sees. ``None`` outside a panel (Python API, CLI): messages then name the keywords.
_LABELS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "labkit_labels", default=None
)


def normalize_lang(value: str | None) -> str:
    """``"en"``, ``"en_US.UTF-8"``, ``"EN"`` → ``"en"``; anything else → ``"zh"``."""
    return "en" if (value or "").strip().lower().startswith("en") else "zh"


def check_lang(value: str | None, field: str = "lang") -> str | None:
    """``value`` if it names a course language (or is ``None``: not chosen); else a clear error."""
    from labkit.errors import InvalidField  # errors speak through tr: imported here, not at the top

    if value is not None and value not in LANGS:
        raise InvalidField(field, value, tr("不是课程语言", "is not a course language"), "zh / en")
    return value


def lang() -> str:
    """``"zh"`` or ``"en"``: the context's choice, else ``LABKIT_LANG``, else Chinese."""
    chosen = _LANG.get()
    return chosen if chosen is not None else normalize_lang(os.environ.get("LABKIT_LANG", "zh"))


@contextlib.contextmanager
def use_lang(value: str | None) -> Iterator[str]:
    """``with use_lang("en"):`` – messages inside the block are English; ``None`` keeps the current."""
    if value is None:
        yield lang()
        return
    token = _LANG.set(normalize_lang(value))
    try:
        yield lang()
    finally:
        _LANG.reset(token)


def set_lang(value: str | None) -> str:
    """Choose the language for the rest of this context (a kernel's main thread, a CLI run)."""
    _LANG.set(None if value is None else normalize_lang(value))
    return lang()


def tr(zh: str, en: str, /, **fmt: object) -> str:
    """Pick the string for the current language and ``str.format`` it with ``fmt``."""
    text = en if lang() == "en" else zh
    return text.format(**fmt) if fmt else text


@contextlib.contextmanager
def use_labels(labels: Mapping[str, str]) -> Iterator[None]:
    """``with use_labels({"overwrite": "允许覆盖（保留备份）"}):`` – messages inside the block name
    the panel's labels instead of the Python keywords (what :class:`labkit.ui.panel.StepPanel` does
    around its step)."""
    token = _LABELS.set(dict(labels))
    try:
        yield
    finally:
        _LABELS.reset(token)


def in_panel() -> bool:
    """Whether the message being written will be read in a panel (inside :func:`use_labels`)."""
    return _LABELS.get() is not None


def field_name(keyword: str) -> str:
    """The name of a field as the reader sees it: the panel's label, else the keyword itself."""
    labels = _LABELS.get()
    return labels.get(keyword, keyword) if labels else keyword


def has_field(keyword: str) -> bool:
    """Whether the reader can set ``keyword``: always in Python, in a panel only if it shows it.

    A hint such as "set fmt=… to override" is noise in a panel without that field: leave it out."""
    labels = _LABELS.get()
    return labels is None or keyword in labels


def consent_hint(keyword: str) -> str:
    """How to say yes to a destructive action: ``勾选「<the checkbox's label>」`` in a panel, else
    ``传入 keyword=True`` (a verb phrase: "如果同意，请…", "unless you …")."""
    labels = _LABELS.get()
    if labels and keyword in labels:
        if labels[keyword].startswith("--"):  # a command line (option_labels): a flag to add
            return tr("加上 {l}", "add {l}", l=labels[keyword])
        return tr("勾选「{l}」", "tick “{l}”", l=labels[keyword])
    return tr("传入 {k}=True", "pass {k}=True", k=keyword)


def fill_hint(keyword: str, value: str) -> str:
    """How to set a field to ``value``: type it into the panel's field, or pass ``keyword="value"``."""
    labels = _LABELS.get()
    if labels and keyword in labels:
        return tr("在「{l}」中填 {v}", "enter {v} in “{l}”", l=labels[keyword], v=value)
    return tr('传入 {k}="{v}"', 'pass {k}="{v}"', k=keyword, v=value)


def api_note(code: str) -> str:
    """`` (code)`` after a course-language description, for Python readers only; empty in a panel.

    E.g. ``tr("先保存镜像（「保存并压缩镜像」一步）", ...) + api_note("SaveImage")``."""
    if in_panel():
        return ""
    return tr("（{c}）", " ({c})", c=code)


def option_labels(dests: Iterator[str] | list[str], positional: tuple[str, ...] = ()) -> dict[str, str]:
    """Labels for a command line: each option's keyword → ``--its-flag`` (``max_mb`` →
    ``--max-mb``), so a CLI's messages name what the user typed (use with :func:`use_labels`)."""
    return {d: "--" + d.replace("_", "-") for d in dests if d not in positional}
