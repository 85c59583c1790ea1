"""The ``labkit`` command. Thin: each verb lives in its own module, imported only when used.

A verb module exposes ``add_arguments(parser)`` and ``cli(args) -> int`` (its exit status), and
forwards to a keyword-only ``main(*, ...)`` that the Python API exposes too. Building the parser
(and ``labkit --help``) imports no verb module: a verb's sub-parser adds its options from the
verb module the first time it parses or prints help (``labkit VERB ...``, ``labkit VERB
--help``), so the options stay next to the code that reads them. Bad arguments exit with
status 2. The CLI never imports the widget layer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from labkit._version import __version__

#: verb → (module, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "doctor": ("labkit.doctor", "what this host can do for the course, and how to install the rest"),
    "validate": ("labkit.validate", "execute the course notebooks headlessly and report"),
    "guest": ("labkit.guestcli", "prepare / boot the tiny aarch64 test guest"),
    "release": ("labkit.grading.release", "course notebooks → student versions + instructor manifest"),
    "grade": ("labkit.grading.grade", "grade executed student notebooks against a release manifest"),
    "k8s": ("labkit.k8scli", "Kubernetes manifests: validate offline against the real schemas"),
    "vlan": ("labkit.vlancli", "ZeroTier virtual LAN, instructor side: authorize students' node ids"),
}


class _VerbParser(argparse.ArgumentParser):
    """A sub-parser whose options come from ``verb_module.add_arguments``, imported on first use."""

    def __init__(self, *, verb_module: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._verb_module = verb_module

    def _load(self) -> None:
        module, self._verb_module = self._verb_module, None
        if module is not None:
            importlib.import_module(module).add_arguments(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._load()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._load()
        return super().format_usage()

    def format_help(self) -> str:
        self._load()
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    """The ``labkit`` parser; no verb module is imported until its verb is parsed or helped."""
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_VerbParser)
    sub.required = True
    for verb, (module, help_text) in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text, verb_module=module)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).cli(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
