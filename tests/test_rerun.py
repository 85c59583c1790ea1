"""``labkit grade --rerun``: the checks are redone by the instructor's code, each submission in its
own jail (issue 9, section 1).

A small synthetic course (built here, released with the real ``labkit release``): the student writes
``add``; a given cell saves ``add.json`` into the work folder; the check marked ``rerun`` reads that
file. Each test first shows the defect the issue reported, then that ``--rerun`` defeats it:

* a forged ``pass`` with a recomputed digest grades full marks without ``--rerun``; with it the
  grading machine's result counts;
* ``CheckResult.failed = CheckResult.passed`` in a non-check cell makes the student's own run show
  ``pass``; the checks of the rerun run in a fresh interpreter;
* a student's cell lists and writes other submissions' folders, calls the grader's network and
  leaves a detached process: none of it works or survives.

Executing notebooks: run under ``flock /work/wt/docker.lock``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from labkit.checks import CHECK_MIME, CheckResult

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="--rerun jails need root on Linux"
)

_SETUP = (
    "import json\nfrom pathlib import Path\nfrom IPython.display import display\n"
    "from labkit.checks import CheckResult\n\n"
    'work = Path(labkit_workdir or "labkit-work")\nwork.mkdir(parents=True, exist_ok=True)'
)
_SAVE = '(work / "add.json").write_text(json.dumps([add(2, 3), add(-1, 1)]))'
_ADD_CHECK = (
    'got = json.loads((work / "add.json").read_text())\n'
    'display(CheckResult.passed("t.add", "add 正确") if got == [5, 0]\n'
    '        else CheckResult.failed("t.add", "add 不对", got=repr(got)))'
)
_HOST_CHECK = 'import os\ndisplay(CheckResult.passed("t.host", "本机信息", cpus=os.cpu_count()))'


def _cell(kind: str, source: str, **metadata: Any) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": kind,
        "id": uuid.uuid4().hex[:8],
        "metadata": metadata,
        "source": source,
    }
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _course(*, rerun: bool = True) -> dict[str, Any]:
    add_meta: dict[str, Any] = {"check": "t.add", "points": 2}
    if rerun:
        add_meta["rerun"] = True
    return {
        "cells": [
            _cell("code", 'mode = "auto"\nlabkit_workdir = None', tags=["parameters"]),
            _cell("code", _SETUP, labkit={"setup": True}),
            _cell("code", 'from labkit.identity import whoami\n\nwhoami(student_id="", name="")'),
            _cell("code", "def add(a, b):\n    return None"),
            _cell("code", _SAVE),
            _cell("code", _ADD_CHECK, labkit=add_meta, tags=["labkit-check"]),
            _cell("code", _HOST_CHECK, labkit={"check": "t.host", "points": 1}, tags=["labkit-check"]),
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _release(root: Path, *, rerun: bool = True) -> tuple[dict[str, Any], Path]:
    from labkit.grading import release

    course = root / "course" / "lab.ipynb"
    course.parent.mkdir(parents=True)
    course.write_text(json.dumps(_course(rerun=rerun)), encoding="utf-8")
    manifest = root / "instructor" / "manifest.json"
    release.main(notebooks=[course], course="c", assignment="a", out_dir=root / "release", manifest=manifest)
    return json.loads((root / "release" / "lab.ipynb").read_text(encoding="utf-8")), manifest


def _student(released: dict[str, Any], sid: str, add_cell: str) -> dict[str, Any]:
    nb = json.loads(json.dumps(released))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if "whoami(" in src:
            cell["source"] = (
                f'from labkit.identity import whoami\n\nwhoami(student_id="{sid}", name="S{sid}")'
            )
        elif src.startswith("def add"):
            cell["source"] = add_cell
    return nb


def _save(nb: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")


def _grade(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labkit", "grade", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LABKIT_LANG": "en"},
    )


def _checks(report: dict[str, Any]) -> dict[str, dict[str, tuple[str, str]]]:
    return {
        s["student_id"]: {
            c["check"]: (c["status"], c["reason"]) for nb in s["notebooks"] for c in nb["checks"]
        }
        for s in report["students"]
    }


def _forged_pass(nb: dict[str, Any]) -> dict[str, Any]:
    """The student's file with a ``pass`` for t.add whose digest is recomputed (labkit's own code)."""
    payload = CheckResult.passed("t.add", "add 正确").to_payload()
    out = {"output_type": "display_data", "metadata": {}, "data": {CHECK_MIME: payload, "text/plain": ["x"]}}
    for cell in nb["cells"]:
        if (cell["metadata"].get("labkit") or {}).get("check") == "t.add":
            cell["outputs"] = [out]
    return nb


class _Listener:
    """A TCP server on the grader's loopback that counts the connections it gets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def _attacker_cell(port: int, token: str) -> str:
    """Probes isolation; ``add`` is right only when every probe failed."""
    return f"""import os, socket, subprocess, sys
from pathlib import Path
here, leaks = Path.cwd(), []
try:
    leaks += [name for name in os.listdir(here.parent) if name != here.name]
except OSError:
    pass
for i in range(4):
    other = here.parent / f"s{{i:05d}}"
    if other != here:
        try:
            (other / "work" / "lab" / "add.json").write_text("[0, 0]")
            leaks.append(str(other))
        except OSError:
            pass
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
    leaks.append("network")
except OSError:
    pass
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", "{token}"],
                 start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def add(a, b):
    return a + b if not leaks else leaks"""


