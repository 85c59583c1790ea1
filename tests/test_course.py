"""The course notebooks themselves, executed headlessly through the real ``labkit validate``.

This is what the README's main job does: chapter 1 must create and convert real images, build
efi.img and boot a real aarch64 guest on this machine, and plan (not fake) what it cannot run.

Students run a notebook again ("Restart Kernel and Run All") in the same work folder, so the
chapters are released (``labkit release``), executed twice in one work folder (``labkit validate
--workdir``) and both executed copies graded (``labkit grade``): full marks both times, the second
run verifying what the first made instead of redoing or refusing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["zerotier_lab"]

ROOT = Path(__file__).resolve().parents[1]
CH1 = ROOT / "notebooks" / "01-virtualization.ipynb"
CH2 = ROOT / "notebooks" / "02-containers.ipynb"
CH2B = ROOT / "notebooks" / "03-kubernetes.ipynb"
CH3 = ROOT / "notebooks" / "04-distributed-vlan.ipynb"
CH4 = ROOT / "notebooks" / "05-cloud-services.ipynb"

#: Steps chapter 1 must really run (and pass) on a Debian machine with QEMU and no KVM.
MUST_RUN = {
    "ch1.host.check",
    "ch1.disk.create.qcow2",
    "ch1.disk.create.raw",
    "ch1.disk.info",
    "ch1.disk.create.vhd",
    "ch1.disk.convert.vhd",
    "ch1.disk.fill",
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


def _validate(
    tmp_path: Path, mode: str, nb: Path = CH1, *extra: str
) -> tuple[subprocess.CompletedProcess, dict]:
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
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, json.loads(report.read_text())


@dataclass
class Twice:
    """A released chapter executed twice in one work folder, each executed copy graded."""

    work: Path
    runs: list[tuple[subprocess.CompletedProcess, dict[str, Any]]]
    grades: list[tuple[subprocess.CompletedProcess, dict[str, Any]]]

    def checks(self, run: int) -> dict[str, dict[str, Any]]:
        return {c["check"]: c for c in self.runs[run][1]["notebooks"][0]["checks"]}

    def backups(self) -> list[Path]:
        return sorted(self.work.rglob("*.labkit-bak-*"))


def _release_run_twice_and_grade(
    root: Path, course_nb: Path, assignment: str, answer: Callable[[Path], None] | None = None
) -> Twice:
    """``labkit release`` the chapter, execute the student copy twice with the same work folder
    (the way JupyterLab runs it again), and ``labkit grade`` each executed copy on its own.
    ``answer`` edits the released copy first, as a student does (an exercise's answers)."""
    from labkit.grading import release

    manifest = root / "manifest.json"
    release.main(
        notebooks=[course_nb],
        course="bigdata-2026",
        assignment=assignment,
        out_dir=root / "rel",
        manifest=manifest,
    )
    if answer is not None:
        answer(root / "rel" / course_nb.name)
    work = root / "work"
    runs, grades, backups = [], [], []
    for n in (1, 2):
        run = _validate(
            root / f"run{n}", "auto", root / "rel" / course_nb.name, "--workdir", str(work), "--lang", "zh"
        )
        runs.append(run)
        backups.append(sorted(work.rglob("*.labkit-bak-*")))
        subs = root / f"subs{n}"
        subs.mkdir()
        shutil.copy(Path(run[1]["notebooks"][0]["output"]), subs / f"2023123456_zhangsan_{course_nb.name}")
        out = root / f"grades{n}"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "labkit",
                "grade",
                str(subs),
                "--manifest",
                str(manifest),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "LABKIT_LANG": "en"},
        )
        report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
        grades.append((proc, report))
    assert backups[0] == backups[1], "the second run replaced or edited something"
    return Twice(work / course_nb.stem, runs, grades)


def _points(course_nb: Path) -> int:
    """The points the course notebook's graded cells carry (what ``labkit release`` hands out)."""
    cells = json.loads(course_nb.read_text(encoding="utf-8"))["cells"]
    return sum((c["metadata"].get("labkit") or {}).get("points", 0) for c in cells)


