"""Chapter 1 in a real browser: JupyterLab + ipywidgets + Chromium, driven like a student would.

What only a real frontend can show: that the panels render (ipywidgets' JavaScript side, the
labkit stylesheet, the Chinese labels), that a click on 运行 reaches the kernel and runs the step,
and that the result of that click – published from a background thread through the cell's display
handle – replaces the cell's earlier output in the notebook JupyterLab saves to disk. The grader
reads exactly that saved ``application/vnd.labkit.check+json`` output.

Needs the system ``chromium`` and the Python ``playwright`` package (both installed by
``scripts/bootstrap.sh test``); the tests fail when they are missing, unless ``LABKIT_NO_BROWSER=1``
asks to skip them. Screenshots go to ``/tmp/labkit-screens/`` and to pytest's temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    CHROMIUM_ARGS,
    CJK_FAMILIES,
    LabServer,
    browser_or_fail,
    checks_in,
    code_notebook,
    command,
    glyph_width_ratio,
    open_notebook,
    rendered_fonts,
    restart_and_run_all,
    set_parameters,
    show_notebook,
    start_lab,
    stop_lab,
    wait_idle,
)

from labkit.checks import verify_payload

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CH1 = REPO / "notebooks" / "01-virtualization.ipynb"
SCREENS = Path("/tmp/labkit-screens")
#: The notebook in the active tab (a hidden tab keeps its cells in the DOM).
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
#: The result recorded for grading, in the cell's own output area (saved with the notebook; the panel
#: itself shows no result).
CELL_RESULT = ".jp-OutputArea-output.jp-RenderedHTMLCommon > .labkit-graded .labkit-check"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    browser_or_fail()  # fail/skip before paying for a server
    root = tmp_path_factory.mktemp("lab-root")
    server = start_lab(root, tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright, chromium = browser_or_fail()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def _ran_all(browser: Any, lab: LabServer, name: str, nb: dict[str, Any]) -> Iterator[tuple[Any, list[str]]]:
    """Write ``nb`` as ``name``, open it in JupyterLab, run all cells; yield (page, page errors)."""
    (lab.root / name).write_text(json.dumps(nb), encoding="utf-8")
    context, page, errors = _new_page(browser)
    try:
        open_notebook(page, lab, name)
        command(page, "notebook:run-all-cells")
        wait_idle(page)
        yield page, errors
    finally:
        context.close()


def _new_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def _screenshot(page: Any, name: str, copy_to: Path) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    out = SCREENS / name
    page.screenshot(path=str(out), full_page=True)
    shutil.copy(out, copy_to / name)
    return out


def _cell(page: Any, index: int) -> Any:
    return page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)


def _saved_cells(server: LabServer, name: str) -> list[dict[str, Any]]:
    """The notebook as JupyterLab wrote it to disk (read with plain json, as a grader would)."""
    return json.loads((server.root / name).read_text(encoding="utf-8"))["cells"]


# -- the whole chapter, run twice and graded -------------------------------------------------
def _grade(tmp_path: Path, manifest: Path, saved: Path, n: int) -> dict[str, Any]:
    """``labkit grade`` one saved notebook as an instructor would (a file named after the student)."""
    subs = tmp_path / f"subs{n}"
    subs.mkdir()
    shutil.copy(saved, subs / f"2023123456_zhangsan_{saved.name}")
    out = tmp_path / f"grades{n}"
    proc = subprocess.run(
        [sys.executable, "-m", "labkit", "grade", str(subs), "--manifest", str(manifest), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "LABKIT_LANG": "en"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _lost_points(report: dict[str, Any]) -> dict[str, Any]:
    (student,) = report["students"]
    lost = {
        c["check"]: (c["status"], c["reason"], c["message"])
        for nb in student["notebooks"]
        for c in nb["checks"]
        if c["status"] != "pass"
    }
    if student["total"] != student["max_points"]:
        lost["(total)"] = (student["total"], student["max_points"])
    return lost


@pytest.mark.qemu
def test_chapter1_run_all_then_restart_and_run_all_keeps_full_marks(
    lab: LabServer, browser: Any, tmp_path: Path
) -> None:
    """The released chapter 1, opened in JupyterLab and run the way students do: Run All, save;
    then "Restart Kernel and Run All" in the same work folder, save. Every panel renders in Chinese
    with a CJK font and fits; both saved files grade full marks; the second run's results say the
    targets were already there and verified instead of refusing to overwrite them."""
    from labkit.grading import release

    manifest = tmp_path / "manifest.json"
    release.main(
        notebooks=[CH1], course="bigdata-2026", assignment="ch1", out_dir=tmp_path / "rel", manifest=manifest
    )
    nb = json.loads((tmp_path / "rel" / CH1.name).read_text(encoding="utf-8"))
    set_parameters(nb, mode="auto", labkit_workdir="work-a")
    name = CH1.name
    (lab.root / name).write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    code = {i: "".join(c["source"]) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"}
    panel_cells = [i for i, src in code.items() if ".show(mode)" in src]
    qcow2 = next(i for i, src in code.items() if "ch1.create_image(" in src and 'fmt="qcow2"' in src)
    saved_runs: list[Path] = []

    context, page, errors = _new_page(browser)
    try:
        assert open_notebook(page, lab, name) == "python3"
        command(page, "notebook:run-all-cells", timeout_ms=240_000)
        wait_idle(page, 120_000)

        notebook = page.locator(NOTEBOOK)
        # One panel per panel cell, each with its own Run and Stop button, labelled in Chinese.
        assert notebook.locator(".labkit-panel").count() == len(panel_cells)
        assert notebook.get_by_role("button", name="运行").count() == len(panel_cells)
        assert notebook.get_by_role("button", name="停止").count() == len(panel_cells)
        assert notebook.locator(".labkit-title", has_text="创建虚拟磁盘").count() == 3
        # The disk panel's plan shows the exact qemu-img command; the cell output below it holds the
        # result of the run that replaced the plan.
        disk = _cell(page, qcow2)
        assert "qemu-img create -f qcow2" in disk.locator(".labkit-panel .labkit-plan pre").first.inner_text()
        assert "PASS" in disk.locator(CELL_RESULT).inner_text()
        # The chapter summary rendered its table.
        assert notebook.locator("table", has_text="ch1.disk.create.qcow2").count() == 1
        # Every panel fits: no horizontal scrollbar, no label cut off.
        layouts = {i: page.evaluate(_LAYOUT_JS, _cell(page, i).element_handle()) for i in panel_cells}
        assert {i: (v["scrolls"], v["cut"]) for i, v in layouts.items() if v["scrolls"] or v["cut"]} == {}

        show_notebook(page)  # the top of the chapter: 1280 x 3000 px
        _screenshot(page, "ch1-lab.png", tmp_path)
        page.set_viewport_size({"width": 1280, "height": 900})
        command(page, "docmanager:save")
        saved_runs.append(shutil.copy(lab.root / name, tmp_path / "run1.ipynb"))

        # The student runs it all again: same notebook, same work folder, fresh kernel.
        restart_and_run_all(page)
        disk = _cell(page, qcow2)
        assert "已存在，已核实" in disk.locator(CELL_RESULT).inner_text()
        # Chinese labels drawn with a CJK font, not empty boxes.
        run_button = disk.get_by_role("button", name="运行")
        assert set(rendered_fonts(page, run_button)) & set(CJK_FAMILIES), rendered_fonts(page, run_button)
        disk.scroll_into_view_if_needed()
        disk.screenshot(path=str(tmp_path / "ch1-rerun-disk.png"))
        SCREENS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "ch1-rerun-disk.png", SCREENS / "ch1-rerun-disk.png")
        show_notebook(page)
        _screenshot(page, "ch1-rerun.png", tmp_path)
        page.set_viewport_size({"width": 1280, "height": 900})
        command(page, "docmanager:save")
        saved_runs.append(shutil.copy(lab.root / name, tmp_path / "run2.ipynb"))
    finally:
        context.close()

    for n, saved_path in enumerate(saved_runs, 1):
        saved = json.loads(Path(saved_path).read_text(encoding="utf-8"))["cells"]
        results = {i: checks_in(saved[i]) for i in panel_cells}
        assert all(len(r) == 1 for r in results.values()), (n, {i: len(r) for i, r in results.items()})
        bad = [
            (p["check"], p["status"], p["message"])
            for (p,) in results.values()
            if p["status"] not in {"pass", "skipped"}
        ]
        assert bad == [], n
        tracebacks = [
            o for c in saved if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"
        ]
        assert tracebacks == [], n
        assert _lost_points(_grade(tmp_path, manifest, Path(saved_path), n)) == {}, n
    # The second run verified what the first made: the graded disk results say so.
    rerun = json.loads(Path(saved_runs[1]).read_text(encoding="utf-8"))["cells"]
    (disk_result,) = checks_in(rerun[qcow2])
    assert disk_result["evidence"]["already_present"] is True
    assert errors == []


# -- a student at work -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def student(lab: LabServer, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Plan-only cells, saved; then a student edits two panels' fields, clicks 运行 in each, saves.

    Returns the saved cells ``before`` and ``after`` the clicks (read from disk) and the page errors.
    """
    name = "student.ipynb"
    nb = code_notebook(
        'import sys\n\nprint(sys.executable)\nmode = "plan"\nfrom labkit.ui import ch1, session\n\n'
        'work = session("work-b", mode=mode)',
        "planner = ch1.consolidation()\nplanner.show(mode)",
        "efi = ch1.efi_image(work)\nefi.show(mode)",
    )
    with _ran_all(browser, lab, name, nb) as (page, errors):
        command(page, "docmanager:save")
        before = _saved_cells(lab, name)
        planner, efi = _cell(page, 1), _cell(page, 2)

        # The consolidation planner: one more workload. The plan follows the field (the kernel has
        # the new value) before the click.
        workloads = planner.locator(".widget-text", has_text="工作负载").locator("input")
        workloads.fill("mail=30%, web=30%, business=30%, db=25%")
        workloads.press("Enter")
        planner.locator(".labkit-panel .labkit-plan", has_text="4 个服务").wait_for()
        planner.get_by_role("button", name="运行").click()
        planner.locator(CELL_RESULT, has_text="PASS").wait_for()
        # The plot slot (the cell's last output) is filled after the result.
        planner.locator(".jp-OutputArea-child").last.locator(".jp-OutputArea-output").filter(
            has=page.locator("img, pre:not(:empty)")
        ).wait_for()

        # efi.img under another name: a real file, written by the real step.
        efi_name = efi.locator(".widget-text", has_text="文件名").locator("input")
        efi_name.fill("student-efi.img")
        efi_name.press("Enter")
        efi.locator(".labkit-panel .labkit-plan", has_text="student-efi.img").wait_for()
        efi.get_by_role("button", name="运行").click()
        efi.locator(CELL_RESULT, has_text="PASS").wait_for()
        show_notebook(page, max_height=8000)  # both panels, results included
        _screenshot(page, "ch1-click.png", tmp_path_factory.mktemp("screens"))

        command(page, "docmanager:save")
        after = _saved_cells(lab, name)
    return {"before": before, "after": after, "errors": errors, "work": (lab.root / "work-b").resolve()}


