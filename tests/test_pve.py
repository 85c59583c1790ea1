"""PVE guest config edits (``kvm: no``) and ``qm destroy`` (course section on PVE in VirtualBox)."""

from __future__ import annotations

import os
import shutil
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import ConsentRequired, InvalidField
from labkit.logic import pve
from labkit.steps.base import RunContext
from labkit.steps.pve import QmDestroy, SetPveOption
from labkit.steps.runner import Completed, FunctionRunner

CONF = pve.sample_conf(100)


# -- the pure edit --------------------------------------------------------------------------------------
def test_set_option_replaces_kvm_in_the_main_section_only():
    new = pve.set_option(CONF, "kvm", "no")
    assert pve.get_option(new, "kvm") == "no"
    assert pve.get_option(new, "kvm", "clean-install") == "1"  # the snapshot keeps its own config
    assert pve.get_option(new, "memory", "PENDING") == "8192"
    assert pve.other_lines_unchanged(CONF, new, "kvm")
    old_lines, new_lines = CONF.split("\n"), new.split("\n")
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert changed == [("kvm: 1", "kvm: no")]
    assert new.startswith("#Ubuntu 24.04 server for the Hadoop lab\n#owner%3A student")
    assert new.endswith("\n")


def test_the_courses_echo_append_edits_the_snapshot_instead():
    appended = pve.naive_append(CONF, "kvm", "no")
    assert pve.append_lands_in(CONF) == "clean-install"
    assert pve.get_option(appended, "kvm") == "1"  # the running config is unchanged ...
    assert pve.get_option(appended, "kvm", "clean-install") == "no"  # ... the snapshot was edited
    warnings = pve.seed_append_warnings(CONF, "kvm")
    assert len(warnings) == 1
    assert "clean-install" in warnings[0]


def test_insert_before_the_first_section_when_the_key_is_absent():
    text = "#desc\ncores: 2\nmemory: 2048\n\n[snap1]\ncores: 1\n"
    new = pve.set_option(text, "kvm", "0")
    assert new == "#desc\ncores: 2\nmemory: 2048\nkvm: 0\n\n[snap1]\ncores: 1\n"
    assert pve.seed_append_warnings(text, "kvm") != []


def test_fresh_vm_append_is_harmless_and_newline_and_crlf_are_kept():
    fresh = "cores: 2\nmemory: 2048\n"
    assert pve.seed_append_warnings(fresh, "kvm") == []
    assert pve.set_option(fresh, "kvm", "no") == pve.naive_append(fresh, "kvm", "no")
    assert pve.set_option("cores: 2", "kvm", "0") == "cores: 2\nkvm: 0"
    assert len(pve.seed_append_warnings("cores: 2", "kvm")) == 1  # no final newline: lines get glued
    assert pve.set_option("cores: 2\r\nkvm: 1\r\n", "kvm", "0") == "cores: 2\r\nkvm: 0\r\n"
    assert pve.set_option("", "kvm", "0") == "kvm: 0\n"
    dupes = "kvm: 1\ncores: 2\nkvm: 1\n"
    assert pve.set_option(dupes, "kvm", "0") == "kvm: 0\ncores: 2\nkvm: 0\n"
    assert "#kvm: 1" in pve.set_option("#kvm: 1\n", "kvm", "0")  # a description line is not an option


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("KVM", "no", "key"),
        ("kvm x", "no", "key"),
        ("description", "hi", "key"),
        ("digest", "abc", "key"),
        ("kvm", "maybe", "value"),
        ("kvm", "", "value"),
        ("cores", "2\n[snap]", "value"),
        ("name", None, "value"),
    ],
)
def test_bad_key_or_value_raise_invalid_field(key, value, field):
    with pytest.raises(InvalidField) as err:
        pve.set_option(CONF, key, value)
    assert err.value.field == field
    assert err.value.fix


@pytest.mark.parametrize("vmid", [99, 1_000_000_000, -1, "abc", "1e3", True, None, 100.0])
def test_vmid_range(vmid):
    with pytest.raises(InvalidField) as err:
        pve.validate_vmid(vmid)
    assert err.value.field == "vmid"


def test_vmid_and_paths():
    assert pve.validate_vmid("100") == 100
    assert pve.validate_vmid(999_999_999) == 999_999_999
    assert pve.conf_path(101) == "/etc/pve/qemu-server/101.conf"
    assert "vm-250-disk-0" in pve.sample_conf(250)