def _assert_full_marks(twice: Twice, max_points: int) -> None:
    for n, (proc, report) in enumerate(twice.grades, 1):
        assert twice.runs[n - 1][0].returncode == 0, twice.runs[n - 1][0].stdout + twice.runs[n - 1][0].stderr
        assert proc.returncode == 0, f"run {n}: {proc.stdout}{proc.stderr}"
        (student,) = report["students"]
        lost = {
            c["check"]: (c["status"], c["reason"], c["message"])
            for nb in student["notebooks"]
            for c in nb["checks"]
            if c["status"] != "pass"
        }
        assert not lost, f"run {n} lost points: {lost}"
        assert student["total"] == student["max_points"] == max_points
        assert not report.get("flags")


def _assert_verified(check: dict[str, Any]) -> None:
    """A result that found its target already made: a pass that says so and how it was verified."""
    assert (check["status"], check["mode"]) == ("pass", "run"), check
    assert check["evidence"]["already_present"] is True, check
    assert check["evidence"]["verified_by"], check
    assert check["message"].startswith(f"已存在，已核实（{check['evidence']['verified_by']}）："), check


@pytest.fixture(scope="module")
def ch1_twice(tmp_path_factory: pytest.TempPathFactory) -> Twice:
    return _release_run_twice_and_grade(tmp_path_factory.mktemp("ch1"), CH1, "ch1")


@pytest.fixture(scope="module")
def ch2_twice(tmp_path_factory: pytest.TempPathFactory) -> Twice:
    return _release_run_twice_and_grade(tmp_path_factory.mktemp("ch2"), CH2, "ch2a")


#: Chapter-1 steps that make something in the work folder: new on the first run, verified after.
CH1_MADE_HERE = {
    "ch1.disk.create.qcow2",
    "ch1.disk.create.raw",
    "ch1.disk.create.vhd",
    "ch1.disk.convert.vhd",
    "ch1.disk.fill",
    "ch1.disk.convert.compress",
    "ch1.disk.resize",
    "ch1.firmware.efi",
    "ch1.pve.kvm_off",
}


@pytest.mark.qemu
@pytest.mark.guest
def test_chapter1_run_again_in_the_same_folder_verifies_and_keeps_full_marks(ch1_twice):
    _assert_full_marks(ch1_twice, _points(CH1))
    first, second = ch1_twice.checks(0), ch1_twice.checks(1)
    for check in CH1_MADE_HERE:
        assert "already_present" not in first[check]["evidence"], first[check]
        _assert_verified(second[check])
    _assert_verified(second["ch1.guest.prepare"])  # the guest cache (already there on run 1 too)
    assert "qemu-img info：qcow2，120 GiB" in second["ch1.disk.create.qcow2"]["evidence"]["verified_by"]
    assert "qemu-img compare" in second["ch1.disk.convert.compress"]["evidence"]["verified_by"]
    resize = second["ch1.disk.resize"]
    assert resize["evidence"]["changed"] is False and "未改变" in resize["message"]
    assert "→" in first["ch1.disk.resize"]["message"] and "→" not in resize["message"]
    assert second["ch1.pve.kvm_off"]["evidence"]["changed"] is False
    conf = (ch1_twice.work / "pve-qemu-server" / "100.conf").read_text(encoding="utf-8")
    assert conf.count("kvm: no") == 1, "no second kvm line"
    for check in MUST_RUN - CH1_MADE_HERE - {"ch1.guest.prepare"}:  # probes and boots: run again
        assert (second[check]["mode"], second[check]["status"]) == ("run", "pass"), second[check]
    assert {c: second[c]["evidence"]["skip_reason"] for c in MUST_PLAN} == dict.fromkeys(MUST_PLAN, "host")


@pytest.mark.qemu
@pytest.mark.guest
def test_chapter1_runs_for_real(ch1_twice):
    proc, report = ch1_twice.runs[0]
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
    work = ch1_twice.work
    assert (work / "efi.img").stat().st_size == 64 * 2**20
    compressed = checks["ch1.disk.convert.compress"]["evidence"]  # the lesson of -c shows: smaller
    assert compressed["dst_allocated"] < compressed["src_allocated"] / 2
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
def test_chapter2_run_again_in_the_same_folder_verifies_and_keeps_full_marks(ch2_twice):
    _assert_full_marks(ch2_twice, _points(CH2))
    first, second = ch2_twice.checks(0), ch2_twice.checks(1)
    assert "already_present" not in first["ch2.docker.save"]["evidence"]  # a fresh folder: saved
    for check in ("ch2.docker.base", "ch2.docker.commit", "ch2.docker.save", "ch2.docker.load"):
        _assert_verified(second[check])
    assert (
        second["ch2.docker.save"]["evidence"]["image_id"]
        == first["ch2.docker.commit"]["evidence"]["image_id"]
    )
    assert second["ch2.docker.load"]["evidence"]["sha256"] == first["ch2.docker.save"]["evidence"]["sha256"]
    for check in ("ch2.docker.engine", "ch2.docker.hello", "ch2.docker.run"):  # run again, pass again
        assert (second[check]["mode"], second[check]["status"]) == ("run", "pass"), second[check]
    for check, why in CH2_MUST_PLAN.items():
        assert second[check]["evidence"]["skip_reason"] == why, second[check]