def test_the_kernel_is_this_interpreter(student: dict[str, Any]) -> None:
    (out,) = student["before"][0]["outputs"]
    assert "".join(out["text"]).strip() == sys.executable


def test_plan_only_cells_save_a_skipped_result(student: dict[str, Any]) -> None:
    for cell, check in zip(student["before"][1:], ("ch1.consolidation", "ch1.firmware.efi"), strict=True):
        (p,) = checks_in(cell)
        assert (p["check"], p["status"], p["mode"]) == (check, "skipped", "plan")


def test_clicked_run_replaces_the_result_and_records_the_edited_fields(student: dict[str, Any]) -> None:
    after = student["after"]
    (cons,) = checks_in(after[1])  # exactly one: the click's result replaced the plan-only one
    assert (cons["check"], cons["status"], cons["mode"]) == ("ch1.consolidation", "pass", "run")
    assert set(cons["evidence"]["assignment"]) == {"mail", "web", "business", "db"}

    (fw,) = checks_in(after[2])
    assert (fw["check"], fw["status"], fw["mode"]) == ("ch1.firmware.efi", "pass", "run")
    dest = Path(fw["evidence"]["dest"])
    assert dest == student["work"] / "student-efi.img"
    assert dest.stat().st_size == fw["evidence"]["size"] == 64 * 2**20
    assert not (student["work"] / "efi.img").exists()  # the plan-only default was never written
    assert student["errors"] == []


