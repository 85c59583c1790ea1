"""The gradebook as text: CSV files, one feedback page per student, the class summary (pure).

Everything that came from a submission – ids, names, messages, evidence, file names – is escaped
(``html.escape`` in HTML; in CSV a leading ``= + - @`` gets a ``'`` so a spreadsheet does not run
it as a formula). Feedback pages speak the course language (:func:`labkit.i18n.tr`) and never
name other students: who copied from whom is in the instructor's report only. The CSV shapes are
at :func:`gradebook_csv` and :func:`lms_csv`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import html
import io
from collections.abc import Iterable
from urllib.parse import quote

from labkit._version import __version__
from labkit.i18n import lang, tr, use_lang

from .gradebook import UNGRADED, Gradebook, NotebookEntry, StudentGrade

__all__ = [
    "feedback_html",
    "feedback_name",
    "flag_text",
    "gradebook_csv",
    "lms_csv",
    "status_label",
    "summary_html",
]

_COLOURS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "error": "#9a6700",
    "missing": "#57606a",
    "tampered": "#8250df",
    UNGRADED: "#57606a",
    "ok": "#1a7f37",
    "unreadable": "#cf222e",
    "foreign": "#9a6700",
    "duplicate": "#57606a",
}


def status_label(status: str) -> str:
    """The status in the course language (``pass`` → 通过)."""
    return _labels(lang()).get(status, status)


@functools.cache
def _labels(language: str) -> dict[str, str]:
    """Built once per language: a class has thousands of badges."""
    with use_lang(language):
        return {
            "pass": tr("通过", "pass"),
            "fail": tr("未通过", "fail"),
            "missing": tr("缺失", "missing"),
            "tampered": tr("被改动", "tampered"),
            "error": tr("出错", "error"),
            UNGRADED: tr("未评分", "ungraded"),
            "ok": tr("正常", "ok"),
            "unreadable": tr("无法读取", "unreadable"),
            "foreign": tr("不属于本作业", "foreign"),
            "duplicate": tr("重复提交", "duplicate"),
        }


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _csv(rows: Iterable[Iterable[object]], *, bom: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return ("\ufeff" if bom else "") + buf.getvalue()


def feedback_name(student: StudentGrade) -> str:
    """File name of a student's feedback page (ids are file-name safe; unidentified files hashed)."""
    if student.identified:
        return f"{student.student_id}.html"
    digest = hashlib.sha256(student.student_id.encode("utf-8")).hexdigest()[:12]
    return f"unidentified-{digest}.html"


# -- CSV -----------------------------------------------------------------------------------------
def gradebook_csv(gb: Gradebook) -> str:
    """``gradebook.csv``: one row per student × check (``kind=check``) plus one ``kind=total`` row
    per student. A notebook without a readable submission has ``status=ungraded`` rows with *empty*
    points, and the total is empty: never a zero that looks earned. Written with a UTF-8 BOM so
    Excel shows Chinese names correctly."""
    head = [
        "student_id",
        "name",
        "kind",
        "notebook",
        "notebook_status",
        "check",
        "status",
        "points",
        "max_points",
        "reason",
        "message",
        "file",
    ]
    rows: list[list[object]] = [head]
    for st in gb.students:
        for nb in st.notebooks:
            for c in nb.checks:
                points = "" if c.status == UNGRADED else c.points
                rows.append(
                    [
                        st.student_id,
                        st.name,
                        "check",
                        nb.notebook,
                        nb.status,
                        c.check,
                        c.status,
                        points,
                        c.max_points,
                        c.reason,
                        c.message,
                        nb.source or "",
                    ]
                )
        total = st.total
        rows.append(
            [
                st.student_id,
                st.name,
                "total",
                "",
                st.status,
                "",
                st.status,
                "" if total is None else total,
                st.max_points,
                ";".join(st.flags),
                "",
                "",
            ]
        )
    return _csv(rows, bom=True)


