"""Boot a REAL aarch64 Linux guest under TCG: prepare (apt download), boot, stream, cancel, fail.

The assets are prepared once per session into a cache that persists between runs
(``$LABKIT_CACHE/guest``, else ``~/.cache/labkit/guest``), so only the first run downloads (~22 MB).
Without network the session FAILS with the reason, unless ``LABKIT_OFFLINE=1`` says that is
expected (then the boot tests are skipped, but still run if the cache is already filled).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from planmatch import RecordingRunner, assert_plan_matches, execute_and_match

from labkit.errors import InvalidField
from labkit.logic import guest as g
from labkit.steps.firmware import BuildEfiImage, find_firmware
from labkit.steps.guest import BootGuest, PrepareTinyGuest, inspect_assets

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.guest,
    pytest.mark.skipif(shutil.which("qemu-system-aarch64") is None, reason="qemu-system-arm missing"),
]


def _cache_root() -> Path:
    root = os.environ.get("LABKIT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "labkit"


@pytest.fixture(scope="session")
def guest_dir() -> Path:
    """The prepared assets (downloaded on the first run only)."""
    cache = _cache_root() / "guest"
    res = PrepareTinyGuest(cache_dir=cache).execute("live")
    if not res.ok:
        msg = f"could not prepare the tiny guest in {cache}: {res.message}"
        if os.environ.get("LABKIT_OFFLINE") == "1":
            pytest.skip(msg + " (LABKIT_OFFLINE=1)")
        pytest.fail(msg + "\n(set LABKIT_OFFLINE=1 if this machine has no network on purpose)")
    return cache


def _qemu_processes_with(token: str) -> list[int]:
    """PIDs of live processes whose command line contains ``token`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in cmd and state != "Z":
            found.append(int(entry.name))
    return found


# -- prepare --------------------------------------------------------------------------------------
def test_prepared_assets_are_real_arm64_files(guest_dir):
    facts = inspect_assets(guest_dir)
    assert facts["ok"]
    assert facts["kernel_format"] in ("image", "gzip")
    assert facts["kernel_ok"]
    assert facts["busybox_machine"] == g.AARCH64_EM
    assert facts["busybox_static"]
    assert {"init", "bin/busybox", "dev/console"} <= set(facts["initrd_members"])
    manifest = json.loads((guest_dir / "manifest.json").read_text())
    assert manifest["kernel_package"].startswith("linux-image-")
    assert manifest["busybox_version"]
    assert manifest["kernel_version"]
    # The initramfs carries exactly the busybox that was extracted, and the current /init.
    members = g.parse_newc(gzip.decompress((guest_dir / "initrd.gz").read_bytes()))
    assert next(m for m in members if m.name == "bin/busybox").size == (guest_dir / "busybox").stat().st_size


def test_second_prepare_reuses_the_cache(guest_dir):
    step = PrepareTinyGuest(cache_dir=guest_dir)
    assert step.plan().commands == []  # the plan already says nothing will be downloaded
    res, ran = execute_and_match(step)
    assert res.ok
    assert res.evidence["downloaded"] is False
    assert res.evidence["already_present"] is True  # satisfied: run() was skipped
    assert ran == []  # nothing was run: no apt call


@pytest.mark.slow
def test_prepare_downloads_into_a_fresh_cache_without_touching_system_apt(tmp_path):
    if os.environ.get("LABKIT_OFFLINE") == "1":
        pytest.skip("LABKIT_OFFLINE=1: no download test")
    foreign_before = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True)
    lists = Path("/var/lib/apt/lists")
    arm64_lists_before = sorted(p.name for p in lists.glob("*arm64*")) if lists.is_dir() else []
    lines: list[tuple[str, str]] = []
    cache = tmp_path / "guest"
    cache.mkdir()
    (cache / "busybox").write_bytes(b"a file labkit did not make")  # replaced only with consent ...
    step = PrepareTinyGuest(cache_dir=cache, overwrite=True)
    runner = RecordingRunner()
    res = step.execute("live", runner=runner, on_line=lambda s, ln: lines.append((s, ln)))
    assert res.ok, res.message
    # The plan's command template, with the kernel package apt named, is exactly what ran.
    plan = step.plan()
    kernel = res.evidence["kernel_package"]
    resolved = [[kernel if t == g.KERNEL_PACKAGE_SLOT else t for t in c] for c in plan.commands]
    assert g.KERNEL_PACKAGE_SLOT in plan.commands[-1]
    assert_plan_matches(dataclasses.replace(plan, commands=resolved), res, runner.history)
    assert res.evidence["downloaded"] is True
    backup = list(cache.glob("busybox.labkit-bak-*"))  # ... and a backup is kept
    assert len(backup) == 1
    assert backup[0].read_bytes() == b"a file labkit did not make"
    assert any("apt-get" in c and " download " in c for c in res.evidence["commands"])
    assert any("arm64" in ln for _, ln in lines)  # apt's progress was streamed
    assert not [ln for _, ln in lines if "unsandboxed" in ln]  # no alarming apt warning for the student
    assert not (cache / ".apt-arm64").exists()  # private apt state cleaned up
    after = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True)
    assert after.stdout == foreign_before.stdout
    assert (sorted(p.name for p in lists.glob("*arm64*")) if lists.is_dir() else []) == arm64_lists_before


def test_prepare_refuses_to_replace_files_it_did_not_make(tmp_path):
    foreign = tmp_path / "vmlinuz"
    foreign.write_bytes(b"someone else's kernel")
    res = PrepareTinyGuest(cache_dir=tmp_path).execute("live")
    assert res.status == "error"
    assert res.evidence["error"] == "ConsentRequired"
    assert foreign.read_bytes() == b"someone else's kernel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vmlinuz"]  # nothing else was written


def test_changed_init_script_rebuilds_only_the_initrd(guest_dir, tmp_path):
    cache = tmp_path / "copy"
    shutil.copytree(guest_dir, cache)
    manifest = json.loads((cache / "manifest.json").read_text())
    manifest["init_sha256"] = "0" * 64  # as if an older labkit had written a different /init
    (cache / "manifest.json").write_text(json.dumps(manifest))
    (cache / "initrd.gz").write_bytes(gzip.compress(g.newc_archive([g.CpioEntry("init", data=b"old")])))
    res = PrepareTinyGuest(cache_dir=cache).execute("live")
    assert res.ok
    assert res.evidence["downloaded"] is False
    members = g.parse_newc(gzip.decompress((cache / "initrd.gz").read_bytes()))
    init = next(m for m in members if m.name == "init")
    assert init.size == len(g.init_script().encode())
    assert json.loads((cache / "manifest.json").read_text())["init_sha256"] != "0" * 64
    assert not [p.name for p in cache.iterdir() if "labkit-bak" in p.name or "labkit-tmp" in p.name]


# -- boot -----------------------------------------------------------------------------------------
def test_boot_reaches_userspace_and_streams_the_console(guest_dir):
    streamed: list[tuple[str, str]] = []
    step = BootGuest(cache_dir=guest_dir)
    res, ran = execute_and_match(step, on_line=lambda s, ln: streamed.append((s, ln)))
    assert ran == [g.boot_argv(step.spec())]  # the one command of the plan, exactly
    assert res.status == "pass", (res.message, res.evidence.get("console_tail"))
    ev = res.evidence
    assert ev["marker_seen"] is True
    assert ev["uname_m"] == "aarch64"
    # the guest powered itself off
    assert ev["qemu_exit"] == 0
    assert ev["stopped_by_labkit"] is False
    assert ev["time_to_marker_s"] > 0
    assert ev["kernel_banner"].startswith("Linux version ")
    console = [ln for s, ln in streamed if s == "stdout"]
    assert g.MARKER in console
    assert "LABKIT-UNAME-M=aarch64" in console
    assert len(console) == ev["console_lines"] == len(step.console)
    assert console.index(g.MARKER) > next(i for i, ln in enumerate(console) if "Linux version" in ln)
    assert ev["console_tail"] == console[-len(ev["console_tail"]) :]


@pytest.mark.skipif(find_firmware() is None, reason="qemu-efi-aarch64 is not installed")
def test_boot_through_the_uefi_firmware(guest_dir, tmp_path):
    efi = tmp_path / "efi.img"
    assert BuildEfiImage(dest=efi).execute("live").ok
    step = BootGuest(cache_dir=guest_dir, efi=efi)
    res = step.execute("live")
    assert res.status == "pass", (res.message, res.evidence.get("console_tail"))
    assert "if=pflash,format=raw,file=" in res.evidence["argv"]
    assert any("UEFI firmware" in ln or "EFI stub" in ln for ln in step.console)


def test_cancel_stops_qemu(guest_dir):
    token = f"labkit.test={uuid.uuid4().hex}"
    cancel = threading.Event()
    streamed: list[str] = []

    def on_line(stream: str, line: str) -> None:
        streamed.append(line)
        cancel.set()  # the student presses stop as soon as the console shows something

    res = BootGuest(cache_dir=guest_dir, extra_append=token).execute("live", on_line=on_line, cancel=cancel)
    assert res.status == "skipped"
    assert res.evidence["skip_reason"] == "stopped"
    assert token in res.evidence["stopped_command"]
    assert streamed
    assert g.MARKER not in streamed
    assert _qemu_processes_with(token) == []


def test_timeout_stops_qemu_and_fails(guest_dir):
    token = f"labkit.test={uuid.uuid4().hex}"
    res = BootGuest(cache_dir=guest_dir, timeout=0.3, extra_append=token).execute("live")
    assert res.status == "fail"
    assert res.evidence["timed_out"] is True
    assert res.evidence["marker_seen"] is False
    assert _qemu_processes_with(token) == []


def test_initrd_without_init_is_reported_as_kernel_panic(guest_dir, tmp_path):
    bad = tmp_path / "empty-initrd.gz"
    bad.write_bytes(gzip.compress(g.newc_archive([g.CpioEntry(".", "dir", 0o755)]), mtime=0))
    res = BootGuest(cache_dir=guest_dir, initrd=bad, cpu="cortex-a57").execute("live")
    assert res.status == "fail"
    assert res.evidence["marker_seen"] is False
    assert "panic" in res.message.lower()
    assert res.evidence["cpu"] == "cortex-a57"


def test_unpadded_firmware_fails_with_the_pflash_hint(guest_dir):
    firmware = find_firmware()
    if firmware is None or os.path.getsize(firmware) == 64 * 2**20:
        pytest.skip("needs the unpadded QEMU_EFI.fd")
    res = BootGuest(cache_dir=guest_dir, efi=firmware).execute("live")
    assert res.status == "fail"
    assert res.evidence["qemu_exit"] != 0
    assert "67108864" in res.message
    assert "BuildEfiImage" in res.message


def test_too_many_vcpus_for_the_virt_board_are_refused_before_qemu_starts(guest_dir):
    step = BootGuest(cache_dir=guest_dir, smp=9)
    res = step.execute("live")
    assert res.status == "error"
    assert res.evidence["field"] == "smp"
    assert "GICv2" in res.message and "8" in res.evidence["fix"]
    assert "commands" not in res.evidence  # nothing ran
    assert BootGuest(cache_dir=guest_dir, smp=8).plan().commands  # 8 is the cap, not over it


def test_more_memory_than_the_host_has_is_refused_before_qemu_starts(guest_dir):
    from labkit.logic.sizes import format_size
    from labkit.steps.host import collect_host_facts

    facts = collect_host_facts(probe_kvm=False, tools=())
    too_much = format_size(((facts.memory_bytes >> 30) + 4) << 30)
    with pytest.raises(InvalidField) as planned:  # the panel passes the facts: its plan says so
        BootGuest(cache_dir=guest_dir, memory=too_much, host=facts).plan()
    assert planned.value.field == "memory"
    res = BootGuest(cache_dir=guest_dir, memory=too_much).execute("live")  # no facts: run reads them
    assert res.status == "error"
    assert res.evidence["field"] == "memory"
    assert not any(c.startswith("qemu-system") for c in res.evidence.get("commands", []))


def test_a_qemu_failure_quotes_qemus_own_error_line(guest_dir):
    res = BootGuest(cache_dir=guest_dir, cpu="cortex-a999").execute("live")
    assert res.status == "fail"
    assert res.evidence["qemu_exit"] != 0
    said = res.evidence["qemu_error"]
    assert said == "qemu-system-aarch64: unable to find CPU model 'cortex-a999'"
    assert said in res.message


def test_missing_assets_make_the_step_skip_in_auto_mode(tmp_path):
    res = BootGuest(cache_dir=tmp_path).execute("auto")
    assert res.status == "skipped"
    assert "labkit guest prepare" in res.message
    assert res.evidence["plan"]["commands"][0][0] == "qemu-system-aarch64"


def test_cli_boot_prints_the_console_live(guest_dir):
    from labkit import guestcli

    out = io.StringIO()
    rc = guestcli.main(action="boot", cache_dir=str(guest_dir), out=out)
    text = out.getvalue()
    assert rc == 0, text[-2000:]
    assert g.MARKER in text.splitlines()
    assert "[PASS] ch1.guest.boot" in text
    assert "uname_m: aarch64" in text
    rc = guestcli.main(action="boot", cache_dir=str(guest_dir), memory="12X", out=io.StringIO())
    assert rc != 0