def test_clicked_run_saves_the_consolidation_plot(student: dict[str, Any]) -> None:
    assert any("image/png" in o.get("data", {}) for o in student["after"][1]["outputs"])


def test_check_digests_survive_a_save_from_jupyterlab(student: dict[str, Any]) -> None:
    payloads = [p for cell in student["after"] for p in checks_in(cell)]
    assert len(payloads) == 2
    assert all(verify_payload(p) for p in payloads)


# -- Chinese text is drawn, not boxes ---------------------------------------------------------
def test_chinese_labels_render_with_a_cjk_font(lab: LabServer, browser: Any, tmp_path: Path) -> None:
    """The 运行 / 停止 buttons and a field label are drawn with a font that has Chinese glyphs: the
    fonts Chromium really used (DevTools) are a CJK family, and 运行 is as wide as two CJK glyphs,
    not two empty boxes. A machine without a CJK font (see scripts/bootstrap.sh) fails here."""
    nb = code_notebook(
        'from labkit.ui import ch1, session\n\nwork = session("work-d", mode="plan")',
        'efi = ch1.efi_image(work)\nefi.show("plan")',
    )
    with _ran_all(browser, lab, "cjk.ipynb", nb) as (page, errors):
        panel = _cell(page, 1)
        run = panel.get_by_role("button", name="运行")
        run.wait_for()
        targets = {
            "运行": run,
            "停止": panel.get_by_role("button", name="停止"),
            "文件名": panel.locator(".widget-text", has_text="文件名").locator("label"),
            "制作 efi.img": panel.locator(".labkit-title"),
        }
        for text, where in targets.items():
            fonts = rendered_fonts(page, where)
            cjk = {f: n for f, n in fonts.items() if f in CJK_FAMILIES}
            assert cjk, f"{text!r} drawn without a CJK font: {fonts}"
            chinese = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
            assert sum(cjk.values()) >= chinese, (text, fonts)
        assert glyph_width_ratio(run, "运行") > 1.3
        panel.scroll_into_view_if_needed()
        _screenshot(page, "ch1-cjk.png", tmp_path)
        assert errors == []


