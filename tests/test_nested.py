"""Chapter 3 nested-virtualization check: the course's vmx/svm count run for real on this machine
(x86_64, no vmx/svm exposed, KVM unusable here: count 0 explained), the grep exit-1 case, advice."""

from __future__ import annotations

import platform

import pytest

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import nested
from labkit.logic.host import parse_cpuinfo_flags
from labkit.steps.nested import NestedVirtCheck
from labkit.steps.runner import default_runner
from tests.planmatch import execute_and_match


def _cpuinfo_count() -> int:
    with open(nested.CPUINFO, encoding="utf-8") as fh:
        return sum(1 for line in fh if "vmx" in line or "svm" in line)


def test_parse_flag_count_reads_grep_exit_codes():
    assert nested.parse_flag_count(0, "16\n") == 16
    assert nested.parse_flag_count(1, "0\n") == 0  # grep -c: nothing found exits 1
    assert nested.parse_flag_count(2, "", "grep: /nope: No such file or directory") is None
    assert nested.parse_flag_count(0, "garbage") is None


def test_grep_for_real_agrees_with_python():
    done = default_runner().run(nested.build_flag_count(), timeout=10, check=False)
    count = nested.parse_flag_count(done.returncode, done.stdout, done.stderr)
    assert count == _cpuinfo_count()
    assert done.returncode == (0 if count else 1)
    missing = default_runner().run(nested.build_flag_count("/nonexistent/cpuinfo"), timeout=10, check=False)
    assert missing.returncode == 2
    assert nested.parse_flag_count(missing.returncode, missing.stdout, missing.stderr) is None


def test_nested_check_on_this_machine():
    result, ran = execute_and_match(NestedVirtCheck())
    assert result.status == "pass", result.message
    ev = result.evidence
    assert ran[0] == ["grep", "-Ec", "(vmx|svm)", "/proc/cpuinfo"]
    assert ev["vmx_svm_count"] == _cpuinfo_count()
    with open(nested.CPUINFO, encoding="utf-8") as fh:
        flags = parse_cpuinfo_flags(fh.read())
    assert ev["cpu_virt_flags"] == sorted(flags & {"vmx", "svm"})  # chapter 1's facts agree
    if ev["vmx_svm_count"] == 0 and not ev["kvm_usable"]:
        # these machines: no VT-x/AMD-V in the virtual CPU and KVM unusable → kvm: no, slower
        assert "kvm: no" in ev["meaning"] and "TCG" in ev["meaning"]
        assert any("--nested-hw-virt" in a for a in ev["advice"])
    else:
        pytest.skip(f"this host exposes vmx/svm or KVM works ({platform.machine()})")


def test_meaning_and_advice_in_both_languages():
    with use_lang("en"):
        assert "count is 0" in nested.nested_meaning(0, False)
        assert "accelerat" in nested.nested_meaning(8, True)
        assert "KVM is not usable" in nested.nested_meaning(8, False)
        assert "aarch64" in nested.nested_meaning(0, True, "aarch64")
        assert nested.nested_advice(8, True) == []
        assert len(nested.nested_advice(0, False, "my pve")) == 3
    with use_lang("zh"):
        assert "嵌套虚拟化未开启" in nested.nested_meaning(0, False)
    assert nested.vbox_nested_argv("my pve") == ["VBoxManage", "modifyvm", "my pve", "--nested-hw-virt", "on"]
    with pytest.raises(InvalidField):
        NestedVirtCheck(vm="-bad").plan()


def test_nested_check_speaks_the_course_language():
    with use_lang("en"):
        result = NestedVirtCheck(probe_kvm=False).execute("live")
    assert result.status == "pass"
    if result.evidence["vmx_svm_count"] == 0:
        assert "KVM was not tested" in result.message
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in result.message + " ".join(result.evidence["advice"]))
    with use_lang("zh"):
        assert "计数" in NestedVirtCheck(probe_kvm=False).execute("live").message
