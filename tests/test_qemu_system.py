"""The chapter-1 QEMU command builder, its validation, and PlanVM against the real qemu-system-aarch64."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.findings import SEVERITIES, Finding
from labkit.logic.host import HostFacts
from labkit.logic.qemu_output import qemu_error_line
from labkit.logic.qemu_rules import machine_cpu_findings
from labkit.logic.qemu_system import (
    SEED_DEVICES,
    Disk,
    VMSpec,
    build_qemu_argv,
    device_names_in,
    dry_start_argv,
    explain_qemu_stderr,
    help_commands,
    memory_bytes,
    parse_cpu_help,
    parse_device_help,
    parse_machine_help,
    plan_x86_64,
    qemu_version_tuple,
    seed_commands,
    seed_spec,
    seed_x86_command,
    validate_spec,
)
from labkit.steps.kvmprobe import kvm_probe_argv
from labkit.steps.runner import FunctionRunner, SubprocessRunner
from labkit.steps.vm import HyperVCommands, LibvirtInstall, PlanVM, VirtualBoxNetwork

# The three lines of the course text (1.3.3), copied verbatim, double spaces included.
SEED_INSTALL = (
    "qemu-system-aarch64 -M virt,virtualization=true -m 8G -cpu max,pauth-impdef=on -smp 8 "
    "-drive if=pflash,format=raw,file=efi.img,readonly=on  --accel tcg,thread=multi -device ramfb "
    "-device qemu-xhci -device usb-kbd -device usb-tablet -nic user,model=virtio-net-pci "
    "-device usb-storage,drive=install "
    "-drive if=none,id=install,format=raw,media=cdrom,file=./ubuntu-24.04-live-server-arm64.iso "
    "-drive if=virtio,id=system,format=raw,file=./ubuntu-arm64.img"
)
SEED_RUN_IMG = (
    "qemu-system-aarch64 -M virt,virtualization=true -m 8G -cpu max,pauth-impdef=on -smp 8 "
    "-drive if=pflash,format=raw,file=efi.img,readonly=on  --accel tcg,thread=multi -device ramfb "
    "-device qemu-xhci -device usb-kbd -device usb-tablet -nic user,model=virtio-net-pci "
    "-drive if=virtio,id=system,format=raw,file=./ubuntu-arm64.img"
)
SEED_RUN_QCOW2 = (
    "qemu-system-aarch64 -M virt,virtualization=true -m 8G -cpu max,pauth-impdef=on -smp 8 "
    "-drive if=pflash,format=raw,file=efi.img,readonly=on  --accel tcg,thread=multi -device ramfb "
    "-device qemu-xhci -device usb-kbd -device usb-tablet -nic user,model=virtio-net-pci "
    "-drive if=virtio,id=system,format=qcow2,file=ubuntu-arm64.qcow2"
)
SEED_X86 = "qemu-system-x86_64 -hda /path/to/your/image/file"

HOST = HostFacts(os_name="Linux", arch="x86_64", cores=16, memory_bytes=64 * 2**30, kvm_reason="no vmx")
QEMU = shutil.which("qemu-system-aarch64")
needs_qemu = pytest.mark.skipif(QEMU is None or shutil.which("qemu-img") is None, reason="QEMU not installed")


def problems_of(spec: VMSpec, host: HostFacts = HOST, version=(7, 2, 0), **kw) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for p in validate_spec(spec, host, version, **kw):
        out.setdefault(p.field, []).append(p)
    return out


def severities(problems: list[Finding]) -> set[str]:
    return {p.severity for p in problems}


# -- the course's lines ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "text"), [("install", SEED_INSTALL), ("run_img", SEED_RUN_IMG), ("run_qcow2", SEED_RUN_QCOW2)]
)
def test_seed_commands_reproduce_the_course_text_token_by_token(key, text):
    built = seed_commands()[key]
    expected = shlex.split(text)
    for i, (a, b) in enumerate(zip(built, expected, strict=False)):
        assert a == b, f"token {i}: {a!r} != {b!r}"
    assert len(built) == len(expected)


def test_seed_x86_line_is_verbatim():
    assert seed_x86_command() == shlex.split(SEED_X86)


def test_default_spelling_uses_single_dash_accel_and_same_options():
    seed = seed_commands()["run_img"]
    plain = build_qemu_argv(seed_spec(disks=(Disk("./ubuntu-arm64.img", id="system"),)))
    assert plain[plain.index("-accel") + 1] == "tcg,thread=multi"
    assert [t for t in seed if t != "--accel"] == [t for t in plain if t != "-accel"]


def test_x86_64_uses_kvm_and_host_cpu_only_when_kvm_works():
    good = HostFacts(arch="x86_64", cores=8, memory_bytes=32 * 2**30, kvm_usable=True, kvm_reason="ok")
    spec, notes = plan_x86_64(good, "disk.qcow2", memory="4G", smp=2)
    argv = build_qemu_argv(spec)
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert argv[argv.index("-cpu") + 1] == "host"
    assert argv[argv.index("-m") + 1] == "4G"
    assert argv[argv.index("-smp") + 1] == "2"
    assert "if=virtio,id=system,format=qcow2,file=disk.qcow2" in argv
    assert "-M" not in argv
    assert not any("pauth" in a for a in argv)
    assert "KVM" in " ".join(notes)
    assert [p for p in validate_spec(spec, good, path_exists=lambda p: True) if p.severity != "info"] == []

    bad = HostFacts(arch="x86_64", kvm_usable=False, kvm_reason="/dev/kvm exists but KVM_RUN fails")
    spec, notes = plan_x86_64(bad, "disk.qcow2")
    argv = build_qemu_argv(spec)
    assert argv[argv.index("-accel") + 1] == "tcg,thread=multi"
    assert argv[argv.index("-cpu") + 1] == "max"
    assert "KVM_RUN fails" in notes[0]
    arm = HostFacts(arch="aarch64", kvm_usable=True, kvm_reason="ok")
    spec, notes = plan_x86_64(arm, "disk.qcow2")
    assert spec.accel == "tcg"
    assert "aarch64" in notes[0]


# -- validation -------------------------------------------------------------------------------------
def test_memory_must_leave_room_for_the_host():
    small = HostFacts(cores=8, memory_bytes=8 * 2**30)
    found = problems_of(seed_spec(memory="8G"), small)
    assert severities(found["memory"]) == {"error"}
    found = problems_of(seed_spec(memory="6G"), small)
    assert severities(found["memory"]) == {"warning"}  # more than half: the course's 16G-for-8G advice
    assert "memory" not in problems_of(seed_spec(memory="4G"), small)


def test_memory_spelling_is_normalised_for_qemu():
    assert memory_bytes("8G") == memory_bytes("8GB") == memory_bytes("8192") == 8 * 2**30
    argv = build_qemu_argv(seed_spec(memory="8GB"))
    assert argv[argv.index("-m") + 1] == "8G"
    assert build_qemu_argv(seed_spec(memory="1536"))[4] == "1536M"
    assert severities(problems_of(seed_spec(memory="8GB"))["memory"]) == {"info"}
    for bad in ("8X", "", "1.5", "100K", "-1G", "0"):
        with pytest.raises(InvalidField) as err:
            VMSpec(memory=bad)
        assert err.value.field == "memory"


def test_smp_more_than_cores_is_a_warning_and_gicv2_caps_virt_at_8():
    two = HostFacts(cores=2, memory_bytes=64 * 2**30)
    found = problems_of(seed_spec(smp=8), two)
    assert severities(found["smp"]) == {"warning"}
    assert "thread" in found["smp"][0].message
    found = problems_of(seed_spec(smp=9), HostFacts(cores=16, memory_bytes=64 * 2**30))
    assert severities(found["smp"]) == {"error"}
    assert "smp" not in problems_of(
        seed_spec(smp=9, gic_version="3"), HostFacts(cores=16, memory_bytes=2**36)
    )
    assert "gic-version=3" in build_qemu_argv(seed_spec(gic_version="3"))[2]


def test_pauth_impdef_rules_follow_qemu_versions():
    assert severities(problems_of(seed_spec(cpu="cortex-a57"))["cpu"]) == {"error"}
    assert "cortex-a57-arm-cpu.pauth-impdef" in problems_of(seed_spec(cpu="cortex-a57"))["cpu"][0].message
    assert severities(problems_of(seed_spec(cpu="neoverse-v1"), version=(9, 2, 0))["cpu"]) == {"warning"}
    assert severities(problems_of(seed_spec(), version=(5, 2, 0))["pauth_impdef"]) == {"error"}
    assert "pauth_impdef" not in problems_of(seed_spec(), version=(7, 2, 0))
    assert severities(problems_of(seed_spec(), version=(10, 0, 0))["pauth_impdef"]) == {"info"}
    assert severities(problems_of(seed_spec(pauth_impdef=False))["pauth_impdef"]) == {"warning"}
    assert "cpu" not in problems_of(seed_spec(cpu="cortex-a57", pauth_impdef=False))


def test_kvm_requests_are_checked_against_the_host():
    x86 = seed_spec(arch="x86_64", machine=None, pauth_impdef=False, efi=None, accel="kvm", cpu="host")
    found = problems_of(x86, HOST)
    assert found["accel"][0].severity == "error"
    assert "no vmx" in found["accel"][0].message
    ok = HostFacts(arch="x86_64", cores=16, memory_bytes=2**36, kvm_usable=True, kvm_reason="ok")
    assert "accel" not in problems_of(x86, ok)
    found = problems_of(seed_spec(accel="kvm"), ok)  # aarch64 guest on an x86_64 host
    assert found["accel"][0].severity == "error"
    assert "aarch64" in found["accel"][0].message
    found = problems_of(seed_spec(arch="x86_64", machine=None, pauth_impdef=False, cpu="host"), ok)
    assert severities(found["cpu"]) == {"error"}
    found = problems_of(seed_spec(accel="hvf"), HOST)
    assert severities(found["accel"]) == {"error"}


def test_display_nic_and_boot_notes():
    found = problems_of(seed_spec(disks=(Disk("a.img"),)))
    assert severities(found["display"]) == {"warning"}
    notes = " ".join(p.message for p in found["nic"])
    assert "150" in notes
    assert "efi-virtio.rom" in notes
    found = problems_of(seed_spec(display="none", nic="none", disks=(Disk("a.img"),)))
    assert "display" not in found
    assert "nic" not in found
    found = problems_of(seed_spec(disks=(Disk("a.img"),), nic_rom=False))
    assert all("efi-virtio" not in p.message for p in found["nic"])
    found = problems_of(seed_spec(efi=None))
    assert severities(found["efi"]) == {"error"}


def test_missing_files_are_warnings_only_when_a_checker_is_given(tmp_path):
    disk = tmp_path / "system.img"
    disk.write_bytes(b"")
    spec = seed_spec(efi=str(tmp_path / "efi.img"), iso=str(tmp_path / "x.iso"), disks=(Disk(str(disk)),))
    assert "efi" not in problems_of(spec)
    assert "iso" not in problems_of(spec)
    found = problems_of(spec, path_exists=os.path.exists)
    assert severities(found["efi"]) == {"warning"}
    assert severities(found["iso"]) == {"warning"}
    assert "disks" not in found


def test_bad_fields_raise_invalid_field_naming_the_field():
    cases = {
        "arch": {"arch": "riscv64"},
        "accel": {"accel": "xen"},
        "smp": {"smp": 0},
        "cpu": {"cpu": "max,pauth=off"},
        "machine": {"machine": "virt,gic-version=3"},
        "display": {"display": "spice"},
        "nic": {"nic": "tap"},
        "efi": {"efi": "a\nb"},
        "disks": {"disks": ("a.img",)},
    }
    for field, kw in cases.items():
        with pytest.raises(InvalidField) as err:
            VMSpec(**kw)
        assert err.value.field == field
        assert err.value.fix is not None
    with pytest.raises(InvalidField):
        Disk("x.img", format="vhd")
    with pytest.raises(InvalidField):
        VMSpec(disks=(Disk("a.img", id="same"), Disk("b.img", id="same")))


def test_commas_in_file_names_are_doubled():
    argv = build_qemu_argv(seed_spec(efi="my,efi.img", disks=(Disk("a,b.img"),)))
    assert "if=pflash,format=raw,file=my,,efi.img,readonly=on" in argv
    assert "if=virtio,id=system,format=raw,file=a,,b.img" in argv


def test_second_disk_gets_its_own_id_and_nic_without_rom():
    argv = build_qemu_argv(seed_spec(disks=(Disk("a.img"), Disk("b.qcow2", "qcow2")), nic_rom=False))
    assert "if=virtio,id=disk1,format=qcow2,file=b.qcow2" in argv
    assert argv[argv.index("-netdev") + 1] == "user,id=net0"
    assert "virtio-net-pci,netdev=net0,romfile=" in argv
    assert device_names_in(argv) == ["ramfb", "qemu-xhci", "usb-kbd", "usb-tablet", "virtio-net-pci"]


def test_dry_start_argv_pauses_hides_and_quits_over_qmp():
    spec = seed_spec(iso="u.iso", disks=(Disk("a.img"),), kernel="Image", append="console=ttyAMA0")
    argv = dry_start_argv(spec, qmp_pipe="/t/qmp", disk_paths=["/t/d0"], iso_path="/t/i", drop_kernel=True)
    assert argv[-7:] == [
        "-S",
        "-monitor",
        "none",
        "-chardev",
        "pipe,id=labkitqmp,path=/t/qmp",
        "-mon",
        "chardev=labkitqmp,mode=control",
    ]
    assert "-display" in argv
    assert argv[argv.index("-display") + 1] == "none"
    assert "if=virtio,id=system,format=raw,file=/t/d0" in argv
    assert "-kernel" not in argv
    assert any(a.endswith("file=/t/i") for a in argv)
    with pytest.raises(InvalidField):
        dry_start_argv(spec, qmp_pipe="/t/qmp", disk_paths=[])


# -- reading QEMU's output -----------------------------------------------------------------------------
def test_explain_qemu_stderr_maps_measured_messages_to_fixes():
    stderr = "\n".join(
        [
            "qemu-system-aarch64: can't apply global cortex-a57-arm-cpu.pauth-impdef=on: Property "
            "'cortex-a57-arm-cpu.pauth-impdef' not found",
            'qemu-system-aarch64: failed to find romfile "efi-virtio.rom"',
            "qemu-system-aarch64: device requires 67108864 bytes, block backend provides 2097152 bytes",
            "qemu-system-aarch64: Number of SMP CPUs requested (9) exceeds max CPUs supported by machine "
            "'mach-virt' (8)",
            "qemu-system-aarch64: cannot set up guest memory 'mach-virt.ram': Cannot allocate memory",
            "Could not open option rom 'vgabios-ramfb.bin': No such file or directory",
            "qemu: module ui-ui-gtk not found, do you want to install qemu-system-gui package?",
            "qemu-system-aarch64: something new went wrong",
        ]
    )
    found = explain_qemu_stderr(stderr)
    assert [p.field for p in found] == ["cpu", "nic", "efi", "smp", "memory", "qemu"]
    assert all(p.severity == "error" for p in found)
    assert "ipxe-qemu" in found[1].fix
    assert "64 MiB" in found[2].fix
    assert "gic_version" in found[3].fix
    assert found[-1].message == "something new went wrong"
    assert explain_qemu_stderr("") == []


def test_parse_version_and_help_texts():
    assert qemu_version_tuple("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)") == (7, 2, 22)
    assert qemu_version_tuple("QEMU emulator version 9.0") == (9, 0, 0)
    assert qemu_version_tuple("nothing") is None
    assert parse_machine_help(
        "Supported machines are:\nvirt                 QEMU 7.2 ARM Virtual Machine "
        "(alias of virt-7.2)\nvirt-7.2             QEMU 7.2 ARM\n"
    ) == {"virt", "virt-7.2"}
    assert parse_cpu_help("Available CPUs:\n  cortex-a57\n  max\n") == {"cortex-a57", "max"}
    assert parse_cpu_help("Available CPUs:\nx86 486   (alias of 486-v1)\nx86 host  KVM processor\n") >= {
        "486",
        "host",
    }
    assert parse_device_help(
        'name "usb-kbd", bus usb-bus\nname "virtio-net-pci", bus PCI, alias "virtio-net"'
    ) == {
        "usb-kbd",
        "virtio-net-pci",
        "virtio-net",
    }


# -- properties ----------------------------------------------------------------------------------------
def _split_qemu_opts(value: str) -> dict[str, str]:
    """Test-side reader of QEMU's key=value,key=value syntax with ",," as a literal comma."""
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == ",":
            if value[i + 1 : i + 2] == ",":
                cur += ","
                i += 2
                continue
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    parts.append(cur)
    return dict(p.split("=", 1) for p in parts if "=" in p)


