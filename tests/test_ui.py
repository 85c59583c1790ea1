"""Widget panels, driven like the frontend drives them (set a widget's value, click a button) and
inside a real kernel. Only the panels' public surface is used: ``panel.controls()``."""

from __future__ import annotations

import inspect
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from labkit.checks import CHECK_MIME, PLAN_MIME, CheckResult
from labkit.errors import InvalidField
from labkit.i18n import lang, set_lang, use_lang
from labkit.steps.base import Plan, RunContext, Step
from labkit.ui import OUTSIDE_FIELD, ch1, ch2, ch2b, current_session, outside_label, session
from labkit.ui.panel import StepFactory, StepPanel, blank_is_none, step_factory

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
        from labkit.i18n import tr

        return CheckResult.passed(self.check_id, tr("睡好了", "slept"), **evidence)


class Files(Step):
    """Records what the factory handed it."""

    check_id = "test.files"

    def __init__(self, path: Path, other: Path | None = None, fmt: str | None = None, fixed: int = 0):
        self.path, self.other, self.fmt, self.fixed = path, other, fmt, fixed


def _panel() -> StepPanel:
    return StepPanel("Sleep", step_factory(Sleep), {"seconds": (0.0, "seconds"), "label": ("x", "label")})


@pytest.fixture(autouse=True)
def _kernel_language():
    """Each test starts as a fresh kernel does: no language chosen (Chinese unless LABKIT_LANG)."""
    set_lang(None)
    yield
    set_lang(None)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


# -- step_factory ------------------------------------------------------------------------------
def test_step_factory_maps_paths_renames_converts_and_fixes(tmp_path):
    work = session(tmp_path / "w")
    make = step_factory(
        Files,
        work=work,
        paths=("name", "other"),
        rename={"name": "path"},
        convert={"fmt": blank_is_none, "other": blank_is_none},
        fixed=7,
    )
    step = make(name="disk.qcow2", other="", fmt="")
    assert isinstance(step, Files)
    assert step.path == work.path / "disk.qcow2"
    assert step.other is None  # an empty optional path is "not given", not the work directory
    assert step.fmt is None
    assert step.fixed == 7
    assert make(name="a", other="b", fmt="raw").other == work.path / "b"


def test_step_factory_carries_the_check_id_and_names_the_bad_field(tmp_path):
    work = session(tmp_path / "w")
    make = step_factory(Files, work=work, paths=("src",), rename={"src": "path"})
    assert isinstance(make, StepFactory)
    assert make.check_id == "test.files"
    with pytest.raises(InvalidField) as outside:
        make(src="../escape.img")
    assert outside.value.field == "src"
    with pytest.raises(InvalidField) as empty:
        make(src=" ")
    assert empty.value.field == "src"


def test_step_factory_needs_the_work_session_for_paths():
    with pytest.raises(TypeError):
        step_factory(Files, paths=("name",))


# -- a panel driven like the frontend ---------------------------------------------------------
def test_fields_drive_the_step_and_the_plan(tmp_path):
    set_lang("en")
    panel = _panel()
    c = panel.controls()
    assert c.run.description == "Run"
    assert c.stop.disabled is True
    c.fields["label"].value = "hello"  # what typing into the field does
    assert panel.values()["label"] == "hello"
    assert "sleep" in c.plan.value
    sess = session(tmp_path / "w", mode="auto")
    result = panel.run("auto")
    assert result.status == "pass"
    assert result.evidence["label"] == "hello"
    assert panel.lines == ["go"]
    assert c.progress.value == 1.0
    assert panel.recorded is result  # the first attempt is recorded for grading
    assert "recorded below" in c.status.value
    assert sess.results["test.sleep"] is result
    assert panel.widget() is c.box
    assert panel.controls() is c


def test_set_from_code_reaches_the_widget_and_rejects_unknown_fields():
    panel = _panel()
    panel.set(label="before")  # before the widgets exist
    c = panel.controls()
    assert c.fields["label"].value == "before"
    panel.set(label="after")
    assert c.fields["label"].value == "after"
    with pytest.raises(TypeError):
        panel.set(nope=1)


def test_bad_field_value_is_an_error_result_naming_the_field():
    panel = _panel()
    c = panel.controls()
    c.fields["seconds"].value = -1.0
    assert "seconds" in c.plan.value
    result = panel.run()
    assert result.status == "error"
    assert "seconds" in result.message
    assert "use 0 or more" in result.message


