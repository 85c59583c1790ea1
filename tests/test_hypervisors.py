"""VirtualBox network modes, Hyper-V on/off and the libvirt + Cockpit install (chapter 1.3.4-1.3.6)."""

from __future__ import annotations

import shlex
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import use_lang
from labkit.logic import hypervisors as hv
from labkit.steps.base import RunContext
from labkit.steps.runner import Completed, FunctionRunner, SubprocessRunner
from labkit.steps.vm import HyperVCommands, LibvirtInstall, VirtualBoxNetwork

# Course text 1.3.6, verbatim.
SEED_HYPERV_DISABLE = """\
Disable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-All
Disable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform
bcdedit /set hypervisorlaunchtype off"""
SEED_HYPERV_ENABLE = """\
Enable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-All
Enable-WindowsOptionalFeature -Online -FeatureName HypervisorPlatform
bcdedit /set hypervisorlaunchtype auto"""
# Course text 1.3.4, verbatim.
SEED_LIBVIRT = """\
sudo apt update
sudo apt install qemu-kvm libvirt-daemon-system libvirt-clients bridge-utils
sudo adduser username libvirt
sudo adduser username kvm
sudo apt install cockpit cockpit-machines
sudo systemctl start cockpit
sudo systemctl enable cockpit"""


# -- VirtualBox ---------------------------------------------------------------------------------------
def test_the_eight_modes_of_the_course_with_its_descriptions():
    assert [m.key for m in hv.NETWORK_MODES] == [
        "nat", "bridged", "intnet", "hostonly", "generic", "natnetwork", "cloud", "null",
    ]  # fmt: skip
    by = {m.key: m for m in hv.NETWORK_MODES}
    assert "外部网络不能直接访问虚拟机" in by["nat"].desc_zh
    assert "只允许虚拟机之间相互通信" in by["intnet"].desc_zh
    assert "不能访问外部网络" in by["hostonly"].desc_zh
    assert "共享同一个 NAT 服务" in by["natnetwork"].desc_zh
    for m in hv.NETWORK_MODES:
        assert m.name_zh
        assert m.name_en
        assert m.desc_en


def test_reachability_matches_the_course_and_the_virtualbox_manual(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "zh")
    nat, natnet = hv.network_mode("nat"), hv.network_mode("natnetwork")
    assert (nat.vm_to_internet, nat.host_to_vm, nat.vm_to_vm) == ("yes", "port-forward", "no")
    assert (natnet.vm_to_internet, natnet.vm_to_vm) == ("yes", "yes")  # the difference the course explains
    host_only, internal = hv.network_mode("hostonly"), hv.network_mode("intnet")
    assert (host_only.host_to_vm, host_only.vm_to_internet) == ("yes", "no")
    assert (internal.vm_to_vm, internal.host_to_vm, internal.vm_to_internet) == ("yes", "no", "no")
    assert all(v == "yes" for k, v in hv.reachability_table()[1].items() if "→" in k or "↔" in k)
    # the course's recommendation covers both directions it cares about
    assert nat.vm_to_internet == "yes"
    assert host_only.host_to_vm == "yes"
    advice = " ".join(hv.vbox_advice())
    assert "桥接" in advice
    assert "NAT" in advice


@pytest.mark.parametrize(
    ("mode", "nic", "target", "expected"),
    [
        ("nat", 1, None, "VBoxManage modifyvm VM --nic1 nat"),
        ("hostonly", 2, "vboxnet0", "VBoxManage modifyvm VM --nic2 hostonly --hostonlyadapter2 vboxnet0"),
        ("bridged", 1, "eth0", "VBoxManage modifyvm VM --nic1 bridged --bridgeadapter1 eth0"),
        ("intnet", 3, "lab", "VBoxManage modifyvm VM --nic3 intnet --intnet3 lab"),
        ("natnetwork", 1, "NatNetwork", "VBoxManage modifyvm VM --nic1 natnetwork --natnetwork1 NatNetwork"),
        ("generic", 4, "UDPTunnel", "VBoxManage modifyvm VM --nic4 generic --nicgenericdrv4 UDPTunnel"),
        ("cloud", 1, "net", "VBoxManage modifyvm VM --nic1 cloud --cloudnetwork1 net"),
        ("null", 2, None, "VBoxManage modifyvm VM --nic2 null"),
        ("none", 2, None, "VBoxManage modifyvm VM --nic2 none"),
        ("host-only", 2, "vboxnet1", "VBoxManage modifyvm VM --nic2 hostonly --hostonlyadapter2 vboxnet1"),
    ],
)
def test_modifyvm_argv_per_mode(mode, nic, target, expected):
    assert hv.vbox_modifyvm_argv("VM", mode, nic, target) == shlex.split(expected)


