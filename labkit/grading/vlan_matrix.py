"""``labkit vlan matrix REPORT.json --out matrix.png``: who reached whom on the class's virtual LAN.

Each student's graded notebook carries the facts of its ``ch3.zt.reach`` check in ``report.json``
(``students[].notebooks[].checks[]`` with ``check == "ch3.zt.reach"`` and ``facts = {node, nwid,
addresses, peers: [{address, reached, ...}]}``, recorded by :class:`labkit.steps.reach.ReachPeers`
and kept by :mod:`labkit.grading.facts`).

:func:`build_matrix` (pure) makes a students × students matrix: the row reached the column when
any of the column's addresses (the ``/24`` stripped), or its node id, which a peer may also be
named by, is among the row's reached peers; "not reached" when the row tried such an address
and nothing came back; blank when it never tried.
Addresses a student probed that belong to nobody in the report become extra columns (a typo, a
machine outside the class). A student without the check is a row of blanks, marked so.

The report is hostile input: it is read with a size cap, its JSON errors (and Python's own limits)
become one clear message, odd entries are skipped and counted, and the numbers of students,
addresses and peers are bounded. Outputs: a PNG (matplotlib's object API, Agg, the CJK font of
:func:`labkit.plotfont.plot_text`), a CSV beside it and a text table on stdout.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from labkit.errors import LabkitError
from labkit.i18n import tr, use_lang
from labkit.plotfont import LATIN_FONT, cjk_font, plot_text

from .render import _csv

__all__ = [
    "CHECK",
    "Column",
    "Matrix",
    "MatrixError",
    "Member",
    "add_matrix_arguments",
    "build_matrix",
    "draw_png",
    "matrix_cli",
    "matrix_main",
    "members_from_report",
    "read_report",
]

CHECK = "ch3.zt.reach"
MAX_REPORT_BYTES = 64 * 2**20
MAX_STUDENTS = 2000
MAX_ADDRESSES = 16
MAX_PEERS = 256
MAX_EXTRA_COLUMNS = 200
_NODE = re.compile(r"^[0-9a-f]{10}$")
#: Cell values, also the CSV's words.
REACHED, NOT_REACHED, UNTRIED, SELF = "reached", "not_reached", "", "self"


class MatrixError(LabkitError):
    """The report cannot be read as a ``labkit grade`` report."""


@dataclass(frozen=True)
class Member:
    """One student as the matrix sees them: own addresses, probed peers (address → reached)."""

    student: str
    name: str = ""
    node: str = ""
    addresses: tuple[str, ...] = ()
    peers: Mapping[str, bool] = field(default_factory=dict)
    has_check: bool = False

    @property
    def label(self) -> str:
        return (
            f"{self.student} {self.name}".strip() if self.name and self.name != self.student else self.student
        )


@dataclass(frozen=True)
class Column:
    label: str
    addresses: tuple[str, ...]
    student: str = ""  # empty for an address that belongs to nobody in the report


@dataclass(frozen=True)
class Matrix:
    rows: list[Member]
    columns: list[Column]
    cells: list[list[str]]
    skipped: int = 0  # odd entries left out (not a dict, not an address …)

    def counts(self) -> dict[str, int]:
        flat = [c for row in self.cells for c in row]
        return {k: flat.count(k) for k in (REACHED, NOT_REACHED)}

    def csv(self) -> str:
        head = ["student", "name", "has_check", *[c.label for c in self.columns]]
        body = [
            [m.student, m.name, "yes" if m.has_check else "no", *cells]
            for m, cells in zip(self.rows, self.cells, strict=True)
        ]
        return _csv([head, *body], bom=True)

    def text(self) -> str:
        marks = {REACHED: "✓", NOT_REACHED: "✗", UNTRIED: "·", SELF: "—"}
        width = max([len(m.label) for m in self.rows] + [8])
        lines = [" " * width + "  " + " ".join(f"[{i + 1}]" for i in range(len(self.columns)))]
        for m, cells in zip(self.rows, self.cells, strict=True):
            row = " ".join(f"{marks[c]:^{len(str(i + 1)) + 2}}" for i, c in enumerate(cells))
            note = "" if m.has_check else tr("  （无 {c} 结果）", "  (no {c} result)", c=CHECK)
            lines.append(f"{m.label:<{width}}  {row}{note}")
        lines += [f"[{i + 1}] {c.label}" for i, c in enumerate(self.columns)]
        return "\n".join(lines)


# -- reading ---------------------------------------------------------------------------------------
def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``report.json`` as a dict, bounded; a :class:`MatrixError` that says what is wrong otherwise."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise MatrixError(tr("读不了 {p}：{e}", "cannot read {p}: {e}", p=p, e=exc.strerror or exc)) from None
    if len(data) > MAX_REPORT_BYTES:
        raise MatrixError(
            tr(
                "{p}：文件太大（最多 {m} 字节）",
                "{p}: too large (at most {m} bytes)",
                p=p,
                m=MAX_REPORT_BYTES,
            )
        )
    try:
        report = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        why = tr("不是 UTF-8 文本", "not UTF-8 text")
    except RecursionError:
        why = tr("嵌套太深", "nested too deeply")
    except json.JSONDecodeError as exc:
        why = tr("第 {l} 行第 {c} 列有错", "error at line {l} column {c}", l=exc.lineno, c=exc.colno)
    except ValueError:  # e.g. a number with too many digits for int()
        why = tr("含有无法读取的值", "holds a value that cannot be read")
    else:
        why = None
    if why is not None:
        raise MatrixError(tr("{p}：不是 JSON（{e}）", "{p}: not JSON ({e})", p=p, e=why))
    if not isinstance(report, dict) or report.get("tool") != "labkit grade":
        raise MatrixError(
            tr(
                "{p}：不是 labkit grade 写出的 report.json",
                "{p}: not a report.json written by labkit grade",
                p=p,
            )
        )
    if not isinstance(report.get("students"), list):
        raise MatrixError(
            tr(
                "{p}：不是 labkit grade 的 report.json（没有 students 列表）",
                "{p}: not a report.json of labkit grade (no students list)",
                p=p,
            )
        )
    return report


def _address(value: object, *, node: bool = False) -> str | None:
    """An IP address (a ``/len`` dropped); with ``node``, a 10-hex ZeroTier node id too."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip().lower()
    if node and _NODE.match(text):
        return text
    try:
        return str(ipaddress.ip_address(text.split("/", 1)[0]))
    except ValueError:
        return None