@pytest.mark.docker
def test_chapter2_runs_for_real_and_plans_what_needs_a_registry_or_gpu(ch2_twice):
    proc, report = ch2_twice.runs[0]
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


@pytest.fixture(scope="module")
def ch2b_twice(tmp_path_factory: pytest.TempPathFactory) -> Twice:
    return _release_run_twice_and_grade(tmp_path_factory.mktemp("ch2b"), CH2B, "ch2b")


#: Chapter 2b: what the notebook makes in its work folder or the registry: new, then verified.
CH2B_MADE = ("ch2.k8s.manifest", "ch2.registry.push", "ch2.registry.insecure")
#: Chapter 2b's cluster cells (ungraded): no microk8s and no kubeconfig here, so planned with the reason.
CH2B_CLUSTER = (
    "ch2.k8s.status",
    "ch2.k8s.addons",
    "ch2.k8s.apply",
    "ch2.k8s.rollout",
    "ch2.k8s.scale",
    "ch2.k8s.delete",
)


def _registries_serving(work: Path) -> list[int]:
    """Processes still running ``docker-registry serve`` with a config inside ``work``."""
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if len(cmdline) == 3 and cmdline[1] == "serve" and cmdline[2].startswith(str(work)):
            left.append(proc.info["pid"])
    return left


@pytest.mark.docker
def test_chapter2b_pushes_for_real_and_a_second_run_verifies_with_full_marks(ch2b_twice):
    _assert_full_marks(ch2b_twice, _points(CH2B))
    first, second = ch2b_twice.checks(0), ch2b_twice.checks(1)
    for check in CH2B_MADE:
        assert (first[check]["mode"], first[check]["status"]) == ("run", "pass"), first[check]
        assert "already_present" not in first[check]["evidence"], first[check]
        _assert_verified(second[check])
    for check in ("ch2.registry.start", "ch2.registry.stop"):  # stopped at the end: started again
        for run in (first, second):
            assert (run[check]["mode"], run[check]["status"]) == ("run", "pass"), run[check]
            assert "already_present" not in run[check]["evidence"], run[check]
    pushed = first["ch2.registry.push"]["evidence"]
    assert pushed["digest"].startswith("sha256:") and pushed["registry_digest"] == pushed["digest"]
    assert second["ch2.registry.push"]["evidence"]["digest"] == pushed["digest"]
    assert "labkit/busybox" in second["ch2.registry.start"]["evidence"]["repositories"]
    manifest = first["ch2.k8s.manifest"]["evidence"]
    assert manifest["documents"][0]["kind"] == "Deployment" and manifest["schema_version"]
    assert "image: nginx:1.14.2" in (ch2b_twice.work / "nginx-deployment.yaml").read_text(encoding="utf-8")
    daemon = json.loads((ch2b_twice.work / "docker" / "daemon.json").read_text(encoding="utf-8"))
    assert daemon["insecure-registries"] == ["localhost:32000"] and "log-opts" in daemon
    assert len(ch2b_twice.backups()) == 1  # the practice copy, kept once before the first merge
    assert not _registries_serving(ch2b_twice.work), "the notebook's stop cell leaves no registry running"


