"""``labkit validate`` on the command line: arguments, progress lines on stderr, the table.

Exit status: 0 when every notebook is ``ok``, 1 otherwise, 2 for bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labkit.errors import LabkitError
from labkit.i18n import option_labels, tr, use_labels, use_lang

from .inputs import MODES
from .report import ICONS, NotebookResult
from .run import main

__all__ = ["add_arguments", "cli"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="notebooks to run (default: notebooks/*.ipynb)",
    )
    parser.add_argument("--mode", choices=MODES, default="auto", help="run mode passed to every notebook")
    parser.add_argument(
        "--jobs", "-j", type=int, default=None, metavar="N", help="notebooks at once (default: CPUs)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("_validate"), metavar="DIR", help="executed notebooks"
    )
    parser.add_argument("--report", type=Path, default=None, metavar="FILE", help="write a JSON report")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files in --out and a --report file that labkit validate did not write "
        "(each kept as NAME.labkit-bak-*); its own earlier outputs are replaced without it",
    )
    parser.add_argument("--timeout", type=float, default=600, metavar="SECONDS", help="limit per cell (600)")
    parser.add_argument("--kernel", default=None, metavar="NAME", help="kernelspec (default: this Python)")
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="course language in the kernels")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each notebook's work folder in DIR/<name> across runs, as re-running it in "
        "JupyterLab does (default: a fresh folder under --out)",
    )


def cli(args: argparse.Namespace) -> int:
    # The table too, not only the kernels, speaks the chosen language; messages name the flags.
    with use_lang(args.lang), use_labels(option_labels(vars(args), positional=("notebooks",))):
        return _cli(args)


def _progress(result: NotebookResult) -> None:
    print(
        f"{ICONS.get(result.status, '?')} {result.path.name} {result.status} {result.duration_s:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def _cli(args: argparse.Namespace) -> int:
    try:
        rep = main(
            notebooks=args.notebooks or None,
            mode=args.mode,
            jobs=args.jobs,
            out_dir=args.out,
            report=args.report,
            cell_timeout=args.timeout,
            kernel_name=args.kernel,
            lang=args.lang,
            on_result=_progress,
            fast_import=True,
            workdir=args.workdir,
            overwrite=args.overwrite,
        )
    except LabkitError as exc:
        print(f"labkit validate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(tr("labkit validate：已中断", "labkit validate: interrupted"), file=sys.stderr)
        return 130
    print(rep.table())
    return rep.exit_code