def _comment(st: StudentGrade) -> str:
    parts = []
    for nb in st.notebooks:
        if nb.points is None:
            parts.append(f"{nb.notebook}: {status_label(nb.status)} ({nb.reason})")
    tampered = [c.check for nb in st.notebooks for c in nb.checks if c.status == "tampered"]
    if tampered:
        parts.append(tr("被改动的检查：", "tampered checks: ") + ", ".join(tampered))
    return "; ".join(parts)


def lms_csv(gb: Gradebook) -> str:
    """``lms.csv``: ``student_id,name,total,max_points,comment``, one row per identified student
    (plain UTF-8, no BOM, which some LMS importers reject); ``total`` is empty when the student
    could not be graded, and ``comment`` says why."""
    rows: list[list[object]] = [["student_id", "name", "total", "max_points", "comment"]]
    for st in gb.students:
        if st.identified:
            rows.append(
                [st.student_id, st.name, "" if st.total is None else st.total, st.max_points, _comment(st)]
            )
    return _csv(rows, bom=False)


# -- HTML ----------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;
max-width:60em;padding:0 1em;color:#1f2328}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}
th,td{border-bottom:1px solid #d0d7de;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.badge{display:inline-block;border-radius:1em;padding:0 .6em;color:#fff;font-size:90%;white-space:nowrap}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:.4em;margin:.2em 0;font-size:85%}
details summary{cursor:pointer;color:#0969da}
.total{font-size:140%;font-weight:bold}
.note{color:#9a6700}
code{font-size:90%}
"""


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#57606a")
    return f"<span class='badge' style='background:{colour}'>{_esc(status_label(status))}</span>"


def _page(title: str, body: str) -> str:
    code = "en" if lang() == "en" else "zh-CN"
    return (
        f"<!DOCTYPE html>\n<html lang='{code}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        # Feedback pages are static: no script may run, whatever a submission put in a message.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "img-src 'self' file: data:; style-src 'unsafe-inline'\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
        f"<p style='color:#57606a;font-size:85%'>labkit grade {_esc(__version__)}</p></body></html>\n"
    )


def _evidence(evidence: dict[str, str]) -> str:
    if not evidence:
        return ""
    rows = "".join(f"<tr><th>{_esc(k)}</th><td><pre>{_esc(v)}</pre></td></tr>" for k, v in evidence.items())
    return f"<details><summary>{_esc(tr('证据', 'evidence'))}</summary><table>{rows}</table></details>"


def _notebook_section(nb: NotebookEntry) -> str:
    points = nb.points
    score = tr("无法评分", "not graded") if points is None else f"{points} / {nb.max_points}"
    out = [f"<h2>{_esc(nb.notebook)} {_badge(nb.status)} <small>{_esc(score)}</small></h2>"]
    if nb.reason:
        out.append(f"<p class='note'>{_esc(nb.reason)}</p>")
    if nb.status in ("unreadable", "foreign"):
        out.append(
            "<p>"
            + _esc(
                tr(
                    "这份提交无法评分（这不是 0 分）。"
                    "请联系老师，或重新提交一个用 Jupyter 正常保存的笔记本。",
                    "This submission could not be graded (this is not a zero). Contact your instructor "
                    "or submit a notebook saved normally by Jupyter again.",
                )
            )
            + "</p>"
        )
    out.extend(f"<p class='note'>{_esc(n)}</p>" for n in nb.notes if n)
    head = "".join(
        f"<th>{_esc(h)}</th>"
        for h in (tr("检查", "check"), tr("结果", "result"), tr("得分", "points"), tr("说明", "details"))
    )
    rows = []
    for c in nb.checks:
        pts = "" if c.status == UNGRADED else f"{c.points} / {c.max_points}"
        detail = _esc(c.message)
        if c.result_message and c.result_message != c.message and c.status in ("pass", "fail", "error"):
            detail += f"<br><small>{_esc(c.result_message)}</small>"
        if c.status in ("fail", "error"):
            detail += _evidence(c.evidence)
        rows.append(
            f"<tr><td><code>{_esc(c.check)}</code></td><td>{_badge(c.status)}</td>"
            f"<td>{_esc(pts)}</td><td>{detail}</td></tr>"
        )
    out.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    dups = [o for o in nb.others if o.get("status") == "duplicate"]
    if dups:
        names = ", ".join(str(o["source"]) for o in dups)
        out.append(
            "<p class='note'>"
            + _esc(
                tr(
                    "你还提交了这些文件，只评了最新的一份：{n}",
                    "You also submitted these files; only the newest was graded: {n}",
                    n=names,
                )
            )
            + "</p>"
        )
    return "\n".join(out)


def feedback_html(gb: Gradebook, st: StudentGrade) -> str:
    """One student's feedback page (what passed, what failed and why, with evidence)."""
    m = gb.manifest
    title = tr("作业反馈", "Feedback") + f" · {m.course} / {m.assignment}"
    total = st.total
    who = f"{st.student_id} {st.name}".strip() if st.identified else tr("（未识别的学生）", "(unidentified)")
    if total is None:
        score = tr("总分：无法评分（见下文，不是 0 分）", "Total: not graded (see below; this is not a zero)")
    else:
        score = tr("总分：{t} / {m}", "Total: {t} / {m}", t=total, m=st.max_points)
    body = [
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(tr('学生', 'Student'))}: <b>{_esc(who)}</b></p>",
        f"<p class='total'>{_esc(score)}</p>",
    ]
    if not st.identified:
        body.append(
            "<p class='note'>"
            + _esc(
                tr(
                    "无法从文件名或“我是谁”单元格确定学号：请在笔记本开头的 whoami(...) 中填写学号。",
                    "No student id in the file name or the 'who am I' cell: fill in whoami(...) at the top.",
                )
            )
            + "</p>"
        )
    body.extend(_notebook_section(nb) for nb in st.notebooks)
    return _page(title, "\n".join(body))


def flag_text(flag: dict[str, object]) -> str:
    """One line for the instructor about a report flag."""
    kind = flag.get("kind")
    students = ", ".join(map(str, flag.get("students") or []))  # type: ignore[call-overload]
    if kind == "copied":
        checks = list(flag.get("checks") or [])  # type: ignore[call-overload]
        return tr(
            "复制：{s} 的 {n} 个检查结果完全相同（{c}）",
            "copied: {s} share {n} identical check result(s) ({c})",
            s=students,
            n=len(checks),
            c=", ".join(map(str, checks)),
        )
    if kind == "shared-session":
        return tr(
            "同一次内核运行：{s}（{src}）",
            "same kernel run: {s} ({src})",
            s=students,
            src=", ".join(map(str, flag.get("sources") or [])),  # type: ignore[call-overload]
        )
    if kind == "identity-conflict":
        return tr(
            "身份不一致：{src} 文件名为 {f}，“我是谁”为 {d}",
            "identity conflict: {src} is named for {f} but says 'who am I' {d}",
            src=flag.get("source"),
            f=flag.get("file_id"),
            d=flag.get("declared_id"),
        )
    if kind == "unidentified":
        return tr("无法识别学生：{src}", "no student id: {src}", src=flag.get("source"))
    if kind == "skipped-input":
        return tr("未读取：{src}：{m}", "not read: {src}: {m}", src=flag.get("source"), m=flag.get("message"))
    if kind == "duplicate-member":
        return tr(
            "同名成员：{src}：{m}", "same name: {src}: {m}", src=flag.get("source"), m=flag.get("message")
        )
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in flag.items() if k != "kind")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _p(text: str) -> str:
    return f"<p>{_esc(text)}</p>"


def _counts_section(gb: Gradebook, graded: int) -> str:
    files = gb.file_counts()
    return _p(
        tr(
            "文件 {n} 个：正常 {ok}，无法读取 {u}，不属于本作业 {f}，重复 {d}。学生 {s} 人，已评分 {g} 人。",
            "{n} file(s): {ok} ok, {u} unreadable, {f} foreign, {d} duplicate. {s} student(s), {g} graded.",
            n=len(gb.submissions),
            ok=files.get("ok", 0),
            u=files.get("unreadable", 0),
            f=files.get("foreign", 0),
            d=files.get("duplicate", 0),
            s=sum(st.identified for st in gb.students),
            g=graded,
        )
    )


def _score_section(totals: list[int], max_points: int) -> str:
    if not totals:
        return ""
    ordered = sorted(totals)
    return _p(
        tr(
            "满分 {m}；平均 {a:.1f}；中位数 {med}；最低 {lo}；最高 {hi}",
            "max {m}; mean {a:.1f}; median {med}; min {lo}; max scored {hi}",
            m=max_points,
            a=sum(totals) / len(totals),
            med=ordered[len(ordered) // 2],
            lo=ordered[0],
            hi=ordered[-1],
        )
    )


def _head(*titles: str) -> str:
    return "".join(f"<th>{_esc(h)}</th>" for h in titles)


def _checks_section(gb: Gradebook) -> str:
    statuses = ("pass", "fail", "missing", "tampered", "error")
    titles = (tr("检查", "check"), tr("分值", "points"), tr("通过率", "pass rate"))
    head = _head(*titles, *map(status_label, statuses))
    rows = []
    for c in gb.check_stats():
        counts = c["counts"]
        cells = "".join(f"<td>{counts[s]}</td>" for s in statuses)
        rows.append(
            f"<tr><td><code>{_esc(c['check'])}</code></td><td>{c['points']}</td>"
            f"<td>{_pct(c['pass_rate'])}</td>{cells}</tr>"
        )
    heading = _esc(tr("各检查通过率", "Pass rate per check"))
    return f"<h2>{heading}</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def _flags_section(gb: Gradebook) -> str:
    if not gb.flags:
        return ""
    items = "".join(f"<li>{_esc(flag_text(f))}</li>" for f in gb.flags)
    return f"<h2>{_esc(tr('需要查看', 'Needs a look'))}</h2><ul>{items}</ul>"


def _students_section(gb: Gradebook, feedback: dict[str, str]) -> str:
    head = _head(
        tr("学号", "id"), tr("姓名", "name"), tr("总分", "total"), tr("状态", "status"), tr("标记", "flags")
    )
    rows = []
    for st in gb.students:
        link = feedback.get(st.student_id)
        sid = _esc(st.student_id)
        cell = f"<a href='{_esc(quote(link))}'>{sid}</a>" if link else sid
        total = "–" if st.total is None else f"{st.total} / {st.max_points}"
        rows.append(
            f"<tr><td>{cell}</td><td>{_esc(st.name)}</td><td>{_esc(total)}</td>"
            f"<td>{_badge(st.status)}</td><td>{_esc(', '.join(st.flags))}</td></tr>"
        )
    return f"<h2>{_esc(tr('学生', 'Students'))}</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def summary_html(gb: Gradebook, *, plot_name: str | None, feedback: dict[str, str]) -> str:
    """The class summary: file statuses, score statistics, pass rate per check, flags, students."""
    m = gb.manifest
    title = tr("成绩汇总", "Class summary") + f" · {m.course} / {m.assignment}"
    totals = [st.total for st in gb.students if st.identified and st.total is not None]
    plot = ""
    if plot_name:
        plot = f"<p><img src='{_esc(quote(plot_name))}' alt='summary plot' style='max-width:100%'></p>"
    sections = [
        f"<h1>{_esc(title)}</h1>",
        _counts_section(gb, len(totals)),
        _score_section(totals, m.total_points),
        plot,
        _checks_section(gb),
        _flags_section(gb),
        _students_section(gb, feedback),
    ]
    return _page(title, "\n".join(part for part in sections if part))