def test_run_button_runs_in_background_and_stop_cancels():
    set_lang("zh")
    panel = _panel()
    c = panel.controls()
    c.fields["seconds"].value = 30.0
    c.run.click()
    _wait_for(lambda: "go" in c.console.value)
    assert panel.lines == ["go"]
    assert c.stop.disabled is False
    assert c.run.disabled is True
    c.stop.click()
    result = panel.wait(timeout=15)
    assert result is not None
    assert result.status == "skipped"
    assert result.evidence["skip_reason"] == "stopped"
    assert result.message == "已由你停止"
    assert panel.recorded is result  # nothing was recorded before: the stop is what happened
    assert c.run.disabled is False
    assert c.stop.disabled is True


def test_chinese_is_the_default_language(monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    c = _panel().controls()
    assert c.run.description == "运行"
    assert c.stop.description == "停止"


# -- experimenting keeps the graded result ----------------------------------------------------
class Attempt(Step):
    """Prints ``lines`` numbered lines, sleeps ``seconds``, then passes when ``ok`` (a student's
    good or bad value); on Stop a tool that fails in its own way when cut off (``rude``)."""

    check_id = "test.attempt"

    def __init__(self, ok: bool = True, seconds: float = 0.0, lines: int = 1, rude: bool = False):
        self.ok, self.seconds, self.lines, self.rude = ok, seconds, lines, rude

    def plan(self):
        code = (
            f"import time\nfor i in range({self.lines}): print('line', i, flush=True)\n"
            f"time.sleep({self.seconds})"
        )
        return Plan(self.check_id, "print and wait", [[PY, "-c", code]])

    def run(self, ctx: RunContext):
        from labkit.errors import Cancelled, CommandFailed

        argv = self.plan().commands[0]
        try:
            ctx.run(argv)
        except Cancelled as exc:
            if not self.rude:
                raise
            raise CommandFailed(argv, -15, stderr="[ 1.234] kernel: a long flattened log") from exc
        return {"ok": self.ok}

    def check(self, ctx, evidence):
        if self.ok:
            return CheckResult.passed(self.check_id, "good value", **evidence)
        return CheckResult.failed(self.check_id, "bad value", **evidence)


def _attempt_panel() -> StepPanel:
    return StepPanel(
        "Attempt",
        step_factory(Attempt),
        {
            "ok": (True, "ok"),
            "seconds": (0.0, "seconds"),
            "lines": (1, "lines"),
            "rude": (False, "rude"),
        },
    )


def _click_run(panel: StepPanel) -> CheckResult:
    panel.controls().run.click()
    result = panel.wait(timeout=30)
    assert result is not None
    return result


def _widget_html(widget) -> str:
    """Every text value inside the panel's widget tree (what the panel itself displays)."""
    children = getattr(widget, "children", None)
    if children:
        return "".join(_widget_html(child) for child in children)
    value = getattr(widget, "value", "")
    return value if isinstance(value, str) else ""


def test_a_failing_attempt_keeps_the_recorded_pass_and_says_so(tmp_path):
    set_lang("zh")
    sess = session(tmp_path / "w")
    panel = _attempt_panel()
    c = panel.controls()
    passed = _click_run(panel)
    assert passed.status == "pass"
    assert panel.recorded is passed
    assert c.record.layout.display == "none"  # nothing to record: the newest attempt is the recorded one

    c.fields["ok"].value = False  # the student tries a bad value
    failed = _click_run(panel)
    assert failed.status == "fail"
    assert panel.result is failed
    assert panel.recorded is passed  # the pass the student earned is kept …
    assert "评分仍用" in c.notice.value and "通过的结果" in c.notice.value  # … and the panel says so
    assert "没有通过" in c.notice.value
    assert c.record.layout.display != "none"  # … and offers to record the new attempt
    assert sess.results["test.attempt"] is passed  # the summary counts the recorded result
    assert sess.attempts["test.attempt"] is failed
    assert sess.counts()["pass"] == 1
    assert "未记录" in sess.summary_html()


def test_recording_an_attempt_explicitly_replaces_the_recorded_pass(tmp_path):
    set_lang("zh")
    sess = session(tmp_path / "w")
    panel = _attempt_panel()
    c = panel.controls()
    _click_run(panel)
    c.fields["ok"].value = False
    failed = _click_run(panel)
    c.record.click()  # "记录这次结果（用于评分）"
    assert panel.recorded is failed
    assert sess.results["test.attempt"] is failed
    assert sess.counts() == {"pass": 0, "fail": 1, "error": 0, "skipped": 0}
    assert c.notice.value == ""
    assert c.record.layout.display == "none"
    c.fields["ok"].value = True
    again = _click_run(panel)  # a pass always replaces the recorded result
    assert panel.recorded is again
    assert "未记录" not in sess.summary_html()


def test_stop_after_a_recorded_pass_is_stopped_by_you_and_keeps_the_pass(tmp_path):
    set_lang("zh")
    session(tmp_path / "w")
    panel = _attempt_panel()
    c = panel.controls()
    passed = _click_run(panel)
    c.fields["seconds"].value = 60.0
    c.fields["rude"].value = True  # the tool fails noisily when cut off: still the student's stop
    c.run.click()
    _wait_for(lambda: "line 0" in c.console.value)
    c.stop.click()
    stopped = panel.wait(timeout=30)
    assert stopped is not None
    assert (stopped.status, stopped.message) == ("skipped", "已由你停止")
    assert stopped.evidence["skip_reason"] == "stopped"
    assert "kernel" not in stopped.message
    assert panel.recorded is passed
    assert "已由你停止" in c.notice.value


def test_a_check_that_fails_after_stop_is_stopped_by_you():
    """A tool that exits quietly when stopped leaves a state the check rejects: that is still the
    student's stop (a rule of Step.execute), with the check's evidence kept."""
    import threading

    class Quiet(Step):
        check_id = "test.quiet"

        def plan(self):
            return Plan(self.check_id, "nothing to run")

        def run(self, ctx):
            ctx.cancel.set()  # Stop pressed while it ran; the work ended without an error
            return {"written": 0}

        def check(self, ctx, evidence):
            return CheckResult.failed(self.check_id, "the file is incomplete", **evidence)

    with use_lang("zh"):
        result = Quiet().execute("live", cancel=threading.Event())
    assert (result.status, result.message) == ("skipped", "已由你停止")
    assert result.evidence["skip_reason"] == "stopped"
    assert result.evidence["written"] == 0


def test_the_console_shows_the_newest_lines_readably():
    panel = _attempt_panel()
    c = panel.controls()
    assert c.console.layout.display == "none"  # no empty box before anything ran
    panel.set(lines=200)
    panel.run("live")
    assert c.console.layout.display != "none"
    assert panel.lines[-1] == "line 199"
    assert "line 199" in c.console.value  # the newest line is in the console …
    assert "line 0\n" not in c.console.value  # … which keeps a bounded tail, not the whole log
    assert "column-reverse" in c.console.value  # a box that starts scrolled to its end


def test_the_panel_shows_no_result_and_the_cell_output_one(tmp_path):
    """One result display: the result is in the cell output (display handle), not in the panel."""
    panel = _attempt_panel()
    c = panel.controls()
    panel.set(ok=False)
    panel.run("live")
    assert "class='labkit-check'" not in _widget_html(c.box)
    assert panel.recorded is panel.result  # nothing was recorded before: a failing first run counts


def test_the_plan_follows_the_fields(tmp_path):
    set_lang("zh")
    work = session(tmp_path / "w")
    c = ch1.create_image(work, name="d.qcow2", size="120G").controls()
    assert "120G 只是上限" in c.plan.value
    c.fields["size"].value = "1G"
    assert "1G 只是上限" in c.plan.value
    assert "120G" not in c.plan.value
    c.fields["size"].value = "lots"
    assert "输入有误" in c.plan.value  # an input problem, not a result
    assert "class='labkit-check'" not in c.plan.value


# -- the language, chosen once per kernel ------------------------------------------------------
def test_session_chooses_the_language_and_the_run_thread_keeps_it(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    session(tmp_path / "w", lang="en")
    assert lang() == "en"
    panel = _panel()
    c = panel.controls()
    assert c.run.description == "Run"
    c.run.click()  # the step runs on another thread, with a copy of this context
    result = panel.wait(timeout=15)
    assert result is not None
    assert result.message == "slept"
    sess = current_session()
    assert sess is not None
    assert sess.results["test.sleep"] is result


def test_session_without_lang_leaves_the_choice_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    session(tmp_path / "w")
    assert lang() == "en"  # the environment's fallback
    with use_lang("zh"):
        session(tmp_path / "w")
        assert lang() == "zh"  # an earlier choice stays
    with pytest.raises(InvalidField) as err:
        session(tmp_path / "w", lang="fr")
    assert err.value.field == "lang"


# -- the course's factories --------------------------------------------------------------------
CH1_CALLS = [
    ("host_check", {}, "ch1.host.check"),
    ("create_image", {"name": "d.qcow2", "check": "ch1.disk.create.qcow2"}, "ch1.disk.create.qcow2"),
    ("image_info", {"name": "d.qcow2"}, "ch1.disk.info"),
    ("convert_image", {"src": "a.vhd", "src_format": "vhd", "dst": "a.qcow2"}, "ch1.disk.convert"),
    ("fill_image", {}, "ch1.disk.fill"),
    ("resize_image", {"name": "d.qcow2", "size": "130G"}, "ch1.disk.resize"),
    ("efi_image", {}, "ch1.firmware.efi"),
    ("vm_command", {}, "ch1.vm.command"),
    ("consolidation", {}, "ch1.consolidation"),
    ("hyperv", {"action": "enable"}, "ch1.hyperv.enable"),
    ("pve_kvm_off", {"consent": True}, "ch1.pve.kvm_off"),
    ("pve_destroy", {}, "ch1.pve.destroy"),
    ("libvirt_install", {}, "ch1.libvirt.install"),
    ("virtualbox_networks", {}, "ch1.vbox.network"),
    ("prepare_guest", {}, "ch1.guest.prepare"),
    ("boot_guest", {}, "ch1.guest.boot"),
]


@pytest.mark.parametrize(("name", "kwargs", "check"), CH1_CALLS)
def test_chapter1_factories_keep_their_check_ids_and_plan_headless(tmp_path, name, kwargs, check):
    work = session(tmp_path / "w")
    factory = getattr(ch1, name)
    args = (work,) if "work" in inspect.signature(factory).parameters else ()
    panel = factory(*args, **kwargs)
    assert panel.check_id == check
    assert isinstance(panel.build(), Step)
    assert isinstance(panel.plan(), Plan)


def test_pve_panel_writes_nothing_until_it_runs(tmp_path):
    work = session(tmp_path / "w")
    panel = ch1.pve_kvm_off(work, consent=True)
    conf = work.path / "pve-qemu-server" / "100.conf"
    plan = panel.plan()
    assert isinstance(plan, Plan)
    assert str(conf) in plan.files  # the practice copy is planned …
    assert not conf.exists()  # … and written by the run, not by building the panel
    result = panel.run("live")
    assert result.status == "pass", result.message
    assert "kvm: no" in conf.read_text(encoding="utf-8")


# -- one path policy for every file field ------------------------------------------------------
def test_a_file_outside_the_work_folder_needs_the_explicit_choice(tmp_path):
    work = session(tmp_path / "w")
    assert work.file("sub/disk.qcow2") == work.path / "sub" / "disk.qcow2"
    elsewhere = tmp_path / "elsewhere" / "disk.img"
    for name in ("../escape.img", str(elsewhere)):
        with use_lang("zh"):
            with pytest.raises(InvalidField) as refused:
                work.file(name, field="src")
            assert outside_label() in refused.value.fix  # names the checkbox the student can tick
        assert refused.value.field == "src"
    assert work.file(str(elsewhere), outside=True) == elsewhere
    assert work.file("../escape.img", outside=True) == tmp_path / "escape.img"
    assert work.file("disk.img", outside=True) == work.path / "disk.img"  # relative: still the work folder
    with pytest.raises(InvalidField):
        work.file(" ", outside=True)


def _course_panels(work):
    for name, kwargs, _check in CH1_CALLS:
        factory = getattr(ch1, name)
        args = (work,) if "work" in inspect.signature(factory).parameters else ()
        yield f"ch1.{name}", factory(*args, **kwargs)
    for module, calls in ((ch2, CH2_CALLS), (ch2b, CH2B_CALLS)):
        for name, _check in calls:
            factory = getattr(module, name)
            args = (work,) if "work" in inspect.signature(factory).parameters else ()
            yield f"{module.__name__.rsplit('.', 1)[-1]}.{name}", factory(*args)


def test_every_course_field_naming_a_file_follows_the_one_policy(tmp_path):
    """Each panel field that names a file refuses a file outside the work folder until the panel's
    checkbox is ticked; then the plan names that file."""
    work = session(tmp_path / "w")
    elsewhere = tmp_path / "elsewhere"
    with_files = {name: panel for name, panel in _course_panels(work) if panel.make_step.paths}
    assert {
        "ch1.create_image",
        "ch1.convert_image",
        "ch1.pve_kvm_off",
        "ch1.vm_command",
        "ch2.save_image",
        "ch2b.manifest",
        "ch2b.registry_start",
        "ch2b.insecure_registry",
        "ch2b.registry_stop",
        "ch2b.apply",
    } <= set(with_files)
    for name, panel in with_files.items():
        default, label = panel.field_specs[OUTSIDE_FIELD]
        assert default is False and label == outside_label(), name
        defaults = panel.values()
        for field_name in panel.make_step.paths:
            target = elsewhere / f"{field_name}-{Path(str(defaults[field_name])).name or 'x.img'}"
            panel.set(**{field_name: str(target), OUTSIDE_FIELD: False})
            refused = panel.plan()
            assert isinstance(refused, CheckResult) and refused.status == "error", (name, field_name)
            assert field_name in refused.message, (name, refused.message)
            panel.set(**{OUTSIDE_FIELD: True})
            chosen = panel.plan()
            assert isinstance(chosen, Plan), (name, field_name, chosen)
            assert str(target) in str(chosen), (name, field_name)
            panel.set(**{OUTSIDE_FIELD: False, field_name: defaults[field_name]})
    without = [name for name, panel in _course_panels(work) if OUTSIDE_FIELD in panel.field_specs]
    assert sorted(without) == sorted(with_files)  # panels without file fields get no such checkbox


def test_pve_panel_never_edits_a_file_outside_the_work_folder_unless_ticked(tmp_path):
    set_lang("zh")  # a kernel in Chinese: the messages name the Chinese labels
    from labkit.logic import pve

    work = session(tmp_path / "w")
    conf = tmp_path / "etc" / "pve" / "100.conf"  # stands for /etc/pve/qemu-server/100.conf
    conf.parent.mkdir(parents=True)
    original = pve.sample_conf(100)
    conf.write_text(original, encoding="utf-8")
    panel = ch1.pve_kvm_off(work, consent=True)  # the notebook's cell consents: still not silent
    panel.set(conf_path=str(conf))
    refused = panel.run("live")
    assert refused.status == "error"
    assert refused.message.startswith("配置文件：")  # the field's label; the evidence keeps the keyword
    assert refused.evidence["field"] == "conf_path"
    assert conf.read_text(encoding="utf-8") == original
    assert sorted(p.name for p in conf.parent.iterdir()) == ["100.conf"]  # no backup: nothing touched
    panel.set(**{OUTSIDE_FIELD: True})
    edited = panel.run("live")
    assert edited.status == "pass", edited.message
    assert edited.evidence["path"] == str(conf)
    assert pve.get_option(conf.read_text(encoding="utf-8"), "kvm") == "no"
    assert Path(edited.evidence["backup"]).read_text(encoding="utf-8") == original


def test_guest_boot_panel_refuses_what_the_board_or_the_host_cannot_give():
    set_lang("zh")  # a kernel in Chinese: the messages name the Chinese labels
    panel = ch1.boot_guest()
    panel.set(smp=64)
    vcpus = panel.plan()
    assert isinstance(vcpus, CheckResult) and vcpus.status == "error"
    assert vcpus.message.startswith("vCPU 数：64 ") and "GICv2" in vcpus.message
    assert vcpus.evidence["field"] == "smp"
    panel.set(smp=8, memory="4096G")  # more than any course machine has
    memory = panel.plan()
    assert isinstance(memory, CheckResult) and memory.status == "error"
    assert memory.message.startswith("内存：'4096G' ")
    panel.set(memory="512M")
    assert isinstance(panel.plan(), Plan)


def test_build_panel_points_an_offline_student_at_a_base_that_can_build(tmp_path):
    work = session(tmp_path / "w")
    panel = ch2.build_image(work)
    panel.set(base_image="labkit/busybox:local")
    refused = panel.plan()
    assert isinstance(refused, CheckResult) and refused.status == "error"
    assert "apt-get" in refused.message and "labkit/debian:bookworm-local" in refused.message
    panel.set(base_image="labkit/debian:bookworm-local")
    assert isinstance(panel.plan(), Plan)


def test_consolidation_panel_reports_a_bad_workload_by_field(tmp_path):
    set_lang("zh")  # a kernel in Chinese: the messages name the Chinese labels
    panel = ch1.consolidation()
    panel.set(workloads="mail=30%, web")
    bad = panel.plan()
    assert isinstance(bad, CheckResult)
    assert bad.status == "error"
    # the field is named as the panel shows it, in the panel's language
    assert bad.message.startswith("工作负载：'web' ")
    panel.set(workloads="mail=30%", hosts=0)
    hosts = panel.plan()
    assert isinstance(hosts, CheckResult)
    assert hosts.message.startswith("物理服务器数：0 ")
    with use_lang("en"):  # a kernel in English: English labels
        english = ch1.consolidation().set(workloads="mail=30%", hosts=0)
        assert english.plan().message.startswith("servers: 0 is out of range")


def test_the_run_thread_names_the_panels_labels(tmp_path):
    """The Run button's thread (a copied context) names the labels too, and the labels do not leak
    out of the panel: the same step called from Python names its keyword."""
    set_lang("zh")
    panel = StepPanel("Sleep", step_factory(Sleep, rename={"wait": "seconds"}), {"wait": (-1.0, "等待秒数")})
    panel.controls()
    panel.start("auto")
    result = panel.wait(10)
    assert result is not None and result.status == "error"
    assert result.message.startswith("等待秒数：-1.0 ")
    assert result.evidence["field"] == "seconds" and result.evidence["label"] == "等待秒数"
    with pytest.raises(InvalidField, match=r"^seconds：-1\.0 "):
        Sleep(-1.0)


CH2_CALLS = [
    ("engine_check", "ch2.docker.engine"),
    ("local_base", "ch2.docker.base"),
    ("hello", "ch2.docker.hello"),
    ("commit_container", "ch2.docker.commit"),
    ("save_image", "ch2.docker.save"),
    ("load_image", "ch2.docker.load"),
    ("run_image", "ch2.docker.run"),
    ("build_image", "ch2.docker.build"),
    ("gpu_run", "ch2.docker.gpu"),
    ("torch_gpu", "ch2.gpu.torch"),
    ("cleanup", "ch2.docker.cleanup"),
    ("delete_everything", "ch2.docker.nuke"),
]


@pytest.mark.parametrize(("name", "check"), CH2_CALLS)
def test_chapter2_factories_keep_their_check_ids(tmp_path, name, check):
    work = session(tmp_path / "w")
    factory = getattr(ch2, name)
    args = (work,) if "work" in inspect.signature(factory).parameters else ()
    panel = factory(*args)
    assert panel.check_id == check
    assert isinstance(panel.build(), Step)


CH2B_CALLS = [
    ("manifest", "ch2.k8s.manifest"),
    ("registry_start", "ch2.registry.start"),
    ("push_image", "ch2.registry.push"),
    ("insecure_registry", "ch2.registry.insecure"),
    ("registry_stop", "ch2.registry.stop"),
    ("microk8s_status", "ch2.k8s.status"),
    ("microk8s_enable", "ch2.k8s.addons"),
    ("apply", "ch2.k8s.apply"),
    ("rollout", "ch2.k8s.rollout"),
    ("scale", "ch2.k8s.scale"),
    ("delete", "ch2.k8s.delete"),
]


@pytest.mark.parametrize(("name", "check"), CH2B_CALLS)
def test_chapter2b_factories_keep_their_check_ids(tmp_path, name, check):
    work = session(tmp_path / "w")
    factory = getattr(ch2b, name)
    args = (work,) if "work" in inspect.signature(factory).parameters else ()
    panel = factory(*args)
    assert panel.check_id == check
    assert isinstance(panel.build(), Step)


def test_manifest_panel_shows_the_yaml_and_names_the_field_of_a_mistake(tmp_path):
    """The plan holds the generated YAML; a student's mistake is an error naming the panel's label
    and nothing is written."""
    set_lang("zh")
    work = session(tmp_path / "w")
    panel = ch2b.manifest(work)
    plan = panel.plan()
    assert isinstance(plan, Plan)
    (yaml_text,) = plan.files.values()
    assert "replicas: 2" in yaml_text and "image: nginx:1.14.2" in yaml_text
    panel.set(replicas=3, image="registry.local/web:1.0", labels="web")
    changed = panel.plan().files[str(work.path / "nginx-deployment.yaml")]
    assert "replicas: 3" in changed and "app: web" in changed and "app: nginx" not in changed
    panel.set(name="Nginx_Deployment")
    refused = panel.run("auto")
    assert refused.status == "error"
    assert refused.message.startswith("Deployment 名称：")
    assert not (work.path / "nginx-deployment.yaml").exists()
    panel.set(name="nginx-deployment", replicas=2, image="nginx:1.14.2", labels="nginx")
    done = panel.run("auto")
    assert done.status == "pass", done.message
    assert yaml_text == (work.path / "nginx-deployment.yaml").read_text(encoding="utf-8")


def test_cluster_panels_plan_with_labels_and_skip_for_the_host_without_a_cluster(tmp_path, monkeypatch):
    """No kubeconfig and no microk8s (this machine): each cluster panel plans and is skipped with
    the reason ``host``; the apply panel reads the manifest panel's file; delete's plan names its
    checkbox; the add-ons field is split into names."""
    set_lang("zh")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    if shutil.which("microk8s"):
        pytest.skip("this machine has microk8s")
    work = session(tmp_path / "w")
    enable = ch2b.microk8s_enable()
    assert enable.plan().commands == [["microk8s", "enable", "dns", "registry", "dashboard"]]
    enable.set(addons="dns, dashboard")
    assert enable.plan().commands == [["microk8s", "enable", "dns", "dashboard"]]
    assert "create token" in str(enable.plan())
    apply = ch2b.apply(work)
    assert str(work.path / "nginx-deployment.yaml") in apply.plan().commands[0]
    delete = ch2b.delete()
    assert "勾选「我确认删除这个 Deployment」" in str(delete.plan())
    for panel in (ch2b.microk8s_status(), enable, apply, ch2b.rollout(), ch2b.scale(), delete):
        result = panel.run("auto")
        assert (result.status, result.evidence["skip_reason"]) == ("skipped", "host"), result
        assert result.message
    assert not (work.path / "nginx-deployment.yaml").exists()  # nothing written by planning


def test_insecure_registry_panel_waits_for_consent_then_edits_the_practice_copy(tmp_path):
    set_lang("zh")
    work = session(tmp_path / "w")
    panel = ch2b.insecure_registry(work)
    waiting = panel.run("auto")
    assert (waiting.status, waiting.evidence["skip_reason"]) == ("skipped", "consent")
    assert "我同意修改（先备份）" in waiting.message
    assert not (work.path / "docker" / "daemon.json").exists()
    panel.set(consent=True)
    done = panel.run("auto")
    assert done.status == "pass", done.message
    data = json.loads((work.path / "docker" / "daemon.json").read_text(encoding="utf-8"))
    assert data["insecure-registries"] == ["localhost:32000"] and data["log-driver"] == "json-file"


# -- in a real kernel ----------------------------------------------------------------------------
NOTEBOOK_CODE = """
import sys
from labkit.checks import CheckResult
from labkit.steps.base import Plan, Step
from labkit.ui import session
from labkit.ui.panel import StepPanel, step_factory

class Touch(Step):
    check_id = "test.touch"
    def __init__(self, path):
        self.path = path
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
make = step_factory(Touch, work=work, paths=("name",), rename={"name": "path"})
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
    assert len(payloads) == 1
    assert payloads[0]["status"] == "pass"
    assert payloads[0]["check"] == "test.touch"
    assert not [o for o in outputs if PLAN_MIME in o.get("data", {})], "the plan was replaced by the result"
    assert (tmp_path / "work" / "hello.txt").read_text() == "x"
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


JUDGE_CELLS = [
    """import sys
from labkit.checks import CheckResult
from labkit.steps.base import Plan, Step
from labkit.ui import session
from labkit.ui.panel import StepPanel, step_factory

class Judge(Step):
    check_id = "test.judge"
    def __init__(self, ok):
        self.ok = ok
    def plan(self):
        return Plan(self.check_id, "judge", [[sys.executable, "-c", "pass"]])
    def run(self, ctx):
        ctx.run(self.plan().commands[0])
        return {}
    def check(self, ctx, evidence):
        return CheckResult(self.check_id, "pass" if self.ok else "fail", "judged")

work = session(WORKDIR, mode="auto", lang="zh")""",
    'panel = StepPanel("Judge", step_factory(Judge), {"ok": (True, "ok")})\npanel.show("auto")',
    # the student experiments: a bad value, run again (what a click on 运行 does, synchronously)
    'panel.set(ok=False)\nprint(panel.run("live").status)',
]


def test_the_saved_notebook_keeps_the_pass_and_shows_the_unrecorded_attempt(tmp_path):
    """In a real kernel: the cell's saved outputs hold one check payload, the recorded pass, labelled
    as the graded one, and a text note about the failing attempt; the grader gives the points."""
    from labkit.grading.classify import classify_notebook
    from labkit.grading.manifest import Manifest, build_release
    from labkit.notebooks import check_payload, last_results_by_check

    cells = [c.replace("WORKDIR", repr(str(tmp_path / "work"))) for c in JUDGE_CELLS]
    course = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    course.cells[1].metadata.update(tags=["labkit-check"], labkit={"check": "test.judge", "points": 2})
    student, spec = build_release(
        json.loads(nbformat.writes(course)), name="t.ipynb", course="c1", assignment="a1", release="r1"
    )
    nb = nbformat.reads(json.dumps(student), as_version=4)
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    saved = json.loads(json.dumps(nb))  # as read back, text as one string per output
    assert "".join(o.get("text", "") for o in saved["cells"][2]["outputs"]).strip() == "fail"

    outputs = saved["cells"][1]["outputs"]
    payloads = [p for o in outputs if (p := check_payload(o)) is not None]
    assert [(p["check"], p["status"]) for p in payloads] == [("test.judge", "pass")]
    html_of = ["".join(o.get("data", {}).get("text/html", "")) for o in outputs]
    assert any("评分用的结果" in h and "labkit-check" in h for h in html_of)
    notes = [h for h in html_of if "未用于评分" in h]
    assert len(notes) == 1 and "没有通过" in notes[0] and "记录这次结果（用于评分）" in notes[0]
    assert last_results_by_check(saved)["test.judge"]["status"] == "pass"

    sub = classify_notebook(saved, Manifest("c1", "a1", (spec,)))
    (grade,) = sub.checks
    assert (grade.status, grade.points) == ("pass", 2)


LANG_CELLS = [
    "from labkit.ui import ch1, session\nwork = session(WORKDIR, mode='plan', lang='en')",
    # a later cell: the kernel's choice persists; the Run thread gets a copy of it
    "panel = ch1.consolidation()\nc = panel.controls()\nprint(c.run.description)\n"
    "c.run.click()\nprint(panel.wait(30).message)",
]


def test_the_language_chosen_in_the_first_cell_reaches_later_cells_and_run_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_LANG", raising=False)
    cells = [c.replace("WORKDIR", repr(str(tmp_path / "work"))) for c in LANG_CELLS]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs).splitlines()
    assert printed[0] == "Run"
    assert printed[1] == "2 of 3 hosts used; freed: server-3"


def test_run_executes_the_very_step_whose_plan_was_shown():
    """Steps may generate names or labels when built (a random object label): the panel runs the
    step it planned, and builds a fresh one for the next run or when a field changes."""
    from labkit.steps.base import Plan, Step

    built: list[Step] = []

    class Labelled(Step):
        check_id = "t.labelled"

        def __init__(self, name: str) -> None:
            self.name = name
            self.label = f"label-{len(built)}"
            built.append(self)

        def plan(self) -> Plan:
            return Plan(self.check_id, "label", [["echo", self.label]])

        def run(self, ctx: RunContext) -> dict:
            return {"label": self.label}

        def check(self, ctx, evidence):
            return CheckResult.passed(self.check_id, "ok", **evidence)

    panel = StepPanel("t", step_factory(Labelled), {"name": ("a", "name")})
    shown = panel.plan()
    assert shown.commands == [["echo", "label-0"]]
    result = panel.run("live")
    assert result.evidence["label"] == "label-0"
    assert panel.plan().commands == [["echo", "label-1"]]  # the next run is a new step
    panel.set(name="b")
    assert panel.plan().commands == [["echo", "label-2"]]  # so is a changed field


def test_the_notebooks_and_the_readme_explain_the_record_button_by_its_label():
    """The first cell of each course notebook and the README name the button the panel shows."""
    from labkit.notebooks import cell_source, load_notebook_json

    root = Path(__file__).resolve().parents[1]
    with use_lang("zh"):
        label = _panel().controls().record.description
    for name in (
        "01-virtualization.ipynb",
        "02-containers.ipynb",
        "03-kubernetes.ipynb",
        "04-distributed-vlan.ipynb",
        "05-cloud-services.ipynb",
    ):
        first = cell_source(load_notebook_json(root / "notebooks" / name)["cells"][0])
        assert label in first and "评分用的结果" in first and "已由你停止" in first, name
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "How re-running and experimenting interact with grading" in readme
    assert label in readme


def test_the_summary_says_how_each_result_came_about(tmp_path):
    """The chapter summary's "how" column names the reason a step did not run, not just "plan"."""
    with use_lang("zh"):
        sess = session(tmp_path / "w")
        sess.record(CheckResult.skipped("a", "x", mode="plan", skip_reason="host"))
        sess.record(CheckResult.skipped("b", "x", skip_reason="consent"))
        sess.record(CheckResult.skipped("c", "x", skip_reason="stopped"))
        sess.record(CheckResult.skipped("d", "x", mode="plan", skip_reason="plan_only"))
        sess.record(CheckResult.passed("e", "x", already_present=True, verified_by="qemu-img info"))
        sess.record(CheckResult.passed("f", "x"))
        table = sess.summary_html()
    for words in ("本机无法运行", "等你同意", "已由你停止", "仅计划", "已存在，已核实", "运行"):
        assert f">{words}</td>" in table, words
