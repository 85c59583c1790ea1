"""Chapter 4's panels (``labkit.ui.ch4``) and the 4.5 capstone (``labkit.steps.capstone``).

The factories keep their check ids and plan headless; the Jupyter password field is a masked
widget whose value never reaches a plan, the console or a result; the config/start/login/stop
panels and the capstone run for real (a real Jupyter Server, chapter 1's guest, the real compose
tool). The capstone's criterion is tested with small real steps as parts.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import psutil
import pytest

from labkit.checks import CheckResult
from labkit.i18n import use_lang
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.capstone import Capstone
from labkit.ui import ch4, session
from tests.planmatch import execute_and_match

PASSWORD = "Typed-In-The-Panel-7319"
AS_ROOT = os.geteuid() == 0


@pytest.fixture(autouse=True)
def _no_env_password(monkeypatch):
    monkeypatch.delenv("LABKIT_JUPYTER_PASSWORD", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _panels(work: Any) -> dict[str, Any]:
    return {
        "ch4.layers.quiz": ch4.layers_quiz(),
        "ch4.models.quiz": ch4.models_quiz(),
        "ch4.pve.create.vm": ch4.pve_create("vm"),
        "ch4.pve.create.ct": ch4.pve_create("ct"),
        "ch4.jupyter.config": ch4.jupyter_config(work),
        "ch4.jupyter.seed": ch4.jupyter_seed_demo(work),
        "ch4.jupyter.start": ch4.jupyter_start(work),
        "ch4.jupyter.login": ch4.jupyter_login(work),
        "ch4.jupyter.kernel": ch4.jupyter_kernel(work),
        "ch4.jupyter.stop": ch4.jupyter_stop(work),
        "ch4.seafile.compose": ch4.seafile_compose(work),
        "ch4.seafile.validate": ch4.seafile_validate(work),
        "ch4.seafile.up": ch4.seafile_up(work),
        "ch4.seafile.health": ch4.seafile_health(work),
        "ch4.seafile.down": ch4.seafile_down(work),
        "ch4.capstone": ch4.capstone(work),
    }


def test_factories_keep_their_check_ids_and_plan_headless(tmp_path):
    work = session(tmp_path / "w")
    for check, panel in _panels(work).items():
        assert panel.check_id == check
        plan = panel.plan()
        assert isinstance(plan, Plan), (check, plan)
        assert plan.reason
    assert not (tmp_path / "w" / "jupyter").exists()  # planning wrote nothing
    vm = ch4.pve_create("vm").run("auto")
    assert (vm.status, vm.evidence["skip_reason"]) == ("skipped", "host") and "qm" in vm.message
    assert ch4.pve_create("ct").plan().commands[0][:2] == ["pct", "create"]
    capstone = ch4.capstone(work).plan()
    assert [c[0] for c in capstone.commands if "compose" in c[0]] == ["docker-compose"]
    assert any("qemu-system-aarch64" in c[0] for c in capstone.commands)


def test_allow_root_defaults_to_how_the_kernel_runs_and_explains_itself(tmp_path):
    work = session(tmp_path / "w")
    for panel in (ch4.jupyter_config(work), ch4.jupyter_start(work), ch4.capstone(work)):
        default, label = panel.field_specs["allow_root"][:2]
        assert "password" not in panel.field_specs or panel.field_specs["password"][0] == ""
        assert default is AS_ROOT and "--allow-root" in label
    assert ch4.jupyter_config(work, allow_root=False).field_specs["allow_root"][0] is False


def test_the_password_field_is_masked_and_never_shown(tmp_path):
    import ipywidgets as w

    work = session(tmp_path / "w")
    panel = ch4.jupyter_config(work, port=free_port(), allow_root=AS_ROOT)
    c = panel.controls()
    assert isinstance(c.fields["password"], w.Password)
    masked = [n for n, p in _panels(work).items() if "password" in p.field_specs]
    assert masked == [
        "ch4.jupyter.config",
        "ch4.jupyter.seed",
        "ch4.jupyter.login",
        "ch4.jupyter.kernel",
        "ch4.capstone",
    ]
    for name in masked:
        assert isinstance(_panels(work)[name].controls().fields["password"], w.Password), name
    assert c.fields["password"].value == ""
    c.fields["password"].value = PASSWORD  # what the student types
    assert PASSWORD not in c.plan.value
    step = panel.build()
    assert repr(step.password) == "Password(<hidden>)" and step.password.reveal() == PASSWORD
    result = panel.run("auto")
    assert result.status == "pass", result
    assert result.evidence["password_source"] == "field"  # the typed one, not the environment's
    shown = " ".join([c.plan.value, c.console.value, c.status.value, str(result.to_payload())])
    assert PASSWORD not in shown
    text = (tmp_path / "w" / "jupyter" / "config" / "jupyter_server_config.py").read_text()
    assert PASSWORD not in text and "argon2:" in text
    c.fields["password"].value = "bad\x07bell"  # a control character: named, never echoed
    bad = panel.plan()
    assert isinstance(bad, CheckResult) and "bad" not in bad.message and "<hidden>" in str(bad.evidence)


@pytest.mark.slow
@pytest.mark.guest
def test_panels_run_a_real_server_and_the_capstone_combines_the_chapter_checks(tmp_path):
    """config → start → login → compose → capstone (planmatch) → stop, for real, password typed."""
    work = session(tmp_path / "w")
    port = free_port()
    common = {"port": port}
    config = ch4.jupyter_config(work, **common).set(password=PASSWORD)
    assert config.run("auto").status == "pass"
    seed = ch4.jupyter_seed_demo(work).set(port=free_port(), password=PASSWORD).run("auto")
    assert seed.status == "pass" and PASSWORD not in str(seed.to_payload()), seed  # the typed one: 401
    start = ch4.jupyter_start(work, **common)
    started = start.run("auto")
    assert started.status == "pass", started
    pid = started.evidence["pid"]
    try:
        login = ch4.jupyter_login(work, **common).set(password=PASSWORD).run("auto")
        assert login.status == "pass", login
        wrong = ch4.jupyter_login(work, **common).set(password="not-it").run("auto")
        assert wrong.status == "fail", wrong
        assert ch4.seafile_compose(work, http_port=free_port()).run("auto").status == "pass"

        panel = ch4.capstone(work, jupyter_port=port).set(password=PASSWORD)  # typed, as in config
        capstone, ran = execute_and_match(panel.build(), "auto")
        parts = {p["part"]: p for p in capstone.evidence["parts"]}
        assert capstone.status == "pass", capstone
        assert [parts[p]["status"] for p in ("vm", "jupyter", "compose")] == ["pass"] * 3
        assert parts["vm"]["check"] == "ch1.guest.boot" and parts["jupyter"]["check"] == "ch4.jupyter.login"
        assert (parts["seafile"]["status"], parts["seafile"]["skip_reason"]) == ("skipped", "host")
        assert any(a[0] == "docker-compose" for a in ran) and any("qemu-system-aarch64" in a[0] for a in ran)
        for result in (started, login, capstone):
            assert PASSWORD not in str(result.to_payload())
    finally:
        stopped = ch4.jupyter_stop(work, **common).run("auto")
    assert stopped.status == "pass", stopped
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    again = ch4.jupyter_stop(work, **common).run("auto")
    assert again.status == "pass" and again.evidence.get("already_present")
    after = Capstone.for_work(work.path, jupyter_port=port, allow_root=AS_ROOT).execute("auto")
    assert after.status == "skipped" and "Jupyter" in after.message  # nothing proven, nothing failed


# -- the criterion, with small real steps as parts -----------------------------------------------
class _Part(Step):
    def __init__(self, outcome: str, check: str = "t.part") -> None:
        self.outcome = outcome
        self.check_id = check

    def plan(self) -> Plan:
        return Plan(
            self.check_id, f"part {self.outcome}", commands=[["true"]] if self.outcome != "host" else []
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return "cannot run here" if self.outcome == "host" else None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.run(["true"])
        return {}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if self.outcome == "pass":
            return CheckResult.passed(self.check_id, "ok", **evidence)
        return CheckResult.failed(self.check_id, "broken", **evidence)


def _capstone(vm="pass", jupyter="pass", compose="pass", seafile="host") -> CheckResult:
    parts = {"vm": _Part(vm), "jupyter": _Part(jupyter), "compose": _Part(compose), "seafile": _Part(seafile)}
    result, _ran = execute_and_match(Capstone(parts), "auto")
    return result


def test_the_capstone_criterion():
    with use_lang("en"):
        planned = _capstone()
        assert planned.status == "pass" and "Seafile reachable: planned (cannot run here)" in planned.message
        assert _capstone(seafile="pass").status == "pass"
        failed = _capstone(compose="fail")
        assert (
            failed.status == "fail"
            and "Seafile's compose file is valid did not pass: broken" in failed.message
        )
        assert _capstone(seafile="fail").status == "fail"  # a Seafile that runs and does not answer fails
        skipped = _capstone(jupyter="host")
        assert (skipped.status, skipped.evidence["skip_reason"]) == ("skipped", "host")
        assert [p["status"] for p in skipped.evidence["parts"]] == ["pass", "skipped", "pass", "skipped"]
    with pytest.raises(ValueError):
        Capstone({"vm": _Part("pass")})


def test_english_panels(tmp_path):
    with use_lang("en"):
        work = session(tmp_path / "w")
        assert ch4.capstone(work).title.startswith("4.5 capstone")
        assert ch4.jupyter_config(work).labels()["password"].startswith("password (blank")
        assert Path(ch4.seafile_compose(work).make_step.fixed["folder"]) == work.path


def test_a_bad_port_is_named_by_every_server_panel_and_the_hints_quote_real_titles(tmp_path):
    """Port "abc" in the kernel/stop panels was a urllib ``InvalidURL`` traceback; the "run X first"
    hints quote the panels' real titles."""
    work = session(tmp_path / "w")
    for factory in (ch4.jupyter_kernel, ch4.jupyter_stop, ch4.jupyter_login, ch4.jupyter_start):
        for port in ("abc", 70000):
            result = factory(work).set(port=port).run("auto")
            assert result.status == "error", (factory, result)
            assert result.message.startswith("端口（--port）："), result.message
    assert not (tmp_path / "w" / "jupyter" / "server.pid").exists()
    port = free_port()
    login = ch4.jupyter_login(work, port=port).set(password=PASSWORD).run("auto")
    assert login.status == "skipped" and f"「{ch4.jupyter_start(work).title}」" in login.message
    start = ch4.jupyter_start(work, port=port).run("auto")
    assert start.status == "skipped" and "「写入 Jupyter Server 配置」" in start.message
    assert ch4.jupyter_config(work).title.startswith("写入 Jupyter Server 配置")