any_text = st.one_of(st.text(max_size=20), st.integers(-5, 5000), st.none(), st.booleans(), st.floats())
paths = st.text(alphabet=st.characters(blacklist_characters="\x00\n\r"), min_size=1, max_size=30).filter(
    lambda s: s.strip()
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "arch": st.one_of(st.sampled_from(["aarch64", "x86_64"]), any_text),
            "memory": st.one_of(st.sampled_from(["8G", "512M", "1024", "8GB", "1.5G"]), any_text),
            "smp": st.one_of(st.integers(-2, 20), any_text),
            "cpu": st.one_of(st.sampled_from(["max", "cortex-a57", "host"]), any_text),
            "accel": st.one_of(st.sampled_from(["tcg", "kvm"]), any_text),
            "display": st.one_of(st.sampled_from(["none", "vnc", "default"]), any_text),
            "nic": st.one_of(st.sampled_from(["user", "none"]), any_text),
            "efi": st.one_of(st.none(), paths, any_text),
            "pauth_impdef": st.one_of(st.booleans(), any_text),
            "gic_version": st.one_of(st.none(), st.sampled_from(["2", "3"]), any_text),
        },
    ),
    st.integers(1, 64),
    st.integers(1, 256),
)
def test_any_field_values_give_invalid_field_or_problems_never_other_errors(kw, cores, mem_gib):
    try:
        spec = VMSpec(**kw)
    except InvalidField as exc:
        assert exc.field
        return
    host = HostFacts(cores=cores, memory_bytes=mem_gib * 2**30)
    problems = validate_spec(spec, host)
    assert all(isinstance(p, Finding) for p in problems)
    assert all(p.severity in SEVERITIES and p.code for p in problems)
    argv = build_qemu_argv(spec)
    assert all(isinstance(a, str) and "\n" not in a and "\x00" not in a for a in argv)
    assert shlex.split(shlex.join(argv)) == argv  # the copy-paste shell line means exactly this argv
    assert argv[0] == f"qemu-system-{spec.arch}"


