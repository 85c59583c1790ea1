"""PVE as IaaS (course 4.3): ``qm create`` / ``pct create`` from fields, chapter 1's sizing.

There is no PVE host here: the step's run is planned with ``skip_reason: host``; the argv,
the field rules, the config reader and the sizing are tested as pure functions. Never run on a
real PVE host in this suite (README says so).
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.logic import pve_create as pc
from labkit.logic.host import HostFacts
from labkit.steps.pve_create import CreateGuest

GiB = 2**30


def test_qm_create_argv_uses_pves_option_syntax():
    spec = pc.build_guest("vm", vmid=120, name="hadoop-1", cores=4, memory_mib=8192, disk_gib=64)
    argv = pc.create_argv(spec)
    assert argv[:3] == ["qm", "create", "120"]
    opts = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert opts["--name"] == "hadoop-1"
    assert opts["--memory"] == "8192" and opts["--cores"] == "4" and opts["--sockets"] == "1"
    assert opts["--scsi0"] == "local-lvm:64,iothread=1"
    assert opts["--ide2"] == f"{pc.DEFAULT_ISO},media=cdrom"
    assert opts["--net0"].startswith("virtio,bridge=vmbr0")
    assert opts["--ostype"] == "l26"
    assert pc.status_argv(spec) == ["qm", "status", "120"]
    assert pc.config_argv(spec) == ["qm", "config", "120"]


def test_pct_create_argv_has_template_rootfs_and_no_password():
    spec = pc.build_guest("ct", vmid=200, ssh_public_keys="/root/.ssh/id_ed25519.pub")
    argv = pc.create_argv(spec)
    assert argv[:4] == ["pct", "create", "200", pc.DEFAULT_TEMPLATE]
    opts = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert opts["--hostname"] == "ubuntu-ct"
    assert opts["--rootfs"] == "local-lvm:8"
    assert opts["--net0"] == "name=eth0,bridge=vmbr0,ip=dhcp,firewall=1"
    assert opts["--unprivileged"] == "1"
    assert opts["--ssh-public-keys"] == "/root/.ssh/id_ed25519.pub"
    assert "--password" not in argv
    assert pc.status_argv(spec) == ["pct", "status", "200"]


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        ("lxc", {}, "kind"),
        ("vm", {"vmid": 99}, "vmid"),
        ("vm", {"name": "bad_name!"}, "name"),
        ("vm", {"cores": 0}, "cores"),
        ("vm", {"memory_mib": "4G"}, "memory_mib"),
        ("vm", {"disk_gib": -1}, "disk_gib"),
        ("vm", {"storage": "local lvm"}, "storage"),
        ("vm", {"bridge": "vmbr0;reboot"}, "bridge"),
        ("vm", {"iso": "/tmp/ubuntu.iso"}, "iso"),
        ("ct", {"template": "local:iso/ubuntu.iso"}, "template"),
        ("vm", {"ssh_public_keys": "/root/.ssh/id.pub"}, "ssh_public_keys"),
        ("ct", {"ssh_public_keys": "ssh-ed25519 AAAA key"}, "ssh_public_keys"),
    ],
)
def test_each_bad_field_is_named(kind, fields, field):
    with pytest.raises(InvalidField) as info:
        pc.build_guest(kind, **fields)
    assert info.value.field == field


@given(
    name=st.text(max_size=80),
    cores=st.one_of(st.integers(-5, 600), st.text(max_size=4), st.booleans()),
    storage=st.text(max_size=20),
)
def test_field_validation_either_builds_or_names_a_field(name, cores, storage):
    try:
        spec = pc.build_guest("vm", name=name, cores=cores, storage=storage)
    except InvalidField as exc:
        assert exc.field in {"name", "cores", "storage"}
        return
    argv = pc.create_argv(spec)
    # nothing a student types can smuggle a second option or a shell word into the argv
    assert argv[argv.index("--name") + 1] == spec.name
    assert all("\n" not in a and " " not in a for a in argv)
    assert 1 <= spec.cores <= 512


def test_config_read_back_and_differences():
    spec = pc.build_guest("vm", vmid=100, name="hadoop-100", cores=2, memory_mib=4096, disk_gib=32)
    config_text = (
        "boot: order=scsi0;ide2;net0\ncores: 2\nmemory: 4096\nname: hadoop-100\n"
        "net0: virtio=BC:24:11:5E:7A:01,bridge=vmbr0,firewall=1\nostype: l26\n"
        "scsi0: local-lvm:vm-100-disk-0,iothread=1,size=32G\nsockets: 1\n\n[snap]\ncores: 1\n"
    )
    config = pc.parse_config(config_text)
    assert config["cores"] == "2"  # the main section, not the snapshot's
    assert pc.config_differences(spec, config) == []
    other = pc.build_guest("vm", vmid=100, name="hadoop-100", cores=4, memory_mib=4096, disk_gib=40)
    diffs = pc.config_differences(other, config)
    assert any("cores" in d for d in diffs) and any("scsi0" in d for d in diffs)
    assert not pc.guest_exists(2, "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist")
    assert pc.guest_exists(0, "status: stopped")


def test_sizing_reuses_chapter_ones_policy():
    host = HostFacts(cores=4, memory_bytes=8 * GiB)
    big = pc.build_guest("vm", cores=4, memory_mib=7680)
    codes = {f.code: f.field for f in pc.sizing_findings(big, host)}
    assert codes["memory.exceeds_host"] == "memory_mib"
    assert codes["cores.all"] == "cores"
    small = pc.build_guest("vm", cores=2, memory_mib=2048)
    assert {f.severity for f in pc.sizing_findings(small, host)} == {"info"}


@pytest.mark.parametrize("kind", ["vm", "ct"])
def test_create_is_planned_with_the_host_reason_without_qm(kind):
    tool = "qm" if kind == "vm" else "pct"
    if shutil.which(tool):
        pytest.skip(f"{tool} exists: this is a PVE host")
    step = CreateGuest(kind, vmid=150)
    result, ran = execute_and_match(step, mode="auto")
    assert result.status == "skipped"
    assert result.evidence["skip_reason"] == "host"
    assert tool in result.message
    assert ran == []
    assert result.evidence["plan"]["commands"] == [pc.create_argv(step.spec())]
    assert [tool, "status", "150"] in result.evidence["plan"]["probes"]


def test_create_with_a_bad_field_is_an_error_naming_it():
    result = CreateGuest("vm", name="no spaces allowed").execute("plan")
    assert result.status == "error"
    assert result.evidence["field"] == "name"