def _member(student: Mapping[str, Any]) -> tuple[Member, int]:
    """One student's merged ``ch3.zt.reach`` facts (every notebook that has the check)."""
    skipped = 0
    sid = str(student.get("student_id") or "?")[:80]
    name = str(student.get("name") or "")[:80]
    node, addresses, peers, has_check = "", [], {}, False
    notebooks = student.get("notebooks") if isinstance(student.get("notebooks"), list) else []
    for nb in notebooks[:50]:
        checks = nb.get("checks") if isinstance(nb, dict) and isinstance(nb.get("checks"), list) else []
        for check in checks[:500]:
            if not isinstance(check, dict) or check.get("check") != CHECK:
                continue
            facts = check.get("facts")
            if not isinstance(facts, dict):
                skipped += 1
                continue
            has_check = True
            if isinstance(facts.get("node"), str) and _NODE.match(facts["node"]):
                node = node or facts["node"]
            for a in facts.get("addresses") if isinstance(facts.get("addresses"), list) else []:
                addr = _address(a)
                if addr is None:
                    skipped += 1
                elif addr not in addresses and len(addresses) < MAX_ADDRESSES:
                    addresses.append(addr)
            for p in facts.get("peers") if isinstance(facts.get("peers"), list) else []:
                addr = _address(p.get("address"), node=True) if isinstance(p, dict) else None
                if addr is None:
                    skipped += 1
                elif addr in peers or len(peers) < MAX_PEERS:
                    peers[addr] = peers.get(addr, False) or p.get("reached") is True
    return Member(sid, name, node, tuple(addresses), peers, has_check), skipped


def members_from_report(report: Mapping[str, Any]) -> tuple[list[Member], int]:
    """The students of a report (at most :data:`MAX_STUDENTS`) and how many odd entries were skipped."""
    students = report.get("students") if isinstance(report.get("students"), list) else []
    if len(students) > MAX_STUDENTS:
        raise MatrixError(
            tr(
                "学生太多（{n}，最多 {m}）",
                "too many students ({n}, at most {m})",
                n=len(students),
                m=MAX_STUDENTS,
            )
        )
    members, skipped = [], 0
    for student in students:
        if not isinstance(student, dict):
            skipped += 1
            continue
        member, odd = _member(student)
        members.append(member)
        skipped += odd
    return members, skipped


# -- the matrix (pure) -----------------------------------------------------------------------------
def _cell(row: Member, column: Column) -> str:
    if column.student and column.student == row.student:
        return SELF
    tried = [a for a in column.addresses if a in row.peers]
    if any(row.peers[a] for a in tried):
        return REACHED
    return NOT_REACHED if tried else UNTRIED


def _order(address: str) -> tuple[int, int]:
    if _NODE.match(address):  # a node id: after the IP addresses
        return 10, int(address, 16)
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def build_matrix(members: Sequence[Member], skipped: int = 0) -> Matrix:
    """Students × (students + addresses nobody owns): reached / not reached / not tried / self."""
    owned = {a for m in members for a in (*m.addresses, m.node) if a}
    columns = [Column(m.label, (*m.addresses, *([m.node] if m.node else [])), m.student) for m in members]
    extra = sorted({a for m in members for a in m.peers if a not in owned}, key=_order)
    columns += [Column(a, (a,)) for a in extra[:MAX_EXTRA_COLUMNS]]
    cells = [[_cell(m, c) for c in columns] for m in members]
    return Matrix(list(members), columns, cells, skipped)