@pytest.mark.docker
def test_chapter2b_cluster_cells_are_planned_for_this_host_and_not_graded(ch2b_twice):
    from labkit.steps.k8s_cluster import cluster_unavailable

    if shutil.which("microk8s") or cluster_unavailable() is None:
        pytest.skip("this machine can reach a cluster")
    graded = {
        (c["metadata"].get("labkit") or {}).get("check")
        for c in json.loads(CH2B.read_text(encoding="utf-8"))["cells"]
    }
    assert not graded & set(CH2B_CLUSTER)  # they can never run here: full marks come from the rest
    for run in (ch2b_twice.checks(0), ch2b_twice.checks(1)):
        for check in CH2B_CLUSTER:
            assert (run[check]["mode"], run[check]["status"]) == ("plan", "skipped"), run[check]
            assert run[check]["evidence"]["skip_reason"] == "host", run[check]
            assert run[check]["message"], run[check]


@pytest.mark.parametrize("path", [CH1, CH2, CH2B, CH3, CH4], ids=["ch1", "ch2", "ch2b", "ch3", "ch4"])
def test_notebook_narrative_is_chinese_and_has_a_parameters_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    assert 'mode = "auto"' in "".join(params[0]["source"])
    markdown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in markdown)
    assert cjk > 1000, "chapter narrative is in Simplified Chinese"
    assert not any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "shipped unexecuted"


# -- chapter 3 ---------------------------------------------------------------------------------
#: Chapter 3's ZeroTier cells: they run for real against the lab's node 2 (LABKIT_ZT_LAB).
CH3_ZT = ("ch3.zt.status", "ch3.zt.join", "ch3.zt.listnetworks", "ch3.zt.reach", "ch3.zt.throughput")
#: Chapter 3's cells that run on any machine like this one.
CH3_MUST_RUN = ("ch3.nested.check", "ch3.pve.kvm_off", "ch3.compression")


def _answer_hci(nb_path: Path) -> None:
    """Write the right answers into the notebook's answer cell (not a check cell), as a student does."""
    from labkit.logic.exercise import exercise

    answers = {q.qid: "".join(sorted(q.correct)) for q in exercise("ch3.hci").questions}
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    (cell,) = [c for c in nb["cells"] if "".join(c["source"]).lstrip().startswith("# 你的答案")]
    cell["source"] = f"hci_answers = {answers!r}\n"
    nb_path.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def ch3_twice(tmp_path_factory: pytest.TempPathFactory, ztlab: dict[str, str]) -> Twice:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_ZT_LAB", ztlab["ZT_LAB_DIR"])
        return _release_run_twice_and_grade(tmp_path_factory.mktemp("ch3"), CH3, "ch3", _answer_hci)


def test_chapter3_runs_zerotier_for_real_on_the_lab_and_a_second_run_keeps_full_marks(ch3_twice, ztlab):
    _assert_full_marks(ch3_twice, _points(CH3))
    for run in (ch3_twice.checks(0), ch3_twice.checks(1)):
        for check in (*CH3_ZT, *CH3_MUST_RUN, "ch3.hci.quiz"):
            assert (run[check]["mode"], run[check]["status"]) == ("run", "pass"), run[check]
        assert run["ch3.zt.status"]["evidence"]["node"] == ztlab["NODE2"]
        assert run["ch3.zt.join"]["evidence"]["nwid"] == ztlab["NWID"]
        assert run["ch3.zt.reach"]["evidence"]["peers"][0]["address"] == ztlab["ADDR1"]
        links = {r["link"] for r in run["ch3.zt.throughput"]["evidence"]["rows"]}
        assert links == {"ZeroTier", "veth"}
        leave = run["ch3.zt.leave"]  # not confirmed in the notebook: the lab stays joined
        assert (leave["status"], leave["evidence"]["skip_reason"]) == ("skipped", "consent"), leave
        assert run["ch3.pve.destroy"]["evidence"]["skip_reason"] == "host"
    _assert_verified(ch3_twice.checks(1)["ch3.pve.kvm_off"])
    quiz = ch3_twice.checks(0)["ch3.hci.quiz"]["evidence"]
    assert quiz["right"] == quiz["total"] == 5  # the exercise of this checkout's labkit, not another