def _token_processes(token: str) -> list[int]:
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        if token in (p.info.get("cmdline") or []):
            found.append(p.pid)
    return found


def test_rerun_with_nothing_marked_rerun_says_so_and_exits_2(tmp_path):
    released, manifest = _release(tmp_path, rerun=False)
    _save(
        _student(released, "2023000001", "def add(a, b):\n    return a + b"),
        tmp_path / "subs" / "2023000001_lab.ipynb",
    )
    proc = _grade(tmp_path / "subs", "--manifest", manifest, "--out", tmp_path / "g", "--rerun")
    assert proc.returncode == 2, proc.stderr
    assert "nothing to re-run" in proc.stderr
    assert not (tmp_path / "g").exists()


def test_release_stores_the_instructors_check_code_for_rerun_checks(tmp_path):
    _released, manifest = _release(tmp_path)
    (nb,) = json.loads(manifest.read_text(encoding="utf-8"))["notebooks"]
    add, host = nb["checks"]
    assert add["rerun"] is True and add["source"] == _ADD_CHECK
    assert host["rerun"] is False and "source" not in host
    assert nb["setup"] == [_SETUP]


def test_rerun_grades_with_the_instructors_checks_in_isolated_jails(tmp_path):
    released, manifest = _release(tmp_path)
    subs = tmp_path / "subs"
    token = f"labkit-test-{uuid.uuid4().hex}"
    listener = _Listener()
    good = "def add(a, b):\n    return a + b"
    _save(_student(released, "2023000001", good), subs / "2023000001_lab.ipynb")
    # (a) wrong add, but a hand-made pass whose digest labkit's own code recomputed
    _save(
        _forged_pass(_student(released, "2023000002", "def add(a, b):\n    return a - b")),
        subs / "2023000002_lab.ipynb",
    )
    # (b) a non-check cell patches CheckResult in the student's kernel
    patch = (
        "from labkit.checks import CheckResult\nCheckResult.failed = CheckResult.passed\n"
        "def add(a, b):\n    return a - b"
    )
    _save(_student(released, "2023000003", patch), subs / "2023000003_lab.ipynb")
    # (c) probes the other submissions' folders and the network, leaves a detached process
    _save(
        _student(released, "2023000004", _attacker_cell(listener.port, token)), subs / "2023000004_lab.ipynb"
    )
    # a pass typed by hand (no digest): tampered evidence stays tampered, a rerun does not launder it
    edited = _forged_pass(_student(released, "2023000006", good))
    del next(c for c in edited["cells"] if c["outputs"])["outputs"][0]["data"][CHECK_MIME]["digest"]
    _save(edited, subs / "2023000006_lab.ipynb")
    # a notebook that runs past the notebook timeout
    _save(_student(released, "2023000005", "import time\ntime.sleep(120)"), subs / "2023000005_lab.ipynb")

    plain = _grade(subs, "--manifest", manifest, "--out", tmp_path / "g0")
    assert plain.returncode in (0, 1), plain.stderr
    before = _checks(json.loads((tmp_path / "g0" / "report.json").read_text(encoding="utf-8")))
    assert before["2023000002"]["t.add"] == ("pass", "check-passed"), "a recomputed digest passes as evidence"

    proc = _grade(
        subs,
        "--manifest",
        manifest,
        "--out",
        tmp_path / "g",
        "--rerun",
        "--jobs",
        "2",
        "--timeout",
        "60",
        "--notebook-timeout",
        "15",
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads((tmp_path / "g" / "report.json").read_text(encoding="utf-8"))
    grades = _checks(report)
    assert grades["2023000001"]["t.add"] == ("pass", "check-passed")
    assert grades["2023000002"]["t.add"] == ("fail", "check-failed")
    assert grades["2023000003"]["t.add"] == ("fail", "check-failed")
    assert grades["2023000004"]["t.add"] == ("pass", "check-passed"), "a probe got through the jail"
    assert grades["2023000005"]["t.add"][0] == "error"
    assert grades["2023000006"]["t.add"] == ("tampered", "edited-output")
    # the checks that need the student's machine are the student's claim, never re-run
    assert grades["2023000001"]["t.host"] == ("missing", "not-run")
    reruns = {s["student"]: s["rerun"] for s in report["submissions"]}
    assert reruns["2023000005"]["status"] == "timeout"
    assert reruns["2023000004"]["status"] == "ok"
    assert listener.accepted == 0
    assert _token_processes(token) == [], "a detached process outlived labkit grade"


def _notebook(*sources: str) -> dict[str, Any]:
    cells = [_cell("code", 'mode = "auto"\nlabkit_workdir = None', tags=["parameters"])]
    cells += [_cell("code", src) for src in sources]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


_PROBE = """import json, os, socket, sys
from pathlib import Path
seen = {"uid": os.getuid(), "groups": os.getgroups()}
for name, path in (("venv", sys.prefix), ("labkit", os.path.dirname(json.__file__))):
    try:
        Path(path, "labkit-jail-probe").write_text("x")
        seen[name] = "writable"
    except OSError:
        seen[name] = "read-only"
try:
    socket.create_connection(("192.0.2.1", 80), timeout=3).close()
    seen["network"] = "reached"
except OSError as exc:
    seen["network"] = type(exc).__name__
seen["tmp"] = sorted(os.listdir("/tmp"))
seen["no_new_privs"] = next(l for l in open("/proc/self/status") if l.startswith("NoNewPrivs")).split()[1]
Path(labkit_workdir, "probe.json").write_text(json.dumps(seen))"""


def test_a_jail_has_its_own_user_no_network_and_a_memory_limit(tmp_path):
    """One jail, directly: what the student's code sees, and a cell that allocates past the limit."""
    from labkit.grading.rerun import _give
    from labkit.grading.sandbox import Limits, Task, jail_argv, make_cgroup, remove_cgroup, sweep

    box = tmp_path / "s00000"
    (box / "work").mkdir(parents=True)
    (box / "home").mkdir()
    hog = "block = bytearray(1 << 30)\nblock[::4096] = b'x' * len(block[::4096])"
    _save(_notebook(_PROBE, hog), box / "submission.ipynb")
    uid = 2_000_000_000 + os.getpid() % 1_000_000 * 1000
    _give([box, *box.iterdir()], uid)
    cgroup = make_cgroup(512 << 20)
    marker = Path("/tmp", f"labkit-test-{uuid.uuid4().hex}")
    marker.write_text("the grader's")
    task = Task(
        uid=uid,
        notebook=str(box / "submission.ipynb"),
        cwd=str(box),
        home=str(box / "home"),
        workdir=str(box / "work"),
        out_dir=str(box / "out"),
        result=str(box / "result.json"),
        log=str(box / "log.txt"),
        cell_timeout=60,
        notebook_timeout=120,
        cgroup=None if cgroup is None else str(cgroup),
        limits=Limits(memory_bytes=512 << 20, cpu_s=120),
        keep=(str(box),),
    )
    try:
        subprocess.run(jail_argv(task), timeout=240, check=True, capture_output=True)
    finally:
        marker.unlink()
        assert sweep(uid) == 0, "the jail left processes"
        remove_cgroup(cgroup)
    seen = json.loads((box / "work" / "submission" / "probe.json").read_text(encoding="utf-8"))
    assert seen["uid"] == uid and seen["groups"] == []
    assert seen["venv"] == "read-only" and seen["labkit"] == "read-only"
    assert seen["network"] != "reached"
    assert marker.name not in seen["tmp"], "the grader's /tmp is visible"
    assert seen["no_new_privs"] == "1"
    result = json.loads((box / "result.json").read_text(encoding="utf-8"))
    assert result["error"] is not None, "a cell allocated 1 GiB under a 512 MiB limit"
    assert result["error"]["kind"] == "kernel", result["error"]  # killed by the cgroup, the jail went on


def test_chapter_1_rerun_redoes_the_checks_a_grading_machine_can_recreate(tmp_path):
    """The released chapter 1, never run by the student: the rerun checks (17 of 22 points) come
    from the grading machine, the live-system ones stay the student's (here: absent) claim."""
    from labkit.grading import release

    root = Path(__file__).resolve().parents[1]
    manifest = tmp_path / "m.json"
    release.main(
        notebooks=[root / "notebooks" / "01-virtualization.ipynb"],
        course="bigdata-2026",
        assignment="ch1",
        out_dir=tmp_path / "release",
        manifest=manifest,
    )
    nb = json.loads((tmp_path / "release" / "01-virtualization.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "whoami(" in "".join(cell["source"]):
            cell["source"] = 'from labkit.identity import whoami\n\nwhoami(student_id="2023123456", name="Z")'
    _save(nb, tmp_path / "subs" / "2023123456_z_01-virtualization.ipynb")
    proc = _grade(tmp_path / "subs", "--manifest", manifest, "--out", tmp_path / "g", "--rerun")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads((tmp_path / "g" / "report.json").read_text(encoding="utf-8"))
    (sub,) = report["submissions"]
    assert sub["rerun"]["status"] == "ok", sub["rerun"]
    grades = _checks(report)["2023123456"]
    rerun = {
        c["check"]
        for c in json.loads(manifest.read_text(encoding="utf-8"))["notebooks"][0]["checks"]
        if c["rerun"]
    }
    assert {k for k, v in grades.items() if v[0] == "pass"} == rerun
    assert {grades[k] for k in grades if k not in rerun} == {("missing", "not-run")}
    assert report["students"][0]["total"] == 17


def test_rerun_refuses_a_manifest_without_the_instructors_check_code(tmp_path):
    """A manifest from before this change marks checks rerun but holds no check code: running the
    submission's own check cells would trust the student again, so it is refused."""
    _released, manifest = _release(tmp_path)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    del data["notebooks"][0]["checks"][0]["source"]
    manifest.write_text(json.dumps(data), encoding="utf-8")
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "2023000001_lab.ipynb").write_bytes(
        (tmp_path / "release" / "lab.ipynb").read_bytes()
    )
    proc = _grade(tmp_path / "subs", "--manifest", manifest, "--out", tmp_path / "g", "--rerun")
    assert proc.returncode == 2, proc.stderr
    assert "release again" in proc.stderr


def _jail_processes() -> list[Any]:
    """Processes of any rerun jail (their uids start at 2,000,000,000)."""
    import psutil

    found = []
    for p in psutil.process_iter(["uids"]):
        uids = p.info.get("uids")
        if uids is not None and uids.real >= 2_000_000_000:
            found.append(p)
    return found


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_stopping_the_grader_ends_its_jails(tmp_path, how):
    """SIGTERM or ``kill -9`` on ``labkit grade --rerun`` while a submission sleeps: the jail ends
    with everything it started (SIGKILL: the jail notices within seconds that nobody reads its
    pipe); after SIGTERM the grader also removes its temp root and cgroup itself."""
    import signal
    import time

    before = set(_leftovers(tmp_path / "tmp"))
    released, manifest = _release(tmp_path)
    _save(
        _student(released, "2023000001", "import time\ntime.sleep(300)"),
        tmp_path / "subs" / "2023000001_lab.ipynb",
    )
    argv = [
        "-m",
        "labkit",
        "grade",
        tmp_path / "subs",
        "--manifest",
        manifest,
        "--out",
        tmp_path / "g",
        "--rerun",
    ]
    tmp = tmp_path / "tmp"  # the grader's own TMPDIR: other runs on this machine use /tmp too
    tmp.mkdir()
    grader = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    try:
        deadline = time.monotonic() + 60
        while not _jail_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _jail_processes(), "no jail started"
        time.sleep(3)  # the kernel runs the sleeping cell
    finally:
        grader.send_signal(getattr(signal, how))
        grader.wait(timeout=60)
    deadline = time.monotonic() + 30
    while _jail_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _jail_processes() == []
    left = set(_leftovers(tmp)) - before
    if how == "SIGTERM":
        assert grader.returncode == 143
        assert left == set()
    # what a killed grader cannot remove itself: its temp root and its (empty) memory cgroup
    for path in left:
        if path.parent == tmp:
            shutil.rmtree(path)
        else:
            path.rmdir()


def _leftovers(tmp: Path) -> list[Path]:
    cgroups = Path("/sys/fs/cgroup/memory")
    return [*tmp.glob("labkit-rerun-*"), *cgroups.glob("labkit-rerun-*")]