@settings(max_examples=100)
@given(
    st.lists(st.tuples(paths, st.sampled_from(["raw", "qcow2"])), min_size=0, max_size=3),
    st.integers(16, 65536),
    st.integers(1, 8),
    st.one_of(st.none(), paths),
)
def test_argv_round_trips_to_the_spec(disks, mem_mib, smp, iso):
    spec = seed_spec(disks=tuple(Disk(p, f) for p, f in disks), memory=f"{mem_mib}M", smp=smp, iso=iso)
    argv = build_qemu_argv(spec)
    assert memory_bytes(argv[argv.index("-m") + 1]) == mem_mib * 2**20
    assert int(argv[argv.index("-smp") + 1]) == smp
    drives = [_split_qemu_opts(v) for f, v in itertools.pairwise(argv) if f == "-drive"]
    disk_drives = [d for d in drives if d.get("if") == "virtio"]
    assert [(d["file"], d["format"]) for d in disk_drives] == list(disks)
    cdroms = [d["file"] for d in drives if d.get("media") == "cdrom"]
    assert cdroms == ([iso] if iso is not None else [])


# -- the real QEMU -------------------------------------------------------------------------------------
@pytest.mark.qemu
@needs_qemu
def test_real_help_lists_contain_what_the_course_uses():
    runner = SubprocessRunner()
    assert "virt" in parse_machine_help(runner.run([QEMU, "-machine", "help"], timeout=20).stdout)
    assert {"max", "cortex-a57"} <= parse_cpu_help(runner.run([QEMU, "-cpu", "help"], timeout=20).stdout)
    devices = parse_device_help(runner.run([QEMU, "-device", "help"], timeout=20).stdout)
    assert set(SEED_DEVICES) <= devices
    assert qemu_version_tuple(runner.run([QEMU, "--version"], timeout=20).stdout) is not None


