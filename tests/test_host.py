"""Host facts: the real probe on this machine, the KVM probe, the pure parsers and the sizing rules."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import CommandTimeout, InvalidField
from labkit.i18n import use_lang
from labkit.logic.host import (
    GpuInfo,
    HostFacts,
    ToolInfo,
    explain_docker_error,
    explain_kvm,
    parse_apt_policy,
    parse_cpuinfo_flags,
    parse_docker_version,
    parse_kubectl_version,
    parse_meminfo_total,
    parse_microk8s_version,
    parse_nvidia_smi,
    parse_os_release,
    parse_qemu_version,
    parse_zerotier_version,
)
from labkit.logic.sizing import (
    CH1_MIN_DISK,
    MEMORY_STEP,
    MIN_VM_MEMORY,
    VmSize,
    advise,
    recommend,
)
from labkit.steps import kvmprobe
from labkit.steps.base import RunContext
from labkit.steps.host import HostCheck, collect_host_facts
from labkit.steps.runner import Completed, FunctionRunner, SubprocessRunner

GiB = 2**30
MiB = 2**20


@pytest.fixture
def english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


@pytest.fixture(scope="module")
def facts() -> HostFacts:
    return collect_host_facts()


# ---------------------------------------------------------------------------------------------
# The real probe on this machine
# ---------------------------------------------------------------------------------------------
def test_real_facts_match_the_machine(facts):
    assert facts.cores == os.cpu_count()
    assert facts.arch == platform.machine()
    assert facts.is_root == (os.geteuid() == 0)
    import psutil

    assert facts.memory_bytes == psutil.virtual_memory().total
    assert facts.disk_free_bytes > 0
    assert Path(facts.disk_path) == Path(".").resolve()
    os_release = Path("/etc/os-release")
    if os_release.exists():
        text = os_release.read_text()
        pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
        assert pretty
        assert facts.os_pretty == pretty.group(1)
        assert facts.os_id
        assert re.search(rf"^ID={re.escape(facts.os_id)}$", text, re.M)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert facts.cpu_flags == parse_cpuinfo_flags(cpuinfo)
    for path, present in facts.firmware.items():
        assert present == os.path.isfile(path)


def test_real_facts_are_json_ready(facts):
    data = json.loads(json.dumps(facts.to_dict()))
    assert data["cores"] == facts.cores
    assert data["virt_flags"] == facts.virt_flags
    assert data["tools"]["qemu-img"]["present"] == facts.tool("qemu-img").present
    assert isinstance(data["kvm_probe"], dict)


@pytest.mark.qemu
@pytest.mark.parametrize("tool", ["qemu-img", "qemu-system-aarch64"])
def test_qemu_versions_match_the_tools(facts, tool):
    path = shutil.which(tool)
    if path is None:
        assert not facts.tool(tool).present
        pytest.skip(f"{tool} not installed")
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    expected = re.search(r"version (\d+(?:\.\d+)+)", out).group(1)
    info = facts.tool(tool)
    assert info.path == path
    assert info.version == expected
    assert info.detail == ""


def test_missing_tools_are_recorded_not_raised(facts):
    for name, info in facts.tools.items():
        assert info.present == (shutil.which(name) is not None), name
        if not info.present:
            assert info.detail, name


def test_kvm_facts_are_consistent_with_the_probe(facts):
    if not facts.kvm_device:
        assert not facts.kvm_usable
        assert not facts.kvm_probe
        return
    if not facts.kvm_accessible:
        assert not facts.kvm_usable
        return
    assert facts.kvm_probe["usable"] == facts.kvm_usable
    assert facts.kvm_reason
    # a second, independent run of the probe process says the same thing
    out = subprocess.run(
        [sys.executable, "-m", "labkit.steps.kvmprobe"], capture_output=True, text=True, timeout=30
    )
    again = json.loads(out.stdout.strip().splitlines()[-1])
    assert again["usable"] == facts.kvm_usable
    assert again["stage"] == facts.kvm_probe["stage"]
    assert out.returncode == (0 if again["usable"] else 1)


def test_no_hardware_virtualization_flag_means_kvm_unusable(facts):
    if facts.arch != "x86_64" or facts.virt_flags:
        pytest.skip("this x86 host has vmx/svm (or is not x86): the rule does not apply")
    assert facts.kvm_usable is False
    assert "vmx/svm" in facts.kvm_reason


def test_kvm_unusable_here_is_explained(facts):
    if facts.kvm_usable:
        assert facts.kvm_probe["stage"] == "done"
        assert facts.kvm_probe["value"] == 42
    else:
        assert facts.kvm_reason
        assert facts.kvm_reason != "not probed"
        if facts.kvm_device and facts.kvm_accessible:
            assert facts.kvm_probe["stage"] != "done"
            assert facts.kvm_probe["reason"]


def test_probe_can_be_skipped():
    f = collect_host_facts(probe_kvm=False)
    assert f.kvm_probe == {}
    assert f.kvm_usable is False


# ---------------------------------------------------------------------------------------------
# The KVM probe itself
# ---------------------------------------------------------------------------------------------
def test_kvmprobe_subprocess_prints_one_json_line_with_a_reason():
    out = subprocess.run(
        [sys.executable, "-m", "labkit.steps.kvmprobe", "1"], capture_output=True, text=True, timeout=30
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) >= {"usable", "stage", "reason", "arch"}
    assert isinstance(data["usable"], bool)
    assert data["reason"]
    if data["usable"]:
        assert data["stage"] == "done"
        assert data["value"] == 42
    else:
        assert data["stage"] in {
            "open",
            "api_version",
            "create_vm",
            "memory",
            "create_vcpu",
            "mmap_run",
            "sregs",
            "regs",
            "vcpu_init",
            "run",
        }


def test_run_kvm_probe_through_the_real_runner_matches_direct_probe():
    via_runner = kvmprobe.run_kvm_probe(SubprocessRunner(), timeout=10)
    direct = kvmprobe.probe(timeout=2)
    assert via_runner["usable"] == direct["usable"]
    assert via_runner["stage"] == direct["stage"]


def test_probe_on_a_missing_device_says_so(tmp_path):
    res = kvmprobe.probe(device=str(tmp_path / "kvm"))
    assert res["usable"] is False
    assert res["stage"] == "open"
    assert "does not exist" in res["reason"]


def test_probe_on_a_device_that_is_not_kvm(tmp_path):
    res = kvmprobe.probe(device="/dev/null")
    assert res["usable"] is False
    assert res["stage"] == "api_version"
    assert "KVM_GET_API_VERSION failed" in res["reason"]


def test_run_kvm_probe_translates_a_hang_into_a_reason():
    def hang(argv):
        raise CommandTimeout(argv, 6)

    res = kvmprobe.run_kvm_probe(FunctionRunner(hang), timeout=6)
    assert res["usable"] is False
    assert "hung" in res["reason"]


def test_run_kvm_probe_translates_a_crash_into_a_reason():
    runner = FunctionRunner(lambda argv: (1, "", "Traceback ...\nSegmentation fault"))
    res = kvmprobe.run_kvm_probe(runner)
    assert res["usable"] is False
    assert res["stage"] == "crash"
    assert "Segmentation fault" in res["reason"]
    assert runner.history[0][:3] == [sys.executable, "-m", "labkit.steps.kvmprobe"]


_HEADER_PROGRAM = r"""
#include <stdio.h>
#include <stddef.h>
#include <linux/kvm.h>
#define P(x) printf("%s %lu\n", #x, (unsigned long)(x));
int main(void) {
  P(KVM_GET_API_VERSION) P(KVM_CREATE_VM) P(KVM_CHECK_EXTENSION) P(KVM_GET_VCPU_MMAP_SIZE)
  P(KVM_CREATE_VCPU) P(KVM_SET_USER_MEMORY_REGION) P(KVM_RUN) P(KVM_SET_ONE_REG)
#if defined(__x86_64__)
  P(KVM_GET_REGS) P(KVM_SET_REGS) P(KVM_GET_SREGS) P(KVM_SET_SREGS)
#endif
#if defined(__aarch64__)
  P(KVM_ARM_VCPU_INIT) P(KVM_ARM_PREFERRED_TARGET)
#endif
  printf("off_exit_reason %zu\n", offsetof(struct kvm_run, exit_reason));
  printf("off_io %zu\n", offsetof(struct kvm_run, io));
  printf("off_mmio %zu\n", offsetof(struct kvm_run, mmio));
#if defined(__x86_64__)
  printf("off_cr0 %zu\noff_cr4 %zu\n", offsetof(struct kvm_sregs, cr0), offsetof(struct kvm_sregs, cr4));
  printf("off_rip %zu\n", offsetof(struct kvm_regs, rip));
#endif
  return 0;
}
"""


def test_ioctl_numbers_and_offsets_match_the_kernel_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/linux/kvm.h").exists():
        pytest.skip("needs a C compiler and linux-libc-dev (/usr/include/linux/kvm.h)")
    src = tmp_path / "kvm.c"
    src.write_text(_HEADER_PROGRAM)
    subprocess.run([cc, str(src), "-o", str(tmp_path / "kvm")], check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "kvm")], check=True, capture_output=True, text=True).stdout
    header = {k: int(v) for k, v in (line.split() for line in out.splitlines())}
    ours = kvmprobe.ioctl_numbers()
    compared = [name for name in header if name.startswith("KVM_")]
    assert len(compared) >= 8
    for name in compared:
        assert ours[name] == header[name], name
    assert header["off_exit_reason"] == kvmprobe._RUN_EXIT_REASON
    assert header["off_io"] == header["off_mmio"] == kvmprobe._RUN_UNION
    if "off_cr0" in header:
        assert (header["off_cr0"], header["off_cr4"]) == (kvmprobe._SREGS_CR0, kvmprobe._SREGS_CR4)
        assert header["off_rip"] == 128


def test_guest_code_is_what_the_comments_say():
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) not installed")
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".bin") as fh:
        fh.write(kvmprobe._X86_CODE)
        fh.flush()
        out = subprocess.run(
            [objdump, "-D", "-b", "binary", "-m", "i8086", fh.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    mnemonics = re.findall(r"^\s+[0-9a-f]+:\s+(?:[0-9a-f]{2} )+\s*(\w+)", out, re.M)
    assert mnemonics == ["mov", "movd", "pxor", "por", "xor", "movd", "out", "hlt"]


# ---------------------------------------------------------------------------------------------
# Pure parsers
# ---------------------------------------------------------------------------------------------
X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme de pse tsc msr vmx sse2 hypervisor
bogomips\t: 4800.00

processor\t: 1
flags\t\t: fpu something-else
"""
ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics
CPU implementer\t: 0x41
"""


def test_parse_cpuinfo_flags():
    assert parse_cpuinfo_flags(X86_CPUINFO) == {
        "fpu",
        "vme",
        "de",
        "pse",
        "tsc",
        "msr",
        "vmx",
        "sse2",
        "hypervisor",
    }
    assert "asimd" in parse_cpuinfo_flags(ARM_CPUINFO)
    assert parse_cpuinfo_flags("") == frozenset()
    assert HostFacts(cpu_flags=parse_cpuinfo_flags(X86_CPUINFO)).virt_flags == ["vmx"]


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright ...",
            "7.2.22",
        ),
        (
            "qemu-img version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022",
            "7.2.22",
        ),
        (
            "QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1.4)",
            "8.2.2",
        ),
        ("QEMU emulator version 9.1.0\nCopyright (c) 2003-2024", "9.1.0"),
        ("QEMU emulator version 6.2", "6.2"),
        ("qemu-img: command not found", None),
        ("", None),
    ],
)
def test_parse_qemu_version(text, version):
    assert parse_qemu_version(text) == version


def test_parse_os_release():
    text = (
        '# comment\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'
        'NAME=\'Single Quoted\'\nESCAPED="say \\"hi\\""\n  \nnot a line\n'
    )
    data = parse_os_release(text)
    assert data["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert data["ID"] == "debian"
    assert data["VERSION_CODENAME"] == "bookworm"
    assert data["NAME"] == "Single Quoted"
    assert data["ESCAPED"] == 'say "hi"'
    assert parse_os_release("") == {}


def test_parse_tool_versions():
    assert parse_docker_version("Docker version 28.2.2, build e6534b4") == "28.2.2"
    assert parse_docker_version("Docker version 20.10.24+dfsg1, build 297e128") == "20.10.24+dfsg1"
    kubectl_json = json.dumps(
        {"clientVersion": {"gitVersion": "v1.32.4", "major": "1"}, "kustomizeVersion": "v5"}
    )
    assert parse_kubectl_version(kubectl_json) == "v1.32.4"
    legacy = 'Client Version: version.Info{Major:"1", Minor:"20", GitVersion:"v1.20.2", GitCommit:"x"}'
    assert parse_kubectl_version(legacy) == "v1.20.2"
    assert parse_kubectl_version("Client Version: v1.30.1\nKustomize Version: v5.0.4") == "v1.30.1"
    assert parse_kubectl_version("error: unknown flag") is None
    assert parse_microk8s_version("MicroK8s v1.28.3 revision 6089") == "v1.28.3"
    assert parse_zerotier_version("1.14.1\n") == "1.14.1"
    assert parse_zerotier_version("zerotier-cli: authtoken.secret not found") is None
    assert parse_meminfo_total("MemTotal:       24683656 kB\nMemFree: 1 kB\n") == 24683656 * 1024
    assert parse_meminfo_total("nothing") is None


def test_parse_nvidia_smi():
    text = "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB\nNVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB\n"
    assert parse_nvidia_smi(text) == (
        GpuInfo("NVIDIA H100 80GB HBM3", "550.54.15", "81559 MiB"),
        GpuInfo("NVIDIA A100-SXM4-40GB", "535.104.05", "40960 MiB"),
    )
    assert parse_nvidia_smi("No devices were found") == ()
    assert parse_nvidia_smi("") == ()


def test_parse_apt_policy():
    text = (
        "kubernetes-client:\n  Installed: (none)\n  Candidate: 1.20.5+really1.20.2-1.1+deb12u1\n"
        "  Version table:\n     1.20.5+really1.20.2-1.1+deb12u1 500\n"
        "ghost:\n  Installed: (none)\n  Candidate: (none)\n"
    )
    assert parse_apt_policy(text) == {"kubernetes-client": "1.20.5+really1.20.2-1.1+deb12u1", "ghost": None}
    assert parse_apt_policy("") == {}


def test_explain_docker_error(english):
    prefix = "Error while fetching server API version: ('Connection aborted.', "
    perm = prefix + "PermissionError(13, 'Permission denied'))"
    assert explain_docker_error(perm)[0] == "permission denied"
    gone = prefix + "FileNotFoundError(2, 'No such file'))"
    assert explain_docker_error(gone)[0] == "not running"
    cli = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    assert explain_docker_error(cli)[0] == "not running"
    assert explain_docker_error("something odd\nmore") == ("error", "something odd")


@pytest.mark.usefixtures("english")
class TestExplainKvm:
    def test_no_device(self):
        usable, reason = explain_kvm(kvm_device=False, kvm_accessible=False, probe=None)
        assert not usable
        assert reason.startswith("no /dev/kvm")
        assert "vmx/svm" in reason

    def test_no_permission(self):
        usable, reason = explain_kvm(kvm_device=True, kvm_accessible=False, probe=None, cpu_flags={"vmx"})
        assert not usable
        assert "usermod -aG kvm" in reason

    def test_proven(self):
        probe = {"usable": True, "stage": "done", "reason": "ok", "value": 42}
        assert explain_kvm(kvm_device=True, kvm_accessible=True, probe=probe, cpu_flags={"svm"})[0] is True

    def test_emulation_failure_without_virt_flags_names_the_cause(self):
        probe = {
            "usable": False,
            "stage": "run",
            "reason": "x",
            "exit_reason": "KVM_EXIT_INTERNAL_ERROR",
            "suberror": 1,
        }
        usable, reason = explain_kvm(
            kvm_device=True,
            kvm_accessible=True,
            probe=probe,
            cpu_flags={"sse2"},
            kvm_modules=("kvm", "kvm_pvm"),
        )
        assert not usable
        assert reason.startswith("/dev/kvm exists but KVM_RUN failed: KVM_EXIT_INTERNAL_ERROR")
        assert "no vmx/svm CPU flag" in reason
        assert "kvm_pvm" in reason

    def test_failure_with_virt_flags_does_not_blame_them(self):
        probe = {"usable": False, "stage": "create_vm", "reason": "KVM_CREATE_VM failed: EBUSY (busy)"}
        usable, reason = explain_kvm(kvm_device=True, kvm_accessible=True, probe=probe, cpu_flags={"vmx"})
        assert not usable
        assert "KVM_CREATE_VM failed" in reason
        assert "vmx/svm" not in reason


# ---------------------------------------------------------------------------------------------
# Sizing
# ---------------------------------------------------------------------------------------------
def _levels(sizing, prefix):
    return {f.severity for f in sizing.findings if f.code.startswith(prefix)}


def test_course_rule_8g_vm_needs_16g_host():
    assert _levels(advise(HostFacts(cores=8, memory_bytes=16 * GiB), 4, 8 * GiB), "memory") == {"info"}
    assert _levels(advise(HostFacts(cores=8, memory_bytes=15 * GiB), 4, 8 * GiB), "memory") == {"warning"}
    assert _levels(advise(HostFacts(cores=8, memory_bytes=6 * GiB), 4, 8 * GiB), "memory") == {"error"}
    # A guest needs the host's RAM minus the 1 GiB headroom: 8G on a 8.5G host cannot run.
    assert _levels(advise(HostFacts(cores=8, memory_bytes=8 * GiB + GiB // 2), 4, 8 * GiB), "memory") == {
        "error"
    }


def test_core_rules_leave_one_for_the_host():
    assert _levels(advise(HostFacts(cores=8), 4, GiB), "cores.") == {"info"}
    assert _levels(advise(HostFacts(cores=4), 4, GiB), "cores.all") == {"warning"}
    # More vCPUs than cores runs, only slower: a warning, not an error (QEMU starts).
    assert _levels(advise(HostFacts(cores=2), 4, GiB), "cores.exceeds_host") == {"warning"}


def test_recommend_examples():
    assert recommend(HostFacts(cores=8, memory_bytes=32 * GiB)) == VmSize(4, 8 * GiB)
    assert recommend(HostFacts(cores=2, memory_bytes=23 * GiB)) == VmSize(1, 8 * GiB)
    assert recommend(HostFacts(cores=4, memory_bytes=8 * GiB)) == VmSize(3, 4 * GiB)
    assert recommend(HostFacts(cores=1, memory_bytes=64 * GiB)) is None
    assert recommend(HostFacts(cores=8, memory_bytes=400 * MiB)) is None


def test_disk_rule():
    assert _levels(advise(HostFacts(disk_free_bytes=CH1_MIN_DISK - 1)), "disk") == {"error"}
    assert _levels(advise(HostFacts(disk_free_bytes=100 * GiB)), "disk") == {"info"}


@pytest.mark.parametrize(("cores", "memory"), [(0, GiB), (-1, GiB), (2, 0), (2, -5), (True, GiB), ("4", GiB)])
def test_bad_requests_name_the_field(cores, memory):
    with pytest.raises(InvalidField) as exc:
        advise(HostFacts(), cores, memory)
    assert exc.value.field in ("vm_cores", "vm_memory")


hosts = st.builds(
    HostFacts,
    cores=st.integers(-2, 512),
    memory_bytes=st.integers(-1, 2**44),
    disk_free_bytes=st.integers(-1, 2**44),
)


@settings(max_examples=300, deadline=None)
@given(host=hosts, vm_cores=st.integers(1, 1024), vm_memory=st.integers(1, 2**44))
def test_advise_never_crashes_and_is_well_formed(host, vm_cores, vm_memory):
    s = advise(host, vm_cores, vm_memory)
    assert s.level in ("ok", "warning", "error")
    assert all(f.message for f in s.findings)
    rules = [f.code.split(".")[0] for f in s.findings if not f.code.startswith("cores.more")]
    assert len(set(rules)) == len(rules)  # one verdict per rule
    json.dumps(s.to_payload())


@settings(max_examples=300, deadline=None)
@given(host=hosts)
def test_recommended_size_always_fits_the_rules(host):
    rec = recommend(host)
    if rec is None:
        assert host.cores < 2 or host.memory_bytes < 2 * MIN_VM_MEMORY
        return
    assert 1 <= rec.cores <= min(4, host.cores - 1)
    assert MIN_VM_MEMORY <= rec.memory_bytes <= 8 * GiB
    assert 2 * rec.memory_bytes <= host.memory_bytes
    assert rec.memory_bytes % MEMORY_STEP == 0
    s = advise(host, *rec)
    assert _levels(s, "memory") | _levels(s, "cores.") == {"info"}


@settings(max_examples=200, deadline=None)
@given(host=hosts, vm_cores=st.integers(1, 64), a=st.integers(1, 2**40), b=st.integers(1, 2**40))
def test_more_vm_memory_never_looks_better(host, vm_cores, a, b):
    order = {"info": 0, "warning": 1, "error": 2}
    lo, hi = sorted((a, b))
    la = max((order[x] for x in _levels(advise(host, vm_cores, lo), "memory")), default=0)
    lb = max((order[x] for x in _levels(advise(host, vm_cores, hi), "memory")), default=0)
    assert la <= lb


# ---------------------------------------------------------------------------------------------
# The chapter-1 step
# ---------------------------------------------------------------------------------------------
def test_host_check_plan_lists_the_probes():
    r = HostCheck().execute(mode="plan")
    assert r.status == "skipped"
    assert r.mode == "plan"
    plan = r.evidence["plan"]
    assert plan["commands"] == []  # it only reads
    assert ["qemu-img", "--version"] in plan["probes"]
    assert ["qemu-system-aarch64", "--version"] in plan["probes"]
    assert kvmprobe.kvm_probe_argv() in plan["probes"]


@pytest.mark.qemu
def test_host_check_runs_only_what_it_plans():
    result, ran = execute_and_match(HostCheck(vm_cores=1, vm_memory="1G"))
    assert result.status in ("pass", "fail")
    assert ["qemu-img", "--version"] in ran
    facts = result.evidence
    if facts["kvm"]["device"]:
        assert kvmprobe.kvm_probe_argv() in ran
    assert not [c for c in ran if c[0] in ("docker", "kubectl", "nvidia-smi")]  # chapter 1 only


@pytest.mark.qemu
def test_host_check_runs_for_real(english):
    r = HostCheck(vm_cores=1, vm_memory="1G").execute(mode="live")
    facts = collect_host_facts(probe_kvm=False)
    needed = (
        facts.tool("qemu-img").present
        and facts.tool("qemu-system-aarch64").present
        and any(facts.firmware.values())
    )
    assert r.status == ("pass" if needed and facts.disk_free_bytes >= CH1_MIN_DISK else "fail")
    ev = r.evidence
    assert ev["host"]["cores"] == os.cpu_count()
    assert ev["tools"]["qemu-img"]["version"] == facts.tool("qemu-img").version
    assert ev["kvm"]["usable"] in (True, False)
    assert ev["kvm"]["reason"]
    assert ev["sizing"]["requested"] == {"cores": 1, "memory_bytes": GiB}
    assert any("kvmprobe" in c for c in ev["commands"])
    if not ev["kvm"]["usable"]:
        assert "TCG" in r.message  # reported, not failed


def test_host_check_rejects_bad_input(english):
    r = HostCheck(vm_memory="8X").execute()
    assert r.status == "error"
    assert r.evidence["field"] == "vm_memory"
    r = HostCheck(vm_cores=0).execute()
    assert r.status == "error"
    assert r.evidence["field"] == "vm_cores"


def _fake_facts(**kw) -> HostFacts:
    tools = {
        "qemu-img": ToolInfo("qemu-img", "/usr/bin/qemu-img", "7.2.22", "qemu-utils"),
        "qemu-system-aarch64": ToolInfo(
            "qemu-system-aarch64", "/usr/bin/qemu-system-aarch64", "7.2.22", "qemu-system-arm"
        ),
    }
    base = dict(
        tools=tools, firmware={"/usr/share/qemu-efi-aarch64/QEMU_EFI.fd": True}, disk_free_bytes=50 * GiB
    )
    base.update(kw)
    return HostFacts(**base)


def _check(facts: HostFacts):
    ctx = RunContext(runner=FunctionRunner(lambda argv: (0, "", "")))
    return HostCheck().check(ctx, {"facts": facts, "vm_cores": 4, "vm_memory_bytes": 8 * GiB})


def test_host_check_kvm_unusable_is_not_a_failure(english):
    reason = "/dev/kvm exists but KVM_RUN failed: KVM_EXIT_INTERNAL_ERROR (kvm_pvm loaded)"
    r = _check(_fake_facts(kvm_device=True, kvm_usable=False, kvm_reason=reason, kvm_probe={"stage": "run"}))
    assert r.status == "pass"
    # what it means for the student comes first; the KVM internals only in the folded evidence
    assert "no hardware acceleration here" in r.message and "still works" in r.message
    assert "KVM_EXIT_INTERNAL_ERROR" not in r.message and "kvm_pvm" not in r.message
    assert r.evidence["kvm"]["reason"] == reason
    html = r._repr_html_()
    assert html.index("KVM_EXIT_INTERNAL_ERROR") > html.index("<details")


def test_host_check_says_what_each_kvm_verdict_means():
    with use_lang("zh"):
        usable = _check(_fake_facts(kvm_device=True, kvm_usable=True, kvm_reason="ok", kvm_probe={"ok": 1}))
        unusable = _check(_fake_facts(kvm_device=False, kvm_usable=False, kvm_reason="no /dev/kvm"))
        untested = _check(_fake_facts())
    assert "这里有硬件加速" in usable.message
    assert "这里没有硬件加速" in unusable.message and "照样能完成" in unusable.message
    assert "还没有测试硬件加速" in untested.message
    assert all("KVM 的技术细节" in r.message for r in (usable, unusable, untested))


def test_host_check_missing_qemu_fails_with_install_command(english):
    facts = _fake_facts(tools={}, firmware={"/x": False})
    r = _check(facts)
    assert r.status == "fail"
    assert r.evidence["install"] == (
        "sudo apt-get install -y --no-install-recommends qemu-efi-aarch64 qemu-system-arm qemu-utils"
    )
    assert set(r.evidence["missing"]) >= {"qemu-img", "qemu-system-aarch64"}


def test_host_check_too_little_disk_fails(english):
    r = _check(_fake_facts(disk_free_bytes=100 * MiB))
    assert r.status == "fail"
    assert "free disk" in r.message


def test_collect_host_facts_survives_a_runner_that_breaks():
    def broken(argv):
        raise RuntimeError("boom")

    f = collect_host_facts(runner=FunctionRunner(broken))
    for name, info in f.tools.items():
        if shutil.which(name):
            assert "boom" in info.detail, name
    if f.kvm_device and f.kvm_accessible:
        assert f.kvm_usable is False
        assert "boom" in f.kvm_reason


def test_collect_host_facts_uses_the_runner_for_versions():
    def fake(argv):
        if argv[0] == "qemu-img":
            return Completed(argv, 0, "qemu-img version 99.1.0 (test)\n")
        if argv[0] == "nvidia-smi":
            return Completed(argv, 0, "NVIDIA Test GPU, 1.2.3, 100 MiB\n")
        return Completed(argv, 0, "")

    runner = FunctionRunner(fake)
    f = collect_host_facts(runner=runner, probe_kvm=False)
    if shutil.which("qemu-img"):
        assert f.tool("qemu-img").version == "99.1.0"
    if shutil.which("nvidia-smi"):
        assert f.gpus == (GpuInfo("NVIDIA Test GPU", "1.2.3", "100 MiB"),)
    assert all(
        argv[0]
        in {
            "qemu-img",
            "qemu-system-aarch64",
            "qemu-system-x86_64",
            "docker",
            "kubectl",
            "microk8s",
            "zerotier-cli",
            "nvidia-smi",
        }
        for argv in runner.history
    )