# -- the picture -----------------------------------------------------------------------------------
def draw_png(matrix: Matrix, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """The matrix as a PNG: green reached, red not reached, grey not tried, dark the diagonal."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    text = plot_text()
    t = text.label
    codes = {UNTRIED: 0, NOT_REACHED: 1, REACHED: 2, SELF: 3}
    colours = ["#eaeef2", "#cf222e", "#1a7f37", "#57606a"]
    n_rows, n_cols = max(len(matrix.rows), 1), max(len(matrix.columns), 1)
    cell = 0.32 if max(n_rows, n_cols) <= 40 else 0.12
    fig = Figure(
        figsize=(min(60, 3.5 + cell * n_cols), min(60, 2.5 + cell * n_rows)), dpi=dpi, layout="constrained"
    )
    ax = fig.subplots()
    data = [[codes[c] for c in row] for row in matrix.cells] or [[0]]
    ax.imshow(data, cmap=ListedColormap(colours), vmin=0, vmax=3, aspect="equal", interpolation="nearest")
    size = 8 if max(n_rows, n_cols) <= 40 else 4
    ax.set_yticks(
        range(len(matrix.rows)),
        [m.label if m.has_check else f"{m.label} (-)" for m in matrix.rows],
        fontsize=size,
    )
    ax.set_xticks(range(len(matrix.columns)), [c.label for c in matrix.columns], fontsize=size, rotation=90)
    ax.set_xticks([x - 0.5 for x in range(len(matrix.columns) + 1)], minor=True)
    ax.set_yticks([y - 0.5 for y in range(len(matrix.rows) + 1)], minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(t("对端（学生，及不属于任何学生的地址）", "peer (students, then addresses nobody owns)"))
    ax.set_ylabel(t("发起探测的学生", "student who probed"))
    counts = matrix.counts()
    ax.set_title(
        t(
            "虚拟局域网连通矩阵：{n} 名学生，{r} 次到达，{f} 次未到达",
            "Virtual LAN reachability: {n} students, {r} reached, {f} not reached",
            n=len(matrix.rows),
            r=counts[REACHED],
            f=counts[NOT_REACHED],
        )
    )
    legend = [
        Patch(color=colours[2], label=t("到达", "reached")),
        Patch(color=colours[1], label=t("未到达", "not reached")),
        Patch(color=colours[0], label=t("未测试", "not tried")),
        Patch(color=colours[3], label=t("自己", "self")),
    ]
    fig.legend(handles=legend, loc="outside lower center", ncols=4, fontsize=8)
    text.apply(fig)
    names = [*ax.get_xticklabels(), *ax.get_yticklabels()]
    if not text.chinese and any(not n.get_text().isascii() for n in names):
        font = cjk_font()  # English labels, but the students' own names may be Chinese
        for n in names if font else []:
            n.set_fontfamily([font, LATIN_FONT])
    out = Path(path)
    fig.savefig(out, format="png")
    return out


# -- command line ----------------------------------------------------------------------------------
def add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``labkit vlan matrix`` (the coordinator wires the subcommand)."""
    parser.add_argument(
        "report", type=Path, metavar="REPORT.json", help="report.json written by labkit grade"
    )
    parser.add_argument("--out", type=Path, default=Path("matrix.png"), metavar="PNG", help="the picture")
    parser.add_argument(
        "--csv", type=Path, default=None, metavar="CSV", help="the table as CSV (default: beside --out)"
    )
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="message language")


def matrix_main(
    *,
    report: Path,
    out: Path,
    csv: Path | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Read, build, draw, write; the exit status (0 done, 2 the report or an output is unusable)."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    csv = csv or out.with_suffix(".csv")
    try:
        members, skipped = members_from_report(read_report(report))
        matrix = build_matrix(members, skipped)
        draw_png(matrix, out)
        csv.write_text(matrix.csv(), encoding="utf-8")
    except (MatrixError, OSError) as exc:
        detail = (
            exc
            if isinstance(exc, MatrixError)
            else tr(
                "写不了 {p}：{e}",
                "cannot write {p}: {e}",
                p=getattr(exc, "filename", None) or out,
                e=exc.strerror or exc,
            )
        )
        print(f"labkit vlan matrix: {detail}", file=stderr)
        return 2
    print(matrix.text(), file=stdout)
    without = sum(1 for m in members if not m.has_check)
    print(
        tr(
            "已写入 {o} 和 {c}；{n} 名学生，{w} 名没有 {k} 结果，跳过 {s} 个无法识别的条目",
            "wrote {o} and {c}; {n} students, {w} without a {k} result, {s} unrecognised entries skipped",
            o=out,
            c=csv,
            n=len(members),
            w=without,
            k=CHECK,
            s=skipped,
        ),
        file=stderr,
    )
    return 0


def matrix_cli(args: argparse.Namespace) -> int:
    with use_lang(getattr(args, "lang", None)):
        return matrix_main(report=args.report, out=args.out, csv=getattr(args, "csv", None))