def _quick_spec(**kw) -> VMSpec:
    base = {"smp": 2, "memory": "512M", "display": "none", "gpu": "none", "usb_input": False}
    base.update(kw)
    return seed_spec(**base)


@pytest.mark.qemu
@needs_qemu
def test_planvm_accepts_a_good_command_with_a_real_dry_start(tmp_path):
    spec = _quick_spec(
        disks=(Disk(str(tmp_path / "sys.qcow2"), "qcow2"),),
        nic_rom=False,
        gpu="ramfb",
        usb_input=True,
        iso=str(tmp_path / "install.iso"),
    )
    result = PlanVM(spec).execute("live")
    assert result.status == "pass", result.evidence
    ev = result.evidence
    assert ev["dry_start_returncode"] == 0
    assert ev["dry_start_accepted"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", ev["qemu_version"])
    assert all(ev["devices_checked"].values())
    assert "virtio-net-pci" in ev["devices_checked"]
    assert " -S " in ev["dry_start"]
    assert "romfile=" in ev["dry_start"]
    assert any(c.startswith("qemu-img create") for c in ev["commands"])
    stand_ins = Path(re.search(r"path=(\S+)/qmp", ev["dry_start"])[1])
    assert not stand_ins.exists()  # cleanup() removed the temporary disks


@pytest.mark.qemu
@needs_qemu
def test_planvm_real_qemu_rejects_pauth_impdef_on_cortex_a57():
    result = PlanVM(
        _quick_spec(cpu="cortex-a57", nic="none", efi=None, kernel="/nonexistent/Image")
    ).execute()
    assert result.status == "fail"
    assert result.evidence["dry_start_returncode"] not in (0, None)
    from_qemu = [
        p for p in result.evidence["findings"] if "pauth-impdef" in p["message"] and p["field"] == "cpu"
    ]
    assert len(from_qemu) == 2  # predicted by validate_spec and reported by the real QEMU
    assert "cortex-a57-arm-cpu.pauth-impdef" in result.evidence["dry_start_stderr"]


@pytest.mark.qemu
@needs_qemu
def test_planvm_real_qemu_rejects_unpadded_firmware():
    fw = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
    if not os.path.isfile(fw) or os.path.getsize(fw) == 64 * 2**20:
        pytest.skip("unpadded QEMU_EFI.fd not installed")
    result = PlanVM(_quick_spec(efi=fw, nic="none")).execute()
    assert result.status == "fail"
    assert any(p["field"] == "efi" and "67108864" in p["message"] for p in result.evidence["findings"])


@pytest.mark.qemu
@needs_qemu
def test_planvm_seed_network_card_needs_the_ipxe_rom_exactly_when_it_is_missing():
    result = PlanVM(_quick_spec(nic="user")).execute()
    rom_present = any(Path(d, "efi-virtio.rom").exists() for d in ("/usr/share/qemu", "/usr/lib/ipxe/qemu"))
    rom_problem = [p for p in result.evidence["findings"] if p["severity"] == "error" and p["field"] == "nic"]
    if rom_present:
        assert result.status == "pass"
        assert not rom_problem
    else:
        assert result.status == "fail"
        assert "efi-virtio.rom" in rom_problem[0]["message"]
        assert "ipxe-qemu" in rom_problem[0]["fix"]


def test_qemu_error_line_is_qemus_own_first_error():
    stderr = "\n".join(
        [
            "qemu: module ui-ui-gtk not found, do you want to install qemu-system-gui package?",
            "qemu-system-aarch64: warning: dbus display is not supported",
            "qemu-system-aarch64: cannot set up guest memory 'mach-virt.ram': Cannot allocate memory",
            "qemu-system-aarch64: something later",
        ]
    )
    assert qemu_error_line(stderr) == (
        "qemu-system-aarch64: cannot set up guest memory 'mach-virt.ram': Cannot allocate memory"
    )
    assert qemu_error_line("Linux version 6.1\nqemu: module ui-ui-gtk not found") is None
    assert qemu_error_line("") is None


def test_the_virt_vcpu_cap_depends_on_the_gic():
    (capped,) = machine_cpu_findings("aarch64", "virt", 9)
    assert (capped.field, capped.severity, capped.code) == ("smp", "error", "smp.gicv2_max")
    assert "gic_version" in capped.fix
    (fixed_board,) = machine_cpu_findings("aarch64", "virt", 64, gic_settable=False)
    assert "gic" not in fixed_board.fix and "8" in fixed_board.fix  # no GIC field to point at
    assert machine_cpu_findings("aarch64", "virt", 8) == []
    assert machine_cpu_findings("aarch64", "virt", 64, "3") == []
    assert machine_cpu_findings("aarch64", "sbsa-ref", 64) == []
    assert machine_cpu_findings("x86_64", "virt", 64) == []


@pytest.mark.qemu
@needs_qemu
@pytest.mark.parametrize(
    ("spec", "qemu_says"),
    [
        (_quick_spec(smp=9, nic="none"), "exceeds max CPUs supported by machine"),
        (_quick_spec(memory="4096G", nic="none"), "cannot set up guest memory"),
    ],
    ids=["vcpus", "memory"],
)
def test_planvm_failure_quotes_qemus_own_error_line(spec, qemu_says):
    """The rule says why before QEMU runs; the dry start's own line is quoted in the result."""
    if (
        qemu_says.startswith("cannot set up")
        and Path("/proc/sys/vm/overcommit_memory").read_text().strip() == "1"
    ):
        pytest.skip("vm.overcommit_memory=1: the kernel grants any mapping, QEMU does not refuse")
    host = HostFacts(cores=16, memory_bytes=8 * 2**30)
    predicted = [f for f in validate_spec(spec, host) if f.severity == "error"]
    assert predicted and predicted[0].field in ("smp", "memory")
    result = PlanVM(spec, host).execute("live")
    assert result.status == "fail"
    said = result.evidence["qemu_error"]
    assert said.startswith("qemu-system-aarch64: ") and qemu_says in said
    assert said in result.message
    assert predicted[0].message in result.message  # labkit's explanation first


def test_planvm_plan_shows_the_vm_command_and_the_dry_start_it_runs():
    spec = seed_spec(disks=(Disk("./ubuntu-arm64.img", id="system"),))
    step = PlanVM(spec, HOST)
    result = step.execute("plan")
    assert result.status == "skipped"
    assert result.mode == "plan"
    plan = result.evidence["plan"]
    assert plan["notes"][0].endswith(shlex.join(build_qemu_argv(spec)))
    assert any("display" in n for n in plan["notes"])
    creates, dry = plan["commands"][:-1], plan["commands"][-1]
    assert [c[:2] for c in creates] == [["qemu-img", "create"]] * len(creates)
    assert all(c[-2].startswith(step.scratch + "/") for c in creates)
    assert dry[0] == "qemu-system-aarch64"
    assert "-S" in dry
    assert f"if=virtio,id=system,format=raw,file={step.scratch}/disk0.raw" in dry
    assert ["qemu-system-aarch64", "-device", "help"] in plan["probes"]
    assert not os.path.exists(step.scratch)  # planning creates nothing


def test_planvm_plans_the_kvm_probe_only_when_it_will_run_it():
    kvm = seed_spec(arch="x86_64", machine=None, pauth_impdef=False, efi=None, accel="kvm", cpu="host")
    probe = kvm_probe_argv()
    assert probe in PlanVM(kvm).plan().probes
    assert probe not in PlanVM(kvm, HOST).plan().probes  # HOST's KVM verdict is known
    assert probe not in PlanVM(seed_spec()).plan().probes  # TCG needs no KVM test


def test_planvm_without_dry_start_runs_only_read_only_probes():
    spec = _quick_spec(disks=(Disk("a.qcow2", "qcow2"),))
    helps = help_commands(spec.binary)
    answers = {
        tuple(helps["version"]): "QEMU emulator version 7.2.22 (Debian)\n",
        tuple(helps["machine"]): "Supported machines are:\nvirt   QEMU Virtual Machine\n",
        tuple(helps["cpu"]): "Available CPUs:\n  cortex-a57\n  max\n",
        tuple(helps["device"]): 'name "virtio-net-pci", bus PCI\n',
    }
    inner = FunctionRunner(lambda argv: (0, answers[tuple(argv)], ""))
    result, ran = execute_and_match(PlanVM(spec, HOST, dry_start=False), runner=inner)
    assert result.status == "pass", result.evidence
    assert sorted(ran) == sorted(helps.values())


@pytest.mark.qemu
@needs_qemu
def test_planvm_runs_exactly_what_it_plans(tmp_path):
    spec = _quick_spec(
        disks=(Disk(str(tmp_path / "sys.qcow2"), "qcow2"),),
        nic_rom=False,
        iso=str(tmp_path / "i.iso"),
        efi=str(tmp_path / "efi.img"),
    )
    step = PlanVM(spec)
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.evidence
    assert ran[-1] == step.plan().commands[-1]  # the dry start, last, exactly as planned
    assert [c[:2] for c in ran].count(["qemu-img", "create"]) == 3  # disk, ISO, firmware (absent here)
    assert not os.path.exists(step.scratch)


def test_planvm_reports_missing_binary_as_planned_only():
    spec = seed_spec(arch="x86_64", machine=None, pauth_impdef=False, efi=None, disks=(Disk("a.img"),))
    result = PlanVM(spec).execute()
    if shutil.which("qemu-system-x86_64"):
        assert result.mode == "run"
    else:
        assert result.status == "skipped"
        assert "qemu-system-x86" in result.message


# -- the other steps of labkit.steps.vm: plan == execution, with a scripted runner -------------------
def test_virtualbox_step_runs_exactly_its_plan(monkeypatch):
    monkeypatch.setattr("labkit.steps.vm.shutil.which", lambda name: f"/usr/bin/{name}")

    def vbox(argv):
        if argv[1] == "showvminfo":
            return 0, 'nic2="hostonly"\nhostonlyadapter2="vboxnet0"\n', ""
        return 0, "", ""

    result, ran = execute_and_match(
        VirtualBoxNetwork("ubuntu", "hostonly", 2, "vboxnet0"), runner=FunctionRunner(vbox)
    )
    assert result.status == "pass", result.message
    assert [c[1] for c in ran] == ["modifyvm", "showvminfo"]


def test_hyperv_step_runs_exactly_its_plan(monkeypatch):
    monkeypatch.setattr("labkit.steps.vm.platform.system", lambda: "Windows")
    runner = FunctionRunner(
        lambda argv: (0, "hypervisorlaunchtype    Off\n" if argv[0] == "bcdedit" else "", "")
    )
    result, ran = execute_and_match(HyperVCommands("disable", consent=True), runner=runner)
    assert result.status == "pass", result.message
    assert ran[0][0] == "powershell.exe"
    assert ran[-1] == ["bcdedit", "/enum", "{current}"]


def test_libvirt_step_runs_exactly_its_plan(monkeypatch):
    monkeypatch.setattr("labkit.steps.vm.read_os_release", lambda: {"ID": "debian"})
    monkeypatch.setattr("labkit.steps.vm.os.geteuid", lambda: 0)
    probes = [["id", "-nG", "hadoop"], ["systemctl", "is-enabled", "cockpit.socket"], ["virsh", "--version"]]
    answers = dict(zip(map(tuple, probes), ("hadoop libvirt kvm\n", "enabled\n", "9.0.0\n"), strict=True))
    runner = FunctionRunner(lambda argv: (0, answers.get(tuple(argv), ""), ""))
    result, ran = execute_and_match(LibvirtInstall("hadoop", consent=True), runner=runner)
    assert result.status == "pass", result.message
    assert ran[-3:] == [
        ["id", "-nG", "hadoop"],
        ["systemctl", "is-enabled", "cockpit.socket"],
        ["virsh", "--version"],
    ]