keys = st.sampled_from(["kvm", "cores", "memory", "net0", "boot", "onboot"])
line = st.one_of(
    st.builds(lambda k, v: f"{k}: {v}", keys, st.sampled_from(["1", "0", "2048", "virtio=AA,bridge=vmbr0"])),
    st.builds(lambda t: "#" + t, st.text(alphabet="abc :%é", max_size=10)),
    st.just(""),
    st.sampled_from(["[snap1]", "[PENDING]", "[special:cloudinit]", "[before-upgrade]"]),
)
confs = st.builds(
    lambda ls, end: "\n".join(ls) + end, st.lists(line, max_size=20), st.sampled_from(["", "\n"])
)


@settings(max_examples=300)
@given(confs, keys, st.sampled_from(["0", "1", "no", "yes"]))
def test_set_option_properties(text, key, value):
    new = pve.set_option(text, key, value)
    assert pve.get_option(new, key) == value
    assert pve.other_lines_unchanged(text, new, key)
    assert [n for n, _, _ in pve.sections(new)] == [n for n, _, _ in pve.sections(text)]
    for name, _, _ in pve.sections(text)[1:]:
        assert pve.get_option(new, key, name) == pve.get_option(text, key, name)
    assert pve.set_option(new, key, value) == new  # idempotent
    assert new.endswith("\n") == (text.endswith("\n") or text == "")


@given(st.text(max_size=200), st.text(max_size=12), st.text(max_size=12))
def test_set_option_never_raises_anything_but_invalid_field(text, key, value):
    try:
        new = pve.set_option(text, key, value)
    except InvalidField:
        return
    assert pve.get_option(new, key) == value.strip()


# -- the step, on a temporary copy ---------------------------------------------------------------------
@pytest.fixture
def conf_copy(tmp_path):
    path = tmp_path / "qemu-server" / "100.conf"
    path.parent.mkdir()
    path.write_text(CONF, encoding="utf-8")
    path.chmod(0o640)
    return path


def test_set_pve_option_refuses_without_consent(conf_copy):
    result = SetPveOption(conf_path=conf_copy).execute()
    assert result.check == "ch1.pve.kvm_off"
    assert (result.status, result.evidence["skip_reason"]) == ("skipped", "consent")
    assert result.evidence["error"] == "ConsentRequired"
    assert SetPveOption(conf_path=conf_copy).execute("live").status == "error"
    assert conf_copy.read_text(encoding="utf-8") == CONF
    assert list(conf_copy.parent.iterdir()) == [conf_copy]


def test_set_pve_option_edits_with_backup_and_verifies(conf_copy):
    result = SetPveOption(conf_path=conf_copy, consent=True).execute()
    assert result.status == "pass", result.message
    ev = result.evidence
    assert ev["changed"] is True
    assert ev["previous_value"] == "1"
    assert ev["echo_append_would_land_in"] == "clean-install"
    assert ev["echo_append_warnings"]
    assert "-kvm: 1\n+kvm: no" in ev["diff"]
    new = conf_copy.read_text(encoding="utf-8")
    assert pve.get_option(new, "kvm") == "no"
    assert pve.other_lines_unchanged(CONF, new, "kvm")
    backup = conf_copy.parent / os.path.basename(ev["backup"])
    assert backup.read_text(encoding="utf-8") == CONF
    assert stat.S_IMODE(conf_copy.stat().st_mode) == 0o640
    assert not [p for p in conf_copy.parent.iterdir() if ".labkit-tmp" in p.name]

    edited = conf_copy.read_text(encoding="utf-8")
    for consent in (True, False):  # running the cell again: verified, no second line, no backup
        again = SetPveOption(conf_path=conf_copy, consent=consent).execute()
        assert again.status == "pass", again.message
        assert again.evidence["already_present"] is True
        assert "kvm: no" in again.evidence["verified_by"]
        assert again.evidence["changed"] is False
        assert again.evidence["backup"] is None
        assert conf_copy.read_text(encoding="utf-8") == edited
    assert len(list(conf_copy.parent.glob("*.labkit-bak-*"))) == 1


def test_check_catches_other_lines_changing(conf_copy):
    step = SetPveOption(conf_path=conf_copy, consent=True)
    ctx = RunContext(FunctionRunner(lambda argv: (0, "", "")))
    evidence = step.run(ctx)
    text = conf_copy.read_text(encoding="utf-8")
    conf_copy.write_text(text.replace("cores: 2", "cores: 4", 1), encoding="utf-8")  # someone else edits
    assert step.check(ctx, evidence).status == "fail"
    conf_copy.write_text(text.replace("kvm: no", "kvm: 1", 1), encoding="utf-8")
    assert step.check(ctx, evidence).status == "fail"


