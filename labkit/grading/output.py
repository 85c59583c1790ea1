"""``labkit grade --out``: which folder may receive grades, and how it is replaced whole.

The rules, checked before any submission is read (:meth:`OutputFolder.claim`):

* a new or empty folder is used;
* a previous ``labkit grade`` output (``report.json`` says so, nothing else in the folder but
  :data:`OUTPUT_NAMES` and earlier report backups) of the **same course and assignment** is
  replaced: instructors re-grade. Its ``report.json`` is kept in the new set as
  ``report.json.labkit-bak-<UTC time>`` (with the backups it already held), so an earlier run's
  grades are never lost;
* a previous output of **another** course or assignment is replaced only with ``overwrite``
  (``--overwrite``), and then kept whole beside it as ``<out>.labkit-bak-<UTC time>``;
* a folder holding anything else is never used (choose another ``--out``).

The new set is written into a hidden sibling (``.<out>.labkit-tmp-*``), created up front so an
``--out`` that cannot be written (``/proc/x``, below a file) is refused before grading starts,
and swapped in with two renames: readers see the previous complete set or the new one, and a
crash or Ctrl-C while building leaves ``out`` untouched (:meth:`OutputFolder.publish`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import ConsentRequired, InvalidField
from labkit.files import TMP_MARK, backup_path
from labkit.i18n import tr

from .manifest import Manifest

__all__ = ["OUTPUT_NAMES", "REPORT", "REPORT_BACKUP", "TOOL", "OutputFolder"]

REPORT = "report.json"
TOOL = "labkit grade"
#: Earlier runs' reports kept in the output folder: ``report.json.labkit-bak-<UTC time>[-N]``.
REPORT_BACKUP = f"{REPORT}.labkit-bak-"
#: Everything ``labkit grade`` writes into ``--out`` (besides report backups); a folder holding
#: anything else is not ours: ``gradebook.csv``, ``lms.csv``, ``report.json``, ``summary.html``
#: with ``summary.png``, and ``feedback/<student id>.html``.
OUTPUT_NAMES = frozenset({"gradebook.csv", "lms.csv", REPORT, "summary.html", "summary.png", "feedback"})
#: A previous report larger than this is not read to recognise it (it is then not ours).
_MAX_REPORT_BYTES = 256 * 2**20


def _cannot_write(out: Path, exc: OSError) -> InvalidField:
    return InvalidField(
        "out",
        str(out),
        tr("无法写入（{e}）", "cannot be written ({e})", e=exc.strerror or exc),
        tr("换一个可以写入的文件夹", "choose a folder you can write to"),
    )


def _previous_run(out: Path) -> tuple[str, str] | None:
    """``(course, assignment)`` of the ``labkit grade`` output in ``out``; ``None``: not ours."""
    report = out / REPORT
    try:
        if not report.is_file() or report.is_symlink() or report.stat().st_size > _MAX_REPORT_BYTES:
            return None
        with open(report, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("tool") != TOOL:
        return None
    return str(data.get("course")), str(data.get("assignment"))


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created (deepest last)."""
    missing = []
    p = folder
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


