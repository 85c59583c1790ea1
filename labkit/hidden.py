"""A value that must never show: tokens (ZeroTier Central, chapter 3) and passwords (the Jupyter
server, chapter 4). ``repr``/``str``/format print ``Name(<hidden>)``, pickling refuses (so it never
travels into a notebook, a worker or a cache), and only :meth:`Hidden.reveal` gives the value, at
the one place that sends it. Subclasses validate in ``__init__`` and name their own field.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Hidden"]


class Hidden:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<hidden>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> Any:  # never pickled into a notebook or a worker
        raise TypeError(f"a {type(self).__name__} is not picklable")
