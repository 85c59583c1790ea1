"""The ``labkit`` command. Thin: each verb lives in its own module, imported only when used.

A verb module exposes ``add_arguments(parser)`` and ``cli(args) -> int`` (its exit status), and
forwards to a keyword-only ``main(*, ...)`` that the Python API exposes too. The CLI never imports
the widget layer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from labkit._version import __version__

#: verb → (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "doctor": ("labkit.doctor", "what this host can do for the course, and how to install the rest"),
    "validate": ("labkit.validate", "execute the course notebooks headlessly and report"),
    "guest": ("labkit.guestcli", "prepare / boot the tiny aarch64 test guest"),
    "release": ("labkit.grading.release", "course notebooks → student versions + instructor manifest"),
    "grade": ("labkit.grading.grade", "grade executed student notebooks against a release manifest"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb, (module, help_text) in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).cli(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