@dataclass
class OutputFolder:
    """``--out`` claimed for one run: its staging folder exists, how ``out`` is replaced is decided."""

    out: Path
    stage: Path
    keep_report: bool = False  # same course and assignment: the earlier report goes into the new set
    keep_folder: bool = False  # overwrite: the earlier folder is kept whole as a backup
    created: list[Path] = field(default_factory=list)  # parent folders this run created

    @classmethod
    def claim(cls, out: Path, manifest: Manifest, *, overwrite: bool = False) -> OutputFolder:
        """Check ``out`` (module docstring) and create the staging folder beside it.

        Raises :class:`InvalidField` (not a folder, cannot be written) or
        :class:`ConsentRequired` (someone else's files, another assignment's grades).
        """
        keep_report = keep_folder = False
        if os.path.lexists(out):
            if not out.is_dir() or out.is_symlink():
                raise InvalidField(
                    "out",
                    str(out),
                    tr("不是普通文件夹", "is not a plain folder"),
                    tr("给出文件夹名", "give a folder name"),
                )
            names = {p.name for p in out.iterdir()}
            if names:
                keep_report, keep_folder = cls._replacing(out, names, manifest, overwrite)
        try:
            created = _make_parents(out.parent)
            stamp = f"{os.getpid()}-{time.monotonic_ns()}"
            stage = out.parent / f".{out.name}{TMP_MARK}-{stamp}"
            stage.mkdir()
        except OSError as exc:
            raise _cannot_write(out, exc) from exc
        return cls(out, stage, keep_report, keep_folder, created)

    @staticmethod
    def _replacing(out: Path, names: set[str], manifest: Manifest, overwrite: bool) -> tuple[bool, bool]:
        previous = _previous_run(out)
        foreign = sorted(n for n in names if n not in OUTPUT_NAMES and not n.startswith(REPORT_BACKUP))
        if previous is None or foreign:
            raise ConsentRequired(
                tr(
                    "替换 {o}，其中有不是 labkit grade 写的文件（{f}）",
                    "replace {o}, which holds files labkit grade did not write ({f})",
                    o=out,
                    f=", ".join(foreign[:3] or [REPORT]),
                ),
                tr("换一个空的或新的 --out 文件夹", "choose an empty or new --out folder"),
            )
        if previous == (manifest.course, manifest.assignment):
            return True, False
        if not overwrite:
            raise ConsentRequired(
                tr(
                    "用 {c}/{a} 的成绩替换 {o} 中 {pc}/{pa} 的成绩",
                    "replace the grades of {pc}/{pa} in {o} with those of {c}/{a}",
                    o=out,
                    c=manifest.course,
                    a=manifest.assignment,
                    pc=previous[0],
                    pa=previous[1],
                ),
                tr(
                    "换一个 --out，或加上 --overwrite（原来的文件夹会保留为 {b}）",
                    "choose another --out, or pass --overwrite (the earlier folder is kept as {b})",
                    b=f"{out.name}.labkit-bak-…",
                ),
                keyword="overwrite",
            )
        return False, True

    def publish(self, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Let ``build`` write a complete output set into the staging folder, then swap it in.

        The folder is the unit of atomicity (renaming 300 pages over existing ones one by one is
        also much slower on ext4, which flushes each replaced file). Raises :class:`InvalidField`
        when the set cannot be written; the staging folder is removed on any failure.
        """
        out, stage = self.out, self.stage
        try:
            outputs = build(stage)
            if self.keep_report:
                self._carry_reports(stage)
            old = None
            if os.path.lexists(out):
                old = (
                    backup_path(out)
                    if self.keep_folder
                    else out.parent / f".{out.name}.labkit-old-{stage.name}"
                )
                os.rename(out, old)
            try:
                os.rename(stage, out)
            except OSError:
                if old is not None:
                    os.rename(old, out)
                raise
        except OSError as exc:
            self.abandon()
            raise _cannot_write(out, exc) from exc
        except BaseException:
            self.abandon()
            raise
        if old is not None and not self.keep_folder:
            shutil.rmtree(old, ignore_errors=True)
        return outputs

    def _carry_reports(self, stage: Path) -> None:
        """The earlier report and the backups it kept go into the new set (hard links: no copy)."""
        names = [n.name for n in self.out.iterdir() if n.name.startswith(REPORT_BACKUP)]
        pairs = [(self.out / n, stage / n) for n in names]
        pairs.append((self.out / REPORT, stage / backup_path(self.out / REPORT).name))
        for src, dst in pairs:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

    def abandon(self) -> None:
        """Remove the staging folder and the parent folders this run created (a refusal or a
        crash leaves nothing behind)."""
        shutil.rmtree(self.stage, ignore_errors=True)
        for d in reversed(self.created):
            with contextlib.suppress(OSError):
                d.rmdir()