def test_default_path_is_the_pve_one_and_is_planned_off_pve():
    step = SetPveOption(vmid=123)
    assert str(step.path) == "/etc/pve/qemu-server/123.conf"
    result = step.execute()
    if not os.path.exists("/etc/pve/qemu-server/123.conf"):
        assert result.status == "skipped"
        assert result.mode == "plan"
        assert any("qm set 123 --kvm 0" in n for n in result.evidence["plan"]["notes"])
    assert SetPveOption(vmid=5).execute("plan").status == "error"


# -- qm destroy -----------------------------------------------------------------------------------------
def test_qm_destroy_plan_and_purge():
    plan = QmDestroy(100).plan()
    assert plan.commands == [["qm", "stop", "100"], ["qm", "destroy", "100"]]
    assert QmDestroy(100, purge=True).plan().commands[1] == ["qm", "destroy", "100", "--purge", "1"]
    assert any("--purge" in n for n in plan.notes)
    assert QmDestroy(42).execute().status == "error"


def test_qm_destroy_is_planned_off_pve_and_needs_the_id_typed_again():
    result = QmDestroy(100, confirm="100").execute()
    if shutil.which("qm") is None:
        assert result.status == "skipped"
        assert result.mode == "plan"
    gone = "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist"
    state = {"exists": True}

    def qm(argv):
        if argv[1] == "status":
            return (
                Completed(argv, 0, "status: stopped\n", "")
                if state["exists"]
                else Completed(argv, 2, "", gone)
            )
        if argv[1] == "destroy":
            state["exists"] = False
        return Completed(argv, 0, "", "")

    runner = FunctionRunner(qm)
    ctx = RunContext(runner)
    with pytest.raises(ConsentRequired):
        QmDestroy(100, confirm="yes").run(ctx)
    assert runner.history == []  # nothing ran before the confirmation check
    step = QmDestroy(100, confirm="100")
    result = step.check(ctx, step.run(ctx))
    assert result.status == "pass"
    assert result.evidence["status_before"] == "status: stopped"
    assert runner.history[1:3] == [["qm", "stop", "100"], ["qm", "destroy", "100"]]
    state["exists"] = True
    assert step.check(ctx, {"vmid": "100"}).status == "fail"


# -- plan equals execution -----------------------------------------------------------------------------
def test_practice_copy_is_planned_written_by_the_run_and_edited(tmp_path):
    conf = tmp_path / "pve-qemu-server" / "100.conf"
    step = SetPveOption(conf_path=conf, consent=True, sample=True)
    plan = step.plan()
    assert plan.files == {str(conf): CONF}
    assert not conf.exists()  # planning writes nothing
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    assert ran == []  # a Python edit: no command
    assert result.evidence["sample_written"] is True
    assert pve.get_option(conf.read_text(encoding="utf-8"), "kvm") == "no"
    assert SetPveOption(conf_path=conf, sample=True).plan().files == {}  # exists now: edited in place


def test_a_practice_copy_is_never_written_into_a_pve_hosts_configs():
    step = SetPveOption(conf_path="/etc/pve/qemu-server/999999.conf", consent=True, sample=True)
    assert step.plan().files == {}


FAKE_QM = """#!/bin/sh
# qm as PVE answers it, with the guest's existence kept in a file beside this script
state="$(dirname "$0")/exists"
case "$1" in
  status) if [ -e "$state" ]; then echo "status: stopped"; else
            echo "Configuration file 'nodes/pve/qemu-server/$2.conf' does not exist" >&2; exit 2; fi ;;
  stop) [ -e "$state" ] || exit 2 ;;
  destroy) rm -f "$state" ;;
  *) exit 1 ;;
esac
"""


def test_qm_destroy_runs_exactly_what_it_planned(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qm = bin_dir / "qm"
    qm.write_text(FAKE_QM)
    qm.chmod(0o755)
    (bin_dir / "exists").touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result, ran = execute_and_match(QmDestroy(100, confirm="100", purge=True))
    assert result.status == "pass", result.message
    assert ran == [
        ["qm", "status", "100"],
        ["qm", "stop", "100"],
        ["qm", "destroy", "100", "--purge", "1"],
        ["qm", "status", "100"],
    ]
    assert not (bin_dir / "exists").exists()