def test_chapter3_without_a_zerotier_daemon_plans_those_cells_and_still_validates(tmp_path):
    if shutil.which("zerotier-cli"):
        pytest.skip("this machine has its own zerotier-cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("LABKIT_ZT_LAB", raising=False)
        proc, report = _validate(tmp_path, "auto", CH3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["check"]: c for c in report["notebooks"][0]["checks"]}
    for check in (*CH3_ZT, "ch3.zt.leave"):
        assert (checks[check]["mode"], checks[check]["status"]) == ("plan", "skipped"), checks[check]
        if check == "ch3.zt.throughput":  # iperf3 is here; only the peer's address is missing
            assert checks[check]["evidence"]["skip_reason"] == "unanswered", checks[check]
            continue
        assert (
            checks[check]["evidence"]["skip_reason"] == "host" and "zerotier-cli" in checks[check]["message"]
        )
    for check in CH3_MUST_RUN:
        assert (checks[check]["mode"], checks[check]["status"]) == ("run", "pass"), checks[check]
    quiz = checks["ch3.hci.quiz"]  # shipped unanswered: skipped, not a failed notebook
    assert (quiz["status"], quiz["evidence"]["skip_reason"]) == ("skipped", "unanswered"), quiz


# -- chapter 4 ---------------------------------------------------------------------------------
#: A password a run must never leave in its saved notebook (the steps read it from the environment).
CH4_PASSWORD = "Ch4-Recognisable-Pw-8642-plugh"
#: Chapter 4's graded cells: all run and pass here.
CH4_GRADED = (
    "ch4.layers.quiz",
    "ch4.models.quiz",
    "ch4.jupyter.config",
    "ch4.jupyter.seed",
    "ch4.jupyter.start",
    "ch4.jupyter.login",
    "ch4.jupyter.kernel",
    "ch4.seafile.compose",
    "ch4.seafile.validate",
    "ch4.capstone",
    "ch4.jupyter.stop",
)


def _answer_ch4(nb_path: Path) -> None:
    """Write the right answers into the two answer cells (4.1 layers, 4.2 models), as a student does."""
    from labkit.logic.exercise import exercise

    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for name, exercise_id in (("layers_answers", "ch4.layers"), ("models_answers", "ch4.models")):
        answers = {q.qid: "".join(sorted(q.correct)) for q in exercise(exercise_id).questions}
        (cell,) = [c for c in nb["cells"] if f"\n{name} = " in "".join(c["source"])]
        cell["source"] = f"{name} = {answers!r}\n"
    nb_path.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.fixture(scope="module")
def ch4_twice(tmp_path_factory: pytest.TempPathFactory) -> Twice:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABKIT_JUPYTER_PASSWORD", CH4_PASSWORD)
        return _release_run_twice_and_grade(tmp_path_factory.mktemp("ch4"), CH4, "ch4", _answer_ch4)


@pytest.mark.guest
def test_chapter4_runs_a_real_jupyter_server_twice_with_full_marks_and_no_password_saved(ch4_twice):
    _assert_full_marks(ch4_twice, _points(CH4))
    for n, run in enumerate((ch4_twice.checks(0), ch4_twice.checks(1))):
        for check in CH4_GRADED:
            assert (run[check]["mode"], run[check]["status"]) == ("run", "pass"), run[check]
        for check in ("ch4.pve.create.vm", "ch4.pve.create.ct", "ch4.seafile.up", "ch4.seafile.health"):
            assert run[check]["evidence"]["skip_reason"] == "host", run[check]
        parts = {p["part"]: p["status"] for p in run["ch4.capstone"]["evidence"]["parts"]}
        assert parts == {"vm": "pass", "jupyter": "pass", "compose": "pass", "seafile": "skipped"}
        assert run["ch4.jupyter.config"]["evidence"]["password_source"] == "env"
        pid = run["ch4.jupyter.start"]["evidence"]["pid"]
        assert run["ch4.jupyter.stop"]["evidence"]["pid"] == pid
        executed = Path(ch4_twice.runs[n][1]["notebooks"][0]["output"]).read_text(encoding="utf-8")
        assert CH4_PASSWORD not in executed, f"run {n + 1}: the password is in the saved notebook"
    _assert_verified(ch4_twice.checks(1)["ch4.jupyter.config"])
    _assert_verified(ch4_twice.checks(1)["ch4.seafile.compose"])
    assert not (ch4_twice.work / "jupyter" / "password.txt").exists()  # the environment's was used
    import psutil

    ours = str(ch4_twice.work / "jupyter")
    left = [
        p.pid for p in psutil.process_iter(["cmdline"]) if any(ours in a for a in p.info["cmdline"] or [])
    ]
    assert not left, f"processes left from the chapter's server: {left}"
