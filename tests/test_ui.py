"""Widget panels, driven through their Python API (no browser) and inside a real kernel."""

from __future__ import annotations

import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.checks import CHECK_MIME, PLAN_MIME, CheckResult
from labkit.errors import InvalidField
from labkit.steps.base import Plan, RunContext, Step
from labkit.ui import session
from labkit.ui.panel import StepPanel

PY = sys.executable


class Sleep(Step):
    check_id = "test.sleep"

    def __init__(self, seconds: float, label: str = "x"):
        if seconds < 0:
            raise InvalidField("seconds", seconds, "is negative", "use 0 or more")
        self.seconds = seconds
        self.label = label

    def plan(self):
        return Plan(
            self.check_id,
            "sleep",
            [[PY, "-c", f"import time; print('go', flush=True); time.sleep({self.seconds})"]],
        )

    def run(self, ctx: RunContext):
        ctx.progress(0.5)
        ctx.run(self.plan().commands[0])
        return {"label": self.label}

    def check(self, ctx, evidence):
        return CheckResult.passed(self.check_id, "slept", **evidence)


def _panel():
    make = lambda seconds, label: Sleep(seconds, label)  # noqa: E731
    make.check_id = Sleep.check_id
    return StepPanel("Sleep", make, {"seconds": (0.0, "seconds"), "label": ("x", "label")})


def test_fields_drive_the_step_and_the_plan(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_LANG", "en")
    panel = _panel()
    box = panel.widget()
    assert panel._run_btn.description == "Run" and panel._stop_btn.disabled
    panel.set(label="hello")
    assert panel._inputs["label"].value == "hello" and "sleep" in panel._plan_html.value
    sess = session(tmp_path / "w", mode="auto")
    result = panel.run("auto")
    assert result.status == "pass" and result.evidence["label"] == "hello"
    assert panel.lines == ["go"] and panel._progress.value == 1.0 and "PASS" in panel._result_html.value
    assert sess.results["test.sleep"] is result and box is panel.widget()
    with pytest.raises(TypeError):
        panel.set(nope=1)


def test_bad_field_value_is_an_error_result_naming_the_field():
    panel = _panel()
    panel.widget()
    panel.set(seconds=-1.0)
    result = panel.run()
    assert result.status == "error" and "seconds" in result.message and "use 0 or more" in result.message
    assert "seconds" in panel._plan_html.value


def test_run_button_runs_in_background_and_stop_cancels():
    panel = _panel()
    panel.widget()
    panel.set(seconds=30.0)
    panel._run_btn.click()
    deadline = time.monotonic() + 10
    while "go" not in panel.lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel._stop_btn.disabled is False
    panel._stop_btn.click()
    result = panel.wait(timeout=15)
    assert result is not None and result.status == "error" and "stopped on request" in result.message
    assert panel._run_btn.disabled is False


def test_chinese_is_the_default_language(monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    panel = _panel()
    panel.widget()
    assert panel._run_btn.description == "运行" and panel._stop_btn.description == "停止"


NOTEBOOK_CODE = """
import sys
from labkit.checks import CheckResult
from labkit.steps.base import Plan, Step
from labkit.ui import session
from labkit.ui.panel import StepPanel

class Touch(Step):
    check_id = "test.touch"
    def __init__(self, name):
        self.path = work.file(name)
    def plan(self):
        code = f"open({str(self.path)!r}, 'w').write('x')"
        return Plan(self.check_id, "create a file", [[sys.executable, "-c", code]])
    def run(self, ctx):
        ctx.run(self.plan().commands[0])
        return {}
    def check(self, ctx, evidence):
        ok = self.path.exists()
        return CheckResult(self.check_id, "pass" if ok else "fail", "file exists" if ok else "missing",
                           {"path": str(self.path)})

work = session(WORKDIR, mode="auto")
make = lambda name: Touch(name)
make.check_id = "test.touch"
panel = StepPanel("Touch", make, {"name": ("hello.txt", "name")})
panel.show("auto")
"""


def test_evidence_is_stored_in_cell_outputs_of_a_real_kernel(tmp_path):
    """The panel's display handle is updated from plan to check result in the saved notebook."""
    code = NOTEBOOK_CODE.replace("WORKDIR", repr(str(tmp_path / "work")))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    payloads = [o["data"][CHECK_MIME] for o in outputs if CHECK_MIME in o.get("data", {})]
    assert len(payloads) == 1 and payloads[0]["status"] == "pass" and payloads[0]["check"] == "test.touch"
    assert not [o for o in outputs if PLAN_MIME in o.get("data", {})], "the plan was replaced by the result"
    assert (tmp_path / "work" / "hello.txt").read_text() == "x"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
