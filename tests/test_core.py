"""The shared core: check results, the runner, the step template and file safety."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit.checks import CHECK_MIME, PLAN_MIME, CheckResult, payload_digest, verify_payload
from labkit.errors import (
    Cancelled,
    CommandFailed,
    CommandTimeout,
    ConsentRequired,
    InvalidField,
    NotSupportedHere,
    ToolMissing,
)
from labkit.files import TMP_MARK, atomic_target, backup_file, ensure_free_space, write_atomic
from labkit.i18n import tr, use_labels, use_lang
from labkit.steps.base import Plan, RunContext, Step, overwrite_label, refuse_replacing
from labkit.steps.runner import Completed, FunctionRunner, SubprocessRunner

PY = sys.executable


# -- check results ----------------------------------------------------------------------------
def test_check_result_mime_bundle_carries_full_payload():
    r = CheckResult.passed("ch0.demo", "fine", size=3, path="/tmp/x")
    bundle = r._repr_mimebundle_()
    payload = bundle[CHECK_MIME]
    assert set(payload) == {
        "check",
        "status",
        "mode",
        "message",
        "evidence",
        "labkit_version",
        "at",
        "session",
        "digest",
    }
    assert verify_payload(payload)
    assert len(payload["session"]) == 32
    assert payload["status"] == "pass"
    assert payload["evidence"] == {"size": 3, "path": "/tmp/x"}
    assert "PASS" in bundle["text/plain"]
    assert "ch0.demo" in bundle["text/html"]
    assert CheckResult.from_payload(json.loads(json.dumps(payload))) == r


def test_digest_exposes_hand_edits():
    payload = CheckResult.failed("ch0.demo", "wrong size", size=1).to_payload()
    edited = {**payload, "status": "pass"}
    assert verify_payload(payload)
    assert not verify_payload(edited)
    assert not verify_payload({k: v for k, v in payload.items() if k != "digest"})


def test_check_result_rejects_unknown_status_and_escapes_html():
    with pytest.raises(ValueError):
        CheckResult("x", "passed")  # type: ignore[arg-type]
    r = CheckResult.failed("x", "<script>", note="<b>")
    assert "<script>" not in r._repr_html_()


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.one_of(st.integers(), st.text(), st.none())))
def test_check_payload_roundtrips_any_jsonable_evidence(evidence):
    r = CheckResult("c", "skipped", "m", evidence, mode="plan")
    assert CheckResult.from_payload(json.loads(json.dumps(r.to_payload()))) == r


def test_language_switch(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    assert tr("运行", "Run") == "Run"
    monkeypatch.setenv("LABKIT_LANG", "zh")
    assert tr("运行 {n}", "Run {n}", n=2) == "运行 2"


# -- runner -----------------------------------------------------------------------------------
def test_runner_streams_lines_split_on_carriage_returns():
    seen: list[tuple[str, str]] = []
    code = "import sys;sys.stdout.write('a\\rb\\nc');sys.stdout.flush();sys.stderr.write('e\\n')"
    done = SubprocessRunner().run([PY, "-c", code], on_line=lambda s, line: seen.append((s, line)))
    assert ("stdout", "a") in seen
    assert ("stdout", "b") in seen
    assert ("stdout", "c") in seen
    assert ("stderr", "e") in seen
    assert done.returncode == 0


def test_runner_missing_tool_names_package(monkeypatch):
    with pytest.raises(ToolMissing) as exc:
        SubprocessRunner().run(["qemu-img-does-not-exist"])
    assert "qemu-img-does-not-exist" in str(exc.value)
    from labkit.steps.runner import require_tool

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing) as exc2:
        require_tool("qemu-img")
    assert "apt-get install -y --no-install-recommends qemu-utils" in str(exc2.value)


def test_runner_nonzero_exit_carries_argv_code_and_stderr():
    with pytest.raises(CommandFailed) as exc:
        SubprocessRunner().run([PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])
    e = exc.value
    assert e.returncode == 3
    assert "boom" in e.stderr
    assert e.argv[0] == PY
    assert "boom" in str(e)


def test_runner_timeout_kills_process_group():
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as exc:
        SubprocessRunner().run(
            [PY, "-c", "import time; print('start', flush=True); time.sleep(30)"], timeout=1
        )
    assert time.monotonic() - t0 < 20  # killed, not waited for: the child sleeps 30 s
    assert "start" in exc.value.stdout


def test_runner_cancel_event_stops_command():
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(Cancelled):
        SubprocessRunner().run([PY, "-c", "import time; time.sleep(30)"], cancel=cancel)


def test_function_runner_replays_output_and_records_argv():
    fr = FunctionRunner(lambda argv: (0, "x\ny\n", ""))
    lines: list[str] = []
    fr.run(["tool", "--flag"], on_line=lambda s, line: lines.append(line))
    assert fr.history == [["tool", "--flag"]]
    assert lines == ["x", "y"]
    with pytest.raises(CommandFailed):
        FunctionRunner(lambda argv: Completed(argv, 2, "", "bad")).run(["t"])


# -- step template ----------------------------------------------------------------------------
class Echo(Step):
    check_id = "ch0.echo"

    def __init__(self, text: str, missing: str | None = None, boom: Exception | None = None):
        self.text, self.missing, self.boom = text, missing, boom
        self.cleaned = False

    def plan(self) -> Plan:
        if not self.text:
            raise InvalidField("text", self.text, "is empty", "type something")
        return Plan(self.check_id, "print the text", [[PY, "-c", f"print({self.text!r})"]])

    def unavailable(self, ctx):
        return self.missing

    def run(self, ctx: RunContext):
        if self.boom:
            raise self.boom
        done = ctx.run(self.plan().commands[0])
        return {"out": done.stdout.strip()}

    def check(self, ctx, evidence):
        if evidence["out"] == self.text:
            return CheckResult.passed(self.check_id, "echoed", **evidence)
        return CheckResult.failed(self.check_id, "mismatch", **evidence)

    def cleanup(self):
        self.cleaned = True


def test_step_runs_and_checks_for_real():
    lines: list[str] = []
    s = Echo("hello")
    r = s.execute("auto", on_line=lambda st_, line: lines.append(line))
    assert r.status == "pass"
    assert r.mode == "run"
    assert r.evidence["out"] == "hello"
    assert lines == ["hello"]
    assert s.cleaned
    assert shlex.split(r.evidence["commands"][0])[-1] == "print('hello')"


def test_step_plan_mode_and_unavailable_host():
    r = Echo("hi").execute("plan")
    assert r.status == "skipped"
    assert r.mode == "plan"
    assert r.evidence["plan"]["commands"]
    r = Echo("hi", missing="no such thing here").execute("auto")
    assert r.status == "skipped"
    assert r.mode == "plan"
    assert r.evidence["skip_reason"] == "host"
    assert r.message == "no such thing here"
    r = Echo("hi", missing="no such thing here").execute("live")
    assert r.status == "error"


def test_step_errors_become_results_not_tracebacks():
    r = Echo("").execute()
    assert r.status == "error"
    assert r.evidence["field"] == "text"
    assert "type something" in r.message
    r = Echo("x", boom=NotSupportedHere("no GPU")).execute()
    assert r.status == "skipped"
    assert "no GPU" in r.message
    assert r.evidence["skip_reason"] == "host"
    r = Echo("x", boom=ConsentRequired("delete x", "pass yes=True")).execute()
    assert r.status == "skipped"
    # A consent refusal ran up to the refusal: never reported as plan mode.
    assert r.mode == "run"
    assert r.evidence["skip_reason"] == "consent"
    assert r.evidence["action"] == "delete x"
    r = Echo("x", boom=ConsentRequired("delete x", "pass yes=True")).execute("live")
    assert r.status == "error"
    assert r.evidence["action"] == "delete x"
    r = Echo("x", boom=Cancelled(["sleep", "60"], None)).execute()
    assert r.status == "skipped"
    assert r.evidence["skip_reason"] == "stopped"
    assert r.evidence["stopped_command"] == "sleep 60"
    with use_lang("zh"):
        assert Echo("x", boom=Cancelled(["sleep"], None)).execute().message == "已由你停止"
    r = Echo("x", boom=KeyError("k")).execute()
    assert r.status == "error"
    assert r.evidence["exception"] == "KeyError"
    with pytest.raises(InvalidField):
        Echo("x").execute("sometimes")


def test_errors_speak_the_course_language_and_name_what_the_reader_sees(tmp_path):
    from labkit.errors import CommandFailed, CommandTimeout
    from labkit.files import refuse_overwrite
    from labkit.i18n import consent_hint, field_name, fill_hint, has_field, in_panel

    labels = {"path": "文件名", "overwrite": "允许覆盖（保留备份）", "confirm": "输入 ID 以确认"}
    with use_lang("zh"):
        bad = InvalidField("path", "../x", "指向工作目录之外", "用不带 .. 的文件名")
        assert str(bad) == "path：'../x' 指向工作目录之外；用不带 .. 的文件名"
        assert not in_panel() and field_name("path") == "path" and has_field("anything")
        with use_labels(labels):
            assert in_panel() and not has_field("force_share")
            bad = InvalidField("path", "../x", "指向工作目录之外")
            assert str(bad) == "文件名：'../x' 指向工作目录之外"
            assert (bad.field, bad.label) == ("path", "文件名")  # evidence keeps the keyword
            refused = ConsentRequired("覆盖 x", keyword="overwrite")
            assert (
                str(refused) == "未经你同意，不会覆盖 x；如果同意，请勾选「允许覆盖（保留备份）」，再运行一次"
            )
            assert fill_hint("confirm", "100") == "在「输入 ID 以确认」中填 100"
            target = tmp_path / "old.img"
            target.write_bytes(b"x")
            with pytest.raises(ConsentRequired) as panel_refusal:
                refuse_overwrite(target, False, "path")
            assert "换一个「文件名」，或勾选「允许覆盖（保留备份）」" in str(panel_refusal.value)
            assert "overwrite=True" not in str(panel_refusal.value)
        assert consent_hint("overwrite") == "传入 overwrite=True"
        assert str(ConsentRequired("覆盖 x", keyword="overwrite")).endswith(
            "请传入 overwrite=True，再运行一次"
        )
        assert str(CommandFailed(["qemu-img", "info", "x"], 1, stderr="boom")) == (
            "`qemu-img info x` 以状态 1 退出:\nboom"
        )
        assert "运行超过 5 秒，已被停止" in str(CommandTimeout(["sleep", "9"], 5))
        assert "提示：换一个" in str(CommandFailed(["false"], 1, hint="换一个"))
        assert str(ToolMissing("qemu-img", "qemu-utils")).startswith(
            "qemu-img 未安装；安装命令：sudo apt-get"
        )
        assert str(NotSupportedHere("没有 GPU", "换一台")) == "没有 GPU；换一台"
    with use_lang("en"):
        assert str(InvalidField("path", "../x", "points outside", "use a plain name")) == (
            "path: '../x' points outside; use a plain name"
        )
        with use_labels({"overwrite": "overwrite (keeps a backup)"}):
            assert str(ConsentRequired("overwrite x", keyword="overwrite")) == (
                "refusing to overwrite x without consent; to go ahead, tick “overwrite (keeps a backup)” "
                "and run again"
            )
        assert "exited with status 1" in str(CommandFailed(["false"], 1))
        assert str(ToolMissing("qemu-img")) == "qemu-img is not installed"
    r = Echo("x", boom=ConsentRequired("delete x", keyword="consent")).execute()
    assert (r.evidence["skip_reason"], r.evidence["keyword"]) == ("consent", "consent")


def test_plan_renders_shell_and_mime():
    p = Plan("s", "why", [["qemu-img", "create", "my disk.img", "1G"]], notes=["careful"])
    assert p.shell() == "qemu-img create 'my disk.img' 1G"
    assert PLAN_MIME in p._repr_mimebundle_()
    assert "careful" in str(p)


# -- files ------------------------------------------------------------------------------------
def test_atomic_target_never_leaves_half_written_files(tmp_path):
    target = tmp_path / "disk.img"
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash midway")
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if TMP_MARK in p.name]

    write_atomic(target, b"v1")
    with pytest.raises(ConsentRequired):
        write_atomic(target, b"v2")
    write_atomic(target, b"v2", overwrite=True)
    assert target.read_bytes() == b"v2"
    backups = [p for p in tmp_path.iterdir() if ".labkit-bak-" in p.name]
    assert len(backups) == 1
    assert backups[0].read_bytes() == b"v1"
    assert backup_file(target) != backups[0]


def test_free_space_check(tmp_path):
    assert ensure_free_space(tmp_path / "not" / "yet", 1) > 0
    with pytest.raises(NotSupportedHere) as exc:
        ensure_free_space(tmp_path, 2**62)
    assert "free" in str(exc.value)


def test_backups_keep_sparse_images_sparse(tmp_path):
    img = tmp_path / "big.img"
    with open(img, "wb") as f:
        f.seek(3 * 2**30)
        f.write(b"tail")
        f.seek(4096)
        f.write(b"head")
    copy = backup_file(img)
    with open(copy, "rb") as f:  # read the two written spots only, not 3 GiB of holes
        f.seek(4096)
        assert f.read(4) == b"head"
    assert copy.stat().st_size == img.stat().st_size
    assert copy.stat().st_blocks * 512 < 16 * 2**20, "the backup wrote out the holes"
    with open(copy, "rb") as f:
        f.seek(3 * 2**30)
        assert f.read() == b"tail"
    linked = backup_file(img, replacing=True)
    assert linked.stat().st_ino == img.stat().st_ino


def test_digest_survives_a_browser_save():
    """JupyterLab writes 60.0 back as 60 (JavaScript numbers); the digest must still verify."""
    payload = CheckResult.passed("ch0.demo", "ok", cpu=60.0, took=0.0, ratio=0.25).to_payload()
    assert payload["evidence"] == {"cpu": 60, "took": 0, "ratio": 0.25}
    as_saved = json.loads(json.dumps(payload).replace('"cpu": 60', '"cpu": 60.0'))
    assert as_saved["evidence"]["cpu"] == 60.0
    assert verify_payload(as_saved)
    assert verify_payload(payload)


def test_digest_of_odd_but_valid_json_never_raises():
    payload = CheckResult.passed("ch0.demo", "ok").to_payload()
    payload["message"] = "\ud800"  # a lone surrogate: valid JSON, not valid UTF-8
    assert verify_payload(payload) is False
    payload["digest"] = payload_digest(payload)
    assert verify_payload(payload)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(_json)
def test_digest_fast_path_agrees_with_the_canonical_form(value):
    """Skipping canonical() when the text shows nothing to canonicalise never changes the digest."""
    import hashlib

    from labkit.checks import canonical

    payload = {"check": "c", "evidence": value}
    slow = json.dumps(canonical(payload), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    expected = hashlib.sha256(b"labkit-check-v1\n" + slow.encode("utf-8", "surrogatepass")).hexdigest()
    assert payload_digest(payload) == expected


# -- language as a context variable --------------------------------------------------------------
def test_use_lang_is_scoped_and_threads_start_from_the_environment(monkeypatch):
    from labkit.i18n import lang, set_lang, use_lang

    monkeypatch.delenv("LABKIT_LANG", raising=False)
    assert lang() == "zh"
    seen: dict[str, str] = {}
    with use_lang("en_US.UTF-8"):
        assert tr("中", "en") == "en"
        # a plain thread does not inherit the choice; a copied context does
        t = threading.Thread(target=lambda: seen.setdefault("plain", lang()))
        t.start()
        t.join()
        import contextvars

        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(lambda: seen.setdefault("copied", lang()),))
        t.start()
        t.join()
    assert lang() == "zh"
    assert seen == {"plain": "zh", "copied": "en"}
    monkeypatch.setenv("LABKIT_LANG", "en")
    assert lang() == "en"  # the environment is only the fallback ...
    with use_lang("zh"):
        assert lang() == "zh"  # ... a choice wins over it
    ctx = contextvars.copy_context()
    assert ctx.run(lambda: (set_lang("zh"), lang())[1]) == "zh"
    assert lang() == "en"  # set_lang inside another context did not leak


def test_finding_names_field_and_fix_and_rejects_unknown_severity():
    from labkit.findings import Finding, errors, worst

    f = Finding("memory", "error", "不是大小", "写成 8G", code="vm.memory.size")
    with use_lang("zh"):
        assert str(f) == "[错误] memory：不是大小；写成 8G"
        with use_labels({"memory": "内存 -m"}):  # in a panel: the label on screen
            assert str(f) == "[错误] 内存 -m：不是大小；写成 8G"
    with use_lang("en"):
        assert str(f) == "[error] memory: 不是大小; 写成 8G"
    assert f.to_dict() == {
        "field": "memory",
        "severity": "error",
        "code": "vm.memory.size",
        "message": "不是大小",
        "fix": "写成 8G",
    }
    w = Finding("Dockerfile", "warning", "no tag", line=3)
    with use_lang("en"):
        assert str(w) == "[warning] Dockerfile (line 3): no tag"
    with use_lang("zh"):
        assert str(w) == "[警告] Dockerfile（第 3 行）：no tag"
    assert errors([f, w]) == [f]
    assert worst([w]) == "warning"
    assert worst([]) is None
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "note", "old vocabulary")  # type: ignore[arg-type]


class Touch(Step):
    """Creates a file; idempotent through ``satisfied``."""

    check_id = "ch0.touch"

    def __init__(self, path):
        self.path = path
        self.runs = 0

    def plan(self) -> Plan:
        return Plan(self.check_id, "create a file", [["touch", str(self.path)]])

    def satisfied(self, ctx):
        return {"verified_by": "file exists"} if self.path.exists() else None

    def run(self, ctx):
        self.runs += 1
        ctx.run(["touch", str(self.path)])
        return {"created": True}

    def check(self, ctx, evidence):
        if self.path.exists():
            return CheckResult.passed(self.check_id, "there", **evidence)
        return CheckResult.failed(self.check_id, "missing", **evidence)


def test_a_satisfied_step_checks_without_running_again(tmp_path):
    step = Touch(tmp_path / "f")
    first = step.execute("auto")
    assert first.status == "pass"
    assert first.evidence["created"] is True
    assert "already_present" not in first.evidence
    second = step.execute("auto")
    assert second.status == "pass"
    assert second.evidence["already_present"] is True
    assert second.evidence["verified_by"] == "file exists"
    assert "commands" not in second.evidence  # nothing ran the second time
    assert step.runs == 1
    with use_lang("en"):
        third = step.execute("auto")
    assert third.message == "already present, verified (file exists): there"
    with use_lang("zh"):
        fourth = step.execute("auto")
    assert fourth.message == "已存在，已核实（file exists）：there"
    (tmp_path / "f").unlink()
    assert "already present" not in step.execute("auto").message  # made anew: an ordinary pass


def test_an_already_present_target_that_fails_its_check_is_not_called_present(tmp_path):
    class Stale(Touch):
        def check(self, ctx, evidence):
            return CheckResult.failed(self.check_id, "changed meanwhile", **evidence)

    (tmp_path / "f").touch()
    with use_lang("en"):
        result = Stale(tmp_path / "f").execute("auto")
    assert (result.status, result.message) == ("fail", "changed meanwhile")
    assert result.evidence["already_present"] is True  # the evidence still says what happened


def test_refusing_a_differing_target_names_the_difference_and_the_checkbox(tmp_path):
    class Differs(Touch):
        def satisfied(self, ctx):
            return None

        def run(self, ctx):
            raise refuse_replacing(self.path, ["size 2 GiB, this step makes 1 GiB"])

    with use_lang("en"):
        auto = Differs(tmp_path / "f").execute("auto")
        live = Differs(tmp_path / "f").execute("live")
        with use_labels({"overwrite": overwrite_label()}):  # in a panel: its checkbox
            panel = Differs(tmp_path / "f").execute("auto")
    assert (auto.status, auto.mode, auto.evidence["skip_reason"]) == ("skipped", "run", "consent")
    assert "size 2 GiB, this step makes 1 GiB" in auto.message
    assert "to replace it, pass overwrite=True" in auto.message  # in Python: the keyword
    assert auto.evidence["keyword"] == "overwrite"
    assert "to replace it, tick “Allow overwrite (keep a backup)”" in panel.message
    assert "overwrite=True" not in panel.message
    assert live.status == "error" and live.evidence["error"] == "ConsentRequired"
    with use_lang("zh"), use_labels({"overwrite": overwrite_label()}):
        zh = Differs(tmp_path / "f").execute("auto")
    assert "请勾选「允许覆盖（保留备份）」" in zh.message


def test_plan_shows_read_only_probes():
    plan = Plan("s", "why", [["qemu-img", "create", "a"]], probes=[["qemu-img", "info", "a"]])
    assert plan.planned_argv() == [["qemu-img", "create", "a"], ["qemu-img", "info", "a"]]
    assert "qemu-img info a" in str(plan)
    assert "qemu-img info a" in plan._repr_html_()
    assert plan.to_payload()["probes"] == [["qemu-img", "info", "a"]]


def test_plan_match_helper_catches_an_unplanned_command(tmp_path):
    from planmatch import RecordingRunner, assert_plan_matches, execute_and_match

    result, ran = execute_and_match(Touch(tmp_path / "g"))
    assert result.status == "pass"
    assert ran == [["touch", str(tmp_path / "g")]]

    class Sneaky(Touch):
        def run(self, ctx):
            ctx.run(["true"])  # not in the plan
            return super().run(ctx)

    step = Sneaky(tmp_path / "h")
    runner = RecordingRunner()
    result = step.execute("live", runner=runner)
    with pytest.raises(AssertionError, match="ran but not planned: true"):
        assert_plan_matches(step.plan(), result, runner.history)


def test_check_lang_names_the_field_in_the_current_language(monkeypatch):
    from labkit.i18n import check_lang, use_lang

    monkeypatch.delenv("LABKIT_LANG", raising=False)
    assert check_lang(None) is None
    assert check_lang("en") == "en"
    with pytest.raises(InvalidField) as info:
        check_lang("fr")
    assert info.value.field == "lang"
    assert "不是课程语言" in str(info.value)
    with use_lang("en"), pytest.raises(InvalidField, match="is not a course language"):
        check_lang("fr", field="--lang")