# -- the kernel's language -------------------------------------------------------------------
def test_a_click_runs_in_the_language_the_first_cell_chose(lab: LabServer, browser: Any) -> None:
    """``session(..., lang="en")`` in the first cell: the panels are labelled in English, and the
    step a click on Run starts (on a thread, from a widget message) reports in English too."""
    name = "english.ipynb"
    nb = code_notebook(
        'from labkit.ui import ch1, session\n\nwork = session("work-c", mode="plan", lang="en")',
        'planner = ch1.consolidation()\nplanner.show("plan")',
    )
    with _ran_all(browser, lab, name, nb) as (page, errors):
        planner = _cell(page, 1)
        planner.locator(".labkit-title", has_text="Server consolidation planner").wait_for()
        planner.get_by_role("button", name="Run").click()
        planner.locator(CELL_RESULT, has_text="PASS").wait_for()  # the plan-only result said SKIPPED
        command(page, "docmanager:save")
    (result,) = checks_in(_saved_cells(lab, name)[1])
    assert (result["status"], result["mode"]) == ("pass", "run")
    assert result["message"] == "2 of 3 hosts used; freed: server-3"
    assert errors == []


# -- experimenting, and what a panel looks like ------------------------------------------------
#: A step a student can make pass or fail (the checkbox), printing ``lines`` lines first.
_ATTEMPT_CELL = """import sys
from labkit.checks import CheckResult
from labkit.steps.base import Plan, Step
from labkit.ui import ch1, session
from labkit.ui.panel import StepPanel, step_factory

class Attempt(Step):
    check_id = "test.attempt"
    def __init__(self, ok=True, lines=3):
        self.ok, self.lines = ok, lines
    def plan(self):
        code = f"for i in range({self.lines}): print('console line', i, flush=True)"
        return Plan(self.check_id, "print lines", [[sys.executable, "-c", code]])
    def run(self, ctx):
        ctx.run(self.plan().commands[0])
        return {}
    def check(self, ctx, evidence):
        status, message = ("pass", "好的取值") if self.ok else ("fail", "不好的取值")
        return CheckResult(self.check_id, status, message)

work = session("work-e", mode="auto")"""

#: Per panel: elements that show a horizontal scrollbar, cut-off labels, and the console's state.
_LAYOUT_JS = """(cell) => {
  const out = {scrolls: [], cut: [], console: null};
  const all = '.labkit-panel, .labkit-panel *, .labkit-graded, .labkit-graded *';
  for (const el of cell.querySelectorAll(all)) {
    const ox = getComputedStyle(el).overflowX;
    if ((ox === 'auto' || ox === 'scroll') && el.scrollWidth > el.clientWidth + 1) {
      out.scrolls.push(el.className + ' ' + el.scrollWidth + '>' + el.clientWidth);
    }
  }
  const panel = cell.querySelector('.labkit-panel');
  if (panel && panel.scrollWidth > panel.clientWidth + 1) {
    out.scrolls.push('panel ' + panel.scrollWidth + '>' + panel.clientWidth);
  }
  for (const el of cell.querySelectorAll('.labkit-panel .jupyter-widget-label, .labkit-panel label')) {
    if (el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1) { out.cut.push(el.textContent); }
  }
  const box = cell.querySelector('.labkit-console');
  if (box) {
    const lum = (c) => {
      const [r, g, b] = c.match(/[0-9.]+/g).slice(0, 3).map((v) => {
        v = Number(v) / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const s = getComputedStyle(box);
    const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
    const text = box.querySelector('pre');
    // the rectangle of the console's very last character: on screen inside the box?
    const walker = document.createTreeWalker(text, NodeFilter.SHOW_TEXT);
    let node = null;
    while (walker.nextNode()) { if (walker.currentNode.textContent.trim()) { node = walker.currentNode; } }
    const range = document.createRange();
    const end = node.textContent.trimEnd().length;
    range.setStart(node, end - 1);
    range.setEnd(node, end);
    const [last, view] = [range.getBoundingClientRect(), box.getBoundingClientRect()];
    out.console = {
      contrast: (a + 0.05) / (b + 0.05),
      lastVisible: last.top >= view.top - 1 && last.bottom <= view.bottom + 1,
      scrolls: box.scrollHeight > box.clientHeight,
      last: text.textContent.trim().split('\\n').pop(),
    };
  }
  return out;
}"""