def test_seafile_findings_name_the_label_not_the_keyword(tmp_path):
    from labkit.steps.seafile import compose_v2

    if compose_v2() is None:
        pytest.skip("no compose tool (apt-get install docker-compose)")
    work = session(tmp_path / "w")
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert ch4.seafile_compose(work, http_port=taken).run("auto").status == "pass"
        result = ch4.seafile_validate(work, http_port=taken).run("auto")
        with use_lang("en"):
            english = ch4.seafile_validate(work, http_port=taken).run("auto")
    assert result.status == "fail" and "第一个在 网页端口：" in result.message, result.message
    assert "http_port" not in result.message
    assert english.status == "fail" and "the first in web port:" in english.message
    compose = tmp_path / "w" / "seafile" / "docker-compose.yml"
    compose.write_text("services: [this is: not valid\n")
    broken = ch4.seafile_validate(work, http_port=taken).run("auto")
    assert broken.status == "fail" and "第一个在 compose 文件：" in broken.message
    assert "Error:" not in broken.message and "yaml." not in broken.message


def test_the_capstones_bad_ports_are_named_by_its_own_labels(tmp_path):
    work = session(tmp_path / "w")
    jupyter = ch4.capstone(work).set(jupyter_port="abc").run("auto")
    assert jupyter.status == "error" and jupyter.message.startswith("Jupyter 端口："), jupyter.message
    assert jupyter.evidence["field"] == "jupyter_port"
    seafile = ch4.capstone(work).set(seafile_port=70000).run("auto")
    assert seafile.status == "error" and seafile.message.startswith("Seafile 网页端口："), seafile.message
    with use_lang("en"):
        english = ch4.capstone(work).set(jupyter_port=0).run("auto")
    assert english.message.startswith("Jupyter port:"), english.message