def test_modifyvm_uses_spellings_both_virtualbox_6_and_7_accept():
    # VBoxManageModifyVM.cpp (7.x) lists OPT2("--host-only-adapter", "--hostonlyadapter", ...); 6.x
    # knows only the second spelling.
    flags = {m.target_flag for m in hv.NETWORK_MODES if m.target_flag}
    assert flags == {"--bridgeadapter", "--intnet", "--hostonlyadapter", "--nicgenericdrv", "--natnetwork",
                     "--cloudnetwork"}  # fmt: skip


def test_modifyvm_rejects_bad_input():
    with pytest.raises(InvalidField) as err:
        hv.vbox_modifyvm_argv("VM", "hostonly", 2)
    assert err.value.field == "target"
    assert "vboxnet0" in err.value.fix
    with pytest.raises(InvalidField):
        hv.vbox_modifyvm_argv("VM", "nat", 1, "eth0")
    with pytest.raises(InvalidField) as err:
        hv.vbox_modifyvm_argv("VM", "nat", 9)
    assert err.value.field == "nic"
    with pytest.raises(InvalidField):
        hv.vbox_modifyvm_argv("--nic1", "nat")
    with pytest.raises(InvalidField) as err:
        hv.vbox_modifyvm_argv("VM", "wifi")
    assert err.value.field == "mode"


def test_recommended_setup_is_nat_plus_host_only():
    assert hv.recommended_vbox_setup("ubuntu vm") == [
        ["VBoxManage", "modifyvm", "ubuntu vm", "--nic1", "nat"],
        ["VBoxManage", "modifyvm", "ubuntu vm", "--nic2", "hostonly", "--hostonlyadapter2", "vboxnet0"],
    ]


def test_parse_showvminfo_machinereadable():
    text = (
        'name="ubuntu"\nnic1="nat"\nnic2="hostonly"\nhostonlyadapter2="vboxnet0"\n"SATA-0-0"="/vms/u.vdi"\n'
    )
    info = hv.parse_showvminfo(text)
    assert info["nic1"] == "nat"
    assert info["hostonlyadapter2"] == "vboxnet0"
    assert info["SATA-0-0"] == "/vms/u.vdi"


def test_virtualbox_step_is_planned_without_vboxmanage_and_checks_showvminfo():
    step = VirtualBoxNetwork("ubuntu", "hostonly", 2, "vboxnet0")
    result = step.execute()
    if shutil.which("VBoxManage") is None:
        assert result.status == "skipped"
        assert result.mode == "plan"
        assert result.evidence["plan"]["commands"] == [
            hv.vbox_modifyvm_argv("ubuntu", "hostonly", 2, "vboxnet0")
        ]

    def fake(state):
        def handler(argv):
            if argv[1] == "showvminfo":
                return 0, state, ""
            return 0, "", ""

        return handler

    good = 'nic2="hostonly"\nhostonlyadapter2="vboxnet0"\n'
    ctx = RunContext(FunctionRunner(fake(good)))
    ev = step.run(ctx)
    assert step.check(ctx, ev).status == "pass"
    ctx = RunContext(FunctionRunner(fake('nic2="hostonly"\nhostonlyadapter2="vboxnet1"\n')))
    assert step.check(ctx, step.run(ctx)).status == "fail"


# -- Hyper-V ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "text"), [("disable", SEED_HYPERV_DISABLE), ("enable", SEED_HYPERV_ENABLE)]
)
def test_the_course_lines_are_kept_verbatim_and_shown_in_the_notes(action, text):
    assert hv.seed_hyperv_commands(action) == [line.split() for line in text.splitlines()]
    with use_lang("en"):
        notes = hv.hyperv_notes(action)
    assert notes[0] == "the course's lines (administrator PowerShell): " + "; ".join(text.splitlines())


def test_hyperv_commands_wrap_cmdlets_in_powershell_and_notes_warn():
    cmds = hv.hyperv_commands("disable")
    assert cmds[0][:4] == ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command"]
    assert (
        cmds[0][4] == "Disable-WindowsOptionalFeature -Online -FeatureName Microsoft-Hyper-V-All -NoRestart"
    )
    assert cmds[2] == ["bcdedit", "/set", "hypervisorlaunchtype", "off"]
    notes = " ".join(hv.hyperv_notes("disable"))
    assert "WSL2" in notes
    assert "Sandbox" in notes
    with pytest.raises(InvalidField):
        hv.hyperv_commands("toggle")