def test_experimenting_in_the_browser_keeps_the_graded_pass(
    lab: LabServer, browser: Any, tmp_path: Path
) -> None:
    """A student's pass, then a failing try: the saved cell still holds the pass (one check
    payload, labelled as graded) and a note about the try; "记录这次结果" records the try. The
    panels fit (no horizontal scrollbar, no cut label) and the console shows its newest line."""
    name = "experiment.ipynb"
    nb = code_notebook(
        _ATTEMPT_CELL,
        'p = StepPanel("试验", step_factory(Attempt), {"ok": (True, "取值正确"), "lines": (3, "行数")})\n'
        'p.show("auto")',
        'cv = ch1.convert_image(work, src="a.vhd", src_format="vhd", dst="a.qcow2")\ncv.show("plan")',
        'vm = ch1.vm_command(work)\nvm.show("plan")',
    )
    with _ran_all(browser, lab, name, nb) as (page, errors):
        page.set_viewport_size({"width": 1000, "height": 900})
        cell = _cell(page, 1)
        graded = cell.locator(".jp-OutputArea-output > .labkit-graded")
        graded.filter(has_text="评分用的结果").locator(".labkit-check", has_text="PASS").wait_for()

        # a long console: 80 lines; the newest one is on screen
        lines = cell.locator(".widget-text", has_text="行数").locator("input")
        lines.fill("80")
        lines.press("Enter")
        cell.get_by_role("button", name="运行").click()
        cell.locator(".labkit-console", has_text="console line 79").wait_for()
        cell.locator(".labkit-panel", has_text="结果已记录").wait_for()

        # a bad value: the attempt fails, the graded pass stays, the panel and the output say so
        cell.locator(".labkit-panel input[type=checkbox]").uncheck()
        cell.get_by_role("button", name="运行").click()
        cell.locator(".labkit-attempt", has_text="未用于评分").wait_for()
        cell.locator(".labkit-panel", has_text="评分仍用").wait_for()
        assert "PASS" in graded.inner_text()
        layouts = [page.evaluate(_LAYOUT_JS, _cell(page, i).element_handle()) for i in (1, 2, 3)]
        show_notebook(page, width=1000, max_height=5000)
        _screenshot(page, "ch1-experiment.png", tmp_path)
        page.set_viewport_size({"width": 1000, "height": 900})
        command(page, "docmanager:save")
        kept = _saved_cells(lab, name)[1]

        cell.get_by_role("button", name="记录这次结果（用于评分）").click()
        graded.locator(".labkit-check", has_text="FAIL").wait_for()
        command(page, "docmanager:save")
        recorded = _saved_cells(lab, name)[1]

    assert [(p["status"], p["message"]) for p in checks_in(kept)] == [("pass", "好的取值")]
    notes = ["".join(o["data"].get("text/html", "")) for o in kept["outputs"] if "data" in o]
    assert sum("未用于评分" in n for n in notes) == 1
    assert [(p["status"], p["message"]) for p in checks_in(recorded)] == [("fail", "不好的取值")]
    assert not any(
        "未用于评分" in "".join(o.get("data", {}).get("text/html", "")) for o in recorded["outputs"]
    )

    for layout in layouts:
        assert layout["scrolls"] == [], layout["scrolls"]
        assert layout["cut"] == [], layout["cut"]
    console = layouts[0]["console"]
    assert console["last"] == "console line 79"
    assert console["scrolls"] and console["lastVisible"], console
    assert console["contrast"] >= 7, console
    assert errors == []
