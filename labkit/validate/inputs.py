"""What ``labkit validate`` runs: the notebooks (checked), their scratch folders, their parameters.

Each notebook gets the papermill parameters ``mode`` and ``labkit_workdir``, a fresh scratch
folder that only labkit empties (it carries :data:`WORKDIR_MARK`), so a stale file from an
earlier run can never make a check pass. ``--workdir`` instead keeps one folder per notebook
across runs (:func:`kept_workdir`), the way a second "Restart Kernel and Run All" in JupyterLab
finds what the first one made: that is how re-running is tested to cost no points.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import tr
from labkit.notebooks import cell_source, cell_tags, load_notebook_json

__all__ = [
    "MODES",
    "WORKDIR_MARK",
    "check_inputs",
    "default_notebooks",
    "fresh_workdir",
    "kept_workdir",
    "parameter_warnings",
]

MODES = ("auto", "plan", "live")
#: Marks a scratch folder as created by ``labkit validate``, so a later run may empty it.
WORKDIR_MARK = ".labkit-workdir"


def default_notebooks() -> list[Path]:
    """``notebooks/*.ipynb`` below the current directory, else in the repository labkit lives in."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        found = sorted((root / "notebooks").glob("*.ipynb"))
        if found:
            return found
    return []


def check_inputs(
    notebooks: Sequence[Path], mode: str, jobs: int | None, out_dir: Path, cell_timeout: float
) -> tuple[list[Path], int]:
    if mode not in MODES:
        raise InvalidField("mode", mode, "is not a run mode", f"use one of {', '.join(MODES)}")
    if not notebooks:
        raise InvalidField(
            "notebooks",
            "notebooks/*.ipynb",
            "matched no notebook",
            "pass notebook paths, or run from the repository root",
        )
    paths: list[Path] = []
    names: dict[str, Path] = {}
    for nb in notebooks:
        p = Path(nb).resolve()
        if p.suffix != ".ipynb":
            raise InvalidField("notebooks", str(nb), "is not an .ipynb file", "pass Jupyter notebooks")
        if not p.is_file():
            raise InvalidField("notebooks", str(nb), "does not exist", "check the path")
        if p.name in names and names[p.name] != p:
            raise InvalidField(
                "notebooks",
                str(nb),
                f"has the same file name as {names[p.name]}",
                "outputs are named after the notebook; validate them in separate runs with different --out",
            )
        if p not in paths:
            names[p.name] = p
            paths.append(p)
    out = out_dir.resolve()
    if any(p.parent == out for p in paths):
        raise InvalidField("out", str(out_dir), "is the notebooks' own folder", "choose another --out folder")
    if jobs is None:
        jobs = min(len(paths), os.cpu_count() or 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise InvalidField("jobs", jobs, "must be a whole number of at least 1", "e.g. --jobs 2")
    if not cell_timeout or cell_timeout <= 0:
        raise InvalidField(
            "timeout", cell_timeout, "must be a positive number of seconds", "e.g. --timeout 600"
        )
    return paths, min(jobs, len(paths))


def fresh_workdir(path: Path) -> Path:
    """Create (or empty, if labkit made it) the scratch folder a notebook gets as ``labkit_workdir``.

    A stale image from a previous run must not make a check pass, so the folder starts empty; it
    is only emptied when it carries labkit's marker, anything else is left alone.
    """
    if path.exists():
        if (path / WORKDIR_MARK).is_file():
            shutil.rmtree(path)
        elif path.is_dir() and not any(path.iterdir()):
            pass
        else:
            raise ConsentRequired(
                f"use {path} (not created by labkit validate) as a scratch folder",
                "remove it yourself or choose another --out",
            )
    path.mkdir(parents=True, exist_ok=True)
    (path / WORKDIR_MARK).write_text(
        "created by labkit validate; emptied on the next run\n", encoding="utf-8"
    )
    return path


def kept_workdir(path: Path) -> Path:
    """The work folder a notebook gets with ``--workdir``: created when missing, never emptied.

    Whatever an earlier run left there stays, exactly as when a student runs the notebook again
    in the same folder; the steps must then verify it instead of redoing (or refusing) it.
    """
    if path.exists() and not path.is_dir():
        raise InvalidField(
            "workdir",
            str(path),
            tr("不是文件夹", "is not a folder"),
            tr("换一个 --workdir", "choose another --workdir"),
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def parameter_warnings(path: Path) -> list[str]:
    """Course convention: a cell tagged ``parameters`` declares ``mode`` and ``labkit_workdir``."""
    try:
        nb = load_notebook_json(path)
    except (OSError, ValueError) as exc:
        return [tr("无法读取：{e}", "cannot read it: {e}", e=exc)]
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code" and "parameters" in cell_tags(cell):
            names = {
                line.split("=", 1)[0].split(":", 1)[0].strip()
                for line in cell_source(cell).splitlines()
                if "=" in line and not line.lstrip().startswith("#")
            }
            missing = [n for n in ("mode", "labkit_workdir") if n not in names]
            if missing:
                return [
                    tr(
                        "parameters 单元格没有声明 {names}",
                        "the parameters cell does not declare {names}",
                        names=", ".join(missing),
                    )
                ]
            return []
    return [
        tr(
            "没有标记为 parameters 的单元格（参数被插入到最前面）",
            "no cell tagged 'parameters' (papermill put the parameters first)",
        )
    ]
