"""The course notebooks themselves, executed headlessly through the real ``labkit validate``.

This is what the README's main job does: chapter 1 must create and convert real images, build
efi.img and boot a real aarch64 guest on this machine, and plan (not fake) what it cannot run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CH1 = ROOT / "notebooks" / "01-virtualization.ipynb"
CH2 = ROOT / "notebooks" / "02-containers.ipynb"

#: Steps chapter 1 must really run (and pass) on a Debian machine with QEMU and no KVM.
MUST_RUN = {
    "ch1.host.check",
    "ch1.disk.create.qcow2",
    "ch1.disk.create.raw",
    "ch1.disk.info",
    "ch1.disk.create.vhd",
    "ch1.disk.convert.vhd",
    "ch1.disk.convert.compress",
    "ch1.disk.resize",
    "ch1.firmware.efi",
    "ch1.vm.command",
    "ch1.guest.prepare",
    "ch1.guest.boot",
    "ch1.consolidation",
    "ch1.pve.kvm_off",
}
#: Steps that need Windows, VirtualBox, a PVE host or root consent: planned with a reason here.
MUST_PLAN = {
    "ch1.hyperv.disable",
    "ch1.hyperv.enable",
    "ch1.vbox.network",
    "ch1.pve.destroy",
    "ch1.libvirt.install",
}


def _validate(tmp_path: Path, mode: str, nb: Path = CH1) -> tuple[subprocess.CompletedProcess, dict]:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit",
            "validate",
            str(nb),
            "--mode",
            mode,
            "--out",
            str(tmp_path / "out"),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, json.loads(report.read_text())


@pytest.mark.qemu
@pytest.mark.guest
def test_chapter1_runs_for_real(tmp_path):
    proc, report = _validate(tmp_path, "auto")
    nb = report["notebooks"][0]
    checks = {c["check"]: c for c in nb["checks"]}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert nb["status"] == "ok"
    for check in MUST_RUN:
        assert checks[check]["mode"] == "run" and checks[check]["status"] == "pass", checks[check]
    for check in MUST_PLAN:
        assert checks[check]["mode"] == "plan" and checks[check]["status"] == "skipped", checks[check]
        assert checks[check]["message"], "a planned step says why it did not run"
    boot = checks["ch1.guest.boot"]["evidence"]
    assert boot["uname_m"] == "aarch64"
    assert boot["marker_seen"] is True
    work = Path(nb["output"]).parent / "work" / CH1.stem
    assert (work / "efi.img").stat().st_size == 64 * 2**20
    qcow2 = checks["ch1.disk.convert.vhd"]["evidence"]
    assert qcow2["commands"]
    assert any("-f vpc" in c for c in qcow2["commands"])


def test_chapter1_plan_mode_runs_nothing(tmp_path):
    proc, report = _validate(tmp_path, "plan")
    nb = report["notebooks"][0]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {c["mode"] for c in nb["checks"]} == {"plan"}
    assert {c["check"] for c in nb["checks"]} >= MUST_RUN | MUST_PLAN
    work = Path(nb["output"]).parent / "work" / CH1.stem
    assert not list(work.glob("*.qcow2"))
    assert not (work / "efi.img").exists()


#: Chapter 2a on a machine with a Docker engine but no registry and no GPU.
CH2_MUST_RUN = {
    "ch2.docker.engine",
    "ch2.docker.base",
    "ch2.docker.hello",
    "ch2.docker.commit",
    "ch2.docker.save",
    "ch2.docker.load",
    "ch2.docker.run",
}
#: Check → why it is skipped here: no registry or GPU ("host"), or deletion waits for consent.
CH2_MUST_PLAN = {
    "ch2.docker.build": "host",
    "ch2.docker.gpu": "host",
    "ch2.docker.cleanup": "consent",
    "ch2.docker.nuke": "consent",
}


@pytest.mark.docker
def test_chapter2_runs_for_real_and_plans_what_needs_a_registry_or_gpu(tmp_path):
    proc, report = _validate(tmp_path, "auto", CH2)
    nb = report["notebooks"][0]
    checks = {c["check"]: c for c in nb["checks"]}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in CH2_MUST_RUN:
        assert (checks[check]["mode"], checks[check]["status"]) == ("run", "pass"), checks[check]
    for check, why in CH2_MUST_PLAN.items():
        assert checks[check]["status"] == "skipped", checks[check]
        assert checks[check]["evidence"]["skip_reason"] == why, checks[check]
    torch = checks["ch2.gpu.torch"]
    assert torch["status"] in ("skipped", "pass")
    assert torch["message"]
    loaded = checks["ch2.docker.load"]["evidence"]
    saved = checks["ch2.docker.save"]["evidence"]
    assert saved["image_id"] in loaded["image_ids"]
    assert loaded["sha256"] == saved["sha256"]
    assert checks["ch2.docker.run"]["message"].endswith("committed by labkit")


@pytest.mark.parametrize("path", [CH1, CH2], ids=["ch1", "ch2"])
def test_notebook_narrative_is_chinese_and_has_a_parameters_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert 'mode = "auto"' in "".join(params[0]["source"])
    markdown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in markdown)
    assert cjk > 1000, "chapter narrative is in Simplified Chinese"
    assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "shipped unexecuted"
