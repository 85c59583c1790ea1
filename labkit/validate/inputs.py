"""What ``labkit validate`` runs: the notebooks (checked), their scratch folders, their parameters.

Each notebook gets the papermill parameters ``mode`` and ``labkit_workdir``, a fresh scratch
folder that only labkit empties (it carries :data:`WORKDIR_MARK`), so a stale file from an
earlier run can never make a check pass. ``--workdir`` instead keeps one folder per notebook
across runs (:func:`kept_workdir`), the way a second "Restart Kernel and Run All" in JupyterLab
finds what the first one made: that is how re-running is tested to cost no points.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import tr
from labkit.notebooks import cell_source, cell_tags, load_notebook_json

__all__ = [
    "MODES",
    "OUT_MARK",
    "WORKDIR_MARK",
    "check_inputs",
    "check_seconds",
    "claim_outputs",
    "claim_report",
    "default_notebooks",
    "fresh_workdir",
    "kept_workdir",
    "output_files",
    "parameter_warnings",
]

MODES = ("auto", "plan", "live")
#: Marks a scratch folder as created by ``labkit validate``, so a later run may empty it.
WORKDIR_MARK = ".labkit-workdir"
#: In ``--out``: the names of the files ``labkit validate`` wrote there (JSON), which a later run
#: may replace; any other file in the way is only replaced with ``overwrite`` (moved aside).
OUT_MARK = ".labkit-validate.json"
#: What the ``--report`` file says it is.
REPORT_TOOL = "labkit validate"
#: ``--jobs`` above this is refused.
MAX_JOBS = 256
#: Timeouts: at most a week.
MAX_SECONDS = 7 * 24 * 3600


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
    if out.exists() and not out.is_dir():
        raise InvalidField(
            "out", str(out_dir), tr("不是文件夹", "is not a folder"), tr("给出文件夹名", "give a folder name")
        )
    if jobs is None:
        jobs = min(len(paths), os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InvalidField(
            "jobs",
            jobs,
            tr("应为 1 到 {m} 之间的整数", "must be a whole number from 1 to {m}", m=MAX_JOBS),
            tr("例如 --jobs 2", "e.g. --jobs 2"),
        )
    check_seconds(cell_timeout, "timeout")
    return paths, min(jobs, len(paths))


def check_seconds(value: object, field: str, limit: float = MAX_SECONDS) -> float:
    """``value`` if it is a number of seconds above 0 and at most ``limit``; else
    :class:`InvalidField` naming ``field`` (a ``nan`` timeout makes every cell time out at once)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= limit
    ):
        raise InvalidField(
            field,
            value,
            tr(
                "应为大于 0、不超过 {m} 的秒数",
                "must be a number of seconds above 0 and at most {m}",
                m=int(limit),
            ),
            tr("例如 --{f} 60", "e.g. --{f} 60", f=field.replace("_", "-")),
        )
    return float(value)


def output_files(out: Path, notebook: Path) -> tuple[Path, Path]:
    """Where a notebook's executed copy and kernel log go in ``out``."""
    return out / notebook.name, out / f"{notebook.stem}.kernel.log"


def _cannot_write(field: str, path: Path, exc: OSError) -> InvalidField:
    return InvalidField(
        field,
        str(path),
        tr("无法写入（{e}）", "cannot be written ({e})", e=exc.strerror or exc),
        tr("换一个可以写入的位置", "choose a place you can write to"),
    )


def _listed(out: Path) -> set[str]:
    """The names :data:`OUT_MARK` lists (empty when it is missing or not ours)."""
    try:
        with open(out / OUT_MARK, encoding="utf-8") as fh:
            data = json.loads(fh.read(2**20))
    except (OSError, ValueError, RecursionError):
        return set()
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == REPORT_TOOL else None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()


def claim_outputs(out: Path, files: Sequence[Path], *, overwrite: bool = False) -> list[Path]:
    """Make sure ``labkit validate`` may write ``files`` into ``out``, before any notebook runs.

    ``out`` is created. A file in the way that an earlier ``labkit validate`` wrote (listed in
    :data:`OUT_MARK`, or beside the scratch folder it made for that notebook) is replaced: it is
    what this run makes again. Any other file in the way is refused (:class:`ConsentRequired`)
    unless ``overwrite``; then it is moved aside to ``<name>.labkit-bak-<UTC time>``, and those
    backups are returned. Records ``files`` in :data:`OUT_MARK`.
    """
    from labkit.files import backup_path, write_atomic

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write("out", out, exc) from exc
    listed = _listed(out)
    in_way = [f for f in files if os.path.lexists(f)]
    for f in in_way:
        if f.is_dir() or f.is_symlink():
            raise InvalidField(
                "out",
                str(f),
                tr("不是普通文件", "is not a plain file"),
                tr("换一个 --out", "choose another --out"),
            )
    foreign = [f for f in in_way if f.name not in listed and not _legacy_output(out, f)]
    if foreign and not overwrite:
        raise ConsentRequired(
            tr(
                "覆盖 {o} 中不是 labkit validate 写的 {n} 个文件（{f}）",
                "overwrite {n} file(s) in {o} that labkit validate did not write ({f})",
                o=out,
                n=len(foreign),
                f=", ".join(f.name for f in foreign[:3]) + (", …" if len(foreign) > 3 else ""),
            ),
            tr(
                "换一个 --out，或加上 --overwrite（会保留备份）",
                "choose another --out, or pass --overwrite (a backup is kept)",
            ),
            keyword="overwrite",
        )
    backups = []
    try:
        for f in foreign:
            backups.append(backup_path(f))
            os.rename(f, backups[-1])
        mark = {"tool": REPORT_TOOL, "files": sorted(listed | {f.name for f in files})}
        write_atomic(out / OUT_MARK, json.dumps(mark, ensure_ascii=False, indent=1) + "\n", overwrite=True)
    except OSError as exc:
        raise _cannot_write("out", out, exc) from exc
    return backups


def _legacy_output(out: Path, f: Path) -> bool:
    """An output of a labkit validate from before :data:`OUT_MARK`: its scratch folder is there."""
    stem = f.name.removesuffix(".kernel.log").removesuffix(".ipynb")
    return (out / "work" / stem / WORKDIR_MARK).is_file()


def claim_report(report: Path, *, overwrite: bool = False) -> bool:
    """Check that the ``--report`` file may be written; returns whether to keep a backup of it.

    An earlier ``labkit validate`` report is replaced; any other file only with ``overwrite``, and
    then kept as ``<name>.labkit-bak-<UTC time>``. Its folder is created.
    """
    if report.is_dir():
        raise InvalidField(
            "report", str(report), tr("是一个文件夹", "is a folder"), tr("给出文件名", "give a file name")
        )
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write("report", report, exc) from exc
    if not os.path.lexists(report) or _is_report(report):
        return False
    if not overwrite:
        raise ConsentRequired(
            tr(
                "覆盖 {p}（不是 labkit validate 的报告）",
                "overwrite {p}, which is not a labkit validate report",
                p=report,
            ),
            tr(
                "换一个 --report，或加上 --overwrite（会保留备份）",
                "choose another --report, or pass --overwrite (a backup is kept)",
            ),
            keyword="overwrite",
        )
    return True


def _is_report(path: Path) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > 256 * 2**20:
            return False
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(data, dict):
        return False
    # reports written before the "tool" key: their own set of keys
    return data.get("tool") == REPORT_TOOL or {
        "labkit_version",
        "mode",
        "started",
        "kernel",
        "notebooks",
    } <= set(data)


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
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_write("workdir", path, exc) from exc
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
