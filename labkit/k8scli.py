"""``labkit k8s validate FILES... [--k8s-version X]``: offline validation of Kubernetes manifests.

Every problem of every document, one line each: ``file:doc#:field.path: message`` (warnings say
so and do not fail). Exit status: 0 when every file is valid, 1 when a problem was found, 2 for
bad arguments (an unknown ``--k8s-version`` lists the supported ones; a file that cannot be read).
The validator is :func:`labkit.logic.k8s_rules.validate_text` against the schemas of
:mod:`labkit.k8s_schemas`, loaded once for all files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from labkit.errors import LabkitError
from labkit.i18n import option_labels, tr, use_labels, use_lang

__all__ = ["add_arguments", "cli", "main", "read_manifest"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="k8s_action", metavar="ACTION")
    sub.required = True
    v = sub.add_parser(
        "validate",
        help="validate manifests offline against the Kubernetes schemas (every problem, with its field path)",
        description="validate manifests offline against the Kubernetes schemas; exit 0 valid, 1 problems, "
        "2 bad arguments",
    )
    v.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="YAML manifests (multi-document allowed)"
    )
    v.add_argument(
        "--k8s-version", default=None, metavar="X", help="Kubernetes version, e.g. 1.30 (default: newest)"
    )
    v.add_argument("--lang", choices=("zh", "en"), default=None, help="message language")


def read_manifest(path: Path) -> str:
    """A manifest file's text (bounded: a file over the validator's limit is read only so far)."""
    from labkit.logic.k8s_yaml import MAX_BYTES

    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise LabkitError(
            tr(
                "{p}：文件太大（最多 {m} 字节）",
                "{p}: file too large (at most {m} bytes)",
                p=path,
                m=MAX_BYTES,
            )
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabkitError(tr("{p}：不是 UTF-8 文本", "{p}: not UTF-8 text", p=path)) from exc


def main(
    *,
    files: Sequence[Path],
    k8s_version: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Validate ``files``; print one line per problem on ``out``; the exit status."""
    from labkit.k8s_schemas import import_jsonschema, load_schemas
    from labkit.logic.k8s_rules import validate_text

    out = out or sys.stdout
    err = err or sys.stderr
    import_jsonschema(fast=True)
    try:
        schemas = load_schemas(k8s_version)
    except LabkitError as exc:
        print(f"labkit k8s validate: {exc}", file=err)
        return 2
    status = 0
    for path in files:
        try:
            text = read_manifest(path)
        except (OSError, LabkitError) as exc:
            print(
                f"labkit k8s validate: {tr('读不了 {p}：{e}', 'cannot read {p}: {e}', p=path, e=exc)}",
                file=err,
            )
            status = 2
            continue
        report = validate_text(text, schemas)
        for problem in report.problems:
            print(problem.line_for(str(path)), file=out)
        if not report.ok:
            status = max(status, 1)
    if status == 0:
        print(
            tr(
                "全部有效（Kubernetes {v} 结构定义，离线校验）",
                "all valid (Kubernetes {v} schemas, offline)",
                v=schemas.version,
            ),
            file=err,
        )
    return status


def cli(args: argparse.Namespace) -> int:
    with use_lang(args.lang), use_labels(option_labels(vars(args), positional=("files",))):
        return main(files=args.files, k8s_version=args.k8s_version)
