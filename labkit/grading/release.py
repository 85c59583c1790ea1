"""``labkit release``: course notebooks → student versions + the instructor's manifest.

::

    labkit release notebooks/01-virtualization.ipynb --course bigdata-2026 --assignment ch1 \\
        --out release/ --manifest instructor/ch1-manifest.json

Student versions go to ``--out`` under their own names; the manifest (checksums, points, release
ids: see :mod:`labkit.grading.manifest`) goes to ``--manifest``, which must lie outside ``--out``
so it is never handed out with the notebooks. Existing files are only replaced with
``--overwrite`` (the old ones are kept as ``*.labkit-bak-*`` backups); every file is written
atomically. Exit status: 0 done, 2 bad arguments or notebooks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from labkit.errors import InvalidField, LabkitError
from labkit.i18n import tr
from labkit.notebooks import load_notebook_json

from .manifest import Manifest, build_release

__all__ = ["add_arguments", "cli", "main"]


def _dump(data: object) -> str:
    # Jupyter's own layout (nbformat.writes): sorted keys, one-space indent, real UTF-8.
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main(
    *,
    notebooks: Sequence[str | Path],
    course: str,
    assignment: str,
    out_dir: str | Path,
    manifest: str | Path,
    overwrite: bool = False,
) -> Manifest:
    """Release ``notebooks`` for ``course`` / ``assignment``; returns the manifest written."""
    from labkit.files import refuse_overwrite, write_atomic

    out = Path(out_dir).resolve()
    manifest_path = Path(manifest).resolve()
    if not notebooks:
        raise InvalidField("notebooks", "", "is empty", "pass the course notebooks to release")
    if out == manifest_path.parent or out in manifest_path.parents:
        raise InvalidField(
            "manifest",
            str(manifest),
            "is inside the student folder --out",
            "keep the manifest outside what students receive, e.g. --manifest instructor/manifest.json",
        )
    paths = [Path(p).resolve() for p in notebooks]
    names = [p.name for p in paths]
    for p in paths:
        if p.parent == out:
            raise InvalidField(
                "out", str(out_dir), "is the course notebooks' own folder", "choose another --out"
            )
        if names.count(p.name) > 1:
            raise InvalidField(
                "notebooks", str(p), "has the same file name as another notebook", "rename one"
            )
    released = []
    specs = []
    for p in paths:
        try:
            nb = load_notebook_json(p)
        except (OSError, ValueError) as exc:
            raise InvalidField(
                "notebooks", str(p), f"cannot be read ({exc})", "pass a Jupyter notebook"
            ) from exc
        student, spec = build_release(nb, name=p.name, course=course, assignment=assignment)
        released.append(student)
        specs.append(spec)
    result = Manifest(course=course, assignment=assignment, notebooks=tuple(specs))
    # what labkit grade will accept: e.g. no check id in two notebooks, no release id twice
    Manifest.from_json(result.to_json(), where=str(manifest))
    # Refuse before writing anything, so a refusal never leaves half a release.
    for target in [*(out / n for n in names), manifest_path]:
        refuse_overwrite(target, overwrite, field="out" if target != manifest_path else "manifest")
    for name, student in zip(names, released, strict=True):
        write_atomic(out / name, _dump(student), overwrite=overwrite)
    write_atomic(
        manifest_path, json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n", overwrite=overwrite
    )
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK", help="course notebooks")
    parser.add_argument("--course", required=True, help="course id, e.g. bigdata-2026")
    parser.add_argument("--assignment", required=True, help="assignment id, e.g. ch1")
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for the student versions"
    )
    parser.add_argument(
        "--manifest", required=True, type=Path, metavar="FILE", help="instructor manifest (outside --out)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files (backups are kept)")


def cli(args: argparse.Namespace) -> int:
    try:
        manifest = main(
            notebooks=args.notebooks,
            course=args.course,
            assignment=args.assignment,
            out_dir=args.out,
            manifest=args.manifest,
            overwrite=args.overwrite,
        )
    except LabkitError as exc:
        print(f"labkit release: {exc}", file=sys.stderr)
        return 2
    for nb in manifest.notebooks:
        print(
            tr(
                "{name}: {n} 个评分检查，共 {p} 分 → {out}",
                "{name}: {n} graded check(s), {p} point(s) → {out}",
                name=nb.name,
                n=len(nb.checks),
                p=nb.total_points,
                out=Path(args.out) / nb.name,
            )
        )
    print(
        tr(
            "清单：{m}（请自己保管，不要发给学生）",
            "manifest: {m} (keep it; do not hand it out)",
            m=args.manifest,
        )
    )
    return 0