def test_read_back_commands_are_built_once():
    assert hv.bcdedit_enum_argv() == ["bcdedit", "/enum", "{current}"]
    assert hv.vbox_showvminfo_argv("ubuntu") == ["VBoxManage", "showvminfo", "ubuntu", "--machinereadable"]
    assert hv.libvirt_check_argv("hadoop")["groups"] == ["id", "-nG", "hadoop"]
    with pytest.raises(InvalidField):
        hv.vbox_showvminfo_argv("-x")


def test_parse_bcdedit():
    text = (
        "Windows Boot Loader\n-------------------\n"
        "identifier              {current}\nhypervisorlaunchtype    Off\n"
    )
    assert hv.parse_bcdedit_launchtype(text) == "off"
    assert hv.parse_bcdedit_launchtype("identifier {current}") is None


def test_hyperv_step_is_planned_off_windows_and_needs_consent():
    step = HyperVCommands("disable")
    result = step.execute()
    assert result.check == "ch1.hyperv.disable"
    assert result.status == "skipped"
    assert result.evidence["plan"]["commands"] == hv.hyperv_commands("disable")
    with pytest.raises(ConsentRequired):
        step.run(RunContext(FunctionRunner(lambda argv: (0, "", ""))))


# -- libvirt + Cockpit -------------------------------------------------------------------------------
def test_seed_libvirt_lines_are_verbatim_and_labkit_corrects_two():
    assert hv.seed_libvirt_commands() == [shlex.split(line) for line in SEED_LIBVIRT.splitlines()]
    cmds = hv.libvirt_install_commands("hadoop")
    assert cmds == [
        ["apt-get", "update"],
        [
            "apt-get",
            "install",
            "-y",
            "qemu-system-x86",
            "libvirt-daemon-system",
            "libvirt-clients",
            "bridge-utils",
        ],
        ["adduser", "hadoop", "libvirt"],
        ["adduser", "hadoop", "kvm"],
        ["apt-get", "install", "-y", "cockpit", "cockpit-machines"],
        ["systemctl", "enable", "--now", "cockpit.socket"],
    ]
    assert all(c[0] == "sudo" for c in hv.libvirt_install_commands("hadoop", sudo=True))
    notes = " ".join(hv.libvirt_notes())
    assert "qemu-system-x86" in notes
    assert "cockpit.socket" in notes


@pytest.mark.parametrize(
    "bad", ["", "Hadoop", "1user", "user name", "a" * 33, "username", "x;rm -rf /", None, 5]
)
def test_usernames_are_validated(bad):
    with pytest.raises(InvalidField) as err:
        hv.libvirt_install_commands(bad)
    assert err.value.field == "user"


@given(st.text(max_size=40))
def test_username_validation_never_raises_anything_else(text):
    try:
        assert hv.validate_username(text) == text
    except InvalidField as exc:
        assert exc.field == "user"


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="not a Debian/Ubuntu host")
def test_qemu_kvm_is_only_a_virtual_package_provided_by_qemu_system_x86():
    runner = SubprocessRunner()
    shown = runner.run(["apt-cache", "show", hv.QEMU_KVM_PACKAGE], timeout=60, check=False)
    if shown.returncode != 0 or not shown.stdout.strip():
        pytest.skip("qemu-system-x86 not in this host's package lists")
    provides = [line for line in shown.stdout.splitlines() if line.startswith("Provides:")]
    assert provides
    assert all("qemu-kvm" in line for line in provides)
    policy = runner.run(["apt-cache", "policy", "qemu-kvm"], timeout=60).stdout
    assert "Candidate: (none)" in policy  # nothing installable under that name itself


def test_libvirt_step_plans_without_consent_and_runs_the_plan_with_it():
    plan_only = LibvirtInstall("hadoop").execute()
    assert plan_only.status == "skipped"
    assert plan_only.mode == "plan"
    assert plan_only.evidence["plan"]["commands"] == hv.libvirt_install_commands("hadoop")

    answers = {
        ("id", "-nG", "hadoop"): "hadoop sudo libvirt kvm\n",
        ("systemctl", "is-enabled", "cockpit.socket"): "enabled\n",
        ("virsh", "--version"): "9.0.0\n",
    }
    runner = FunctionRunner(lambda argv: Completed(argv, 0, answers.get(tuple(argv), ""), ""))
    step = LibvirtInstall("hadoop", consent=True)
    ctx = RunContext(runner)
    result = step.check(ctx, step.run(ctx))  # not execute(): nothing may really be installed here
    assert result.status == "pass"
    assert runner.history[:6] == hv.libvirt_install_commands("hadoop")
    answers[("id", "-nG", "hadoop")] = "hadoop\n"
    assert step.check(ctx, {}).status == "fail"
    with pytest.raises(ConsentRequired):
        LibvirtInstall("hadoop").run(ctx)
