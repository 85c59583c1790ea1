"""No process labkit starts outlives what started it (issue 9, section 4).

Each test starts ``sleep`` with a unique marker argument through labkit's real runner, ends the
starter one way (an exception in the caller, Ctrl-C, SIGTERM, SIGKILL of the "kernel", a cell
timeout, ``labkit validate`` interrupted or terminated, a kernel killed under it), then looks for
the marker with psutil. The runner puts every command in its own session, so none of these
endings reached the command before labkit registered its children with a reaper.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from labkit.steps.runner import SubprocessRunner

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _marker() -> str:
    """A ``sleep`` argument no other process has: ``1000.<random digits>`` seconds."""
    return f"1000.{uuid.uuid4().int % 10**12:012d}"


def _with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if marker in cmd and cmd and os.path.basename(cmd[0]) == "sleep":
            found.append(proc)
    return found


def _wait_for(marker: str, present: bool, within: float = 30.0) -> list[psutil.Process]:
    """Poll until a ``sleep MARKER`` exists (``present``) or none does; return what is there."""
    end = time.monotonic() + within
    while True:
        found = _with_marker(marker)
        if bool(found) == present or time.monotonic() > end:
            return found
        time.sleep(0.05)


def _kill_leftovers(marker: str) -> None:
    for proc in _with_marker(marker):
        proc.kill()


@pytest.fixture
def marker():
    m = _marker()
    yield m
    _kill_leftovers(m)  # a failing test must not leave its sleep behind


# -- the runner ---------------------------------------------------------------------------------
def test_an_exception_in_the_callers_code_stops_the_command(marker):
    def interrupt(stream: str, line: str) -> None:
        raise KeyboardInterrupt  # what a Jupyter interrupt of the kernel raises mid-run

    with pytest.raises(KeyboardInterrupt):
        SubprocessRunner().run(["sh", "-c", f"echo go; exec sleep {marker}"], on_line=interrupt)
    assert _wait_for(marker, present=False) == []


_KERNEL = """
import sys
from labkit.steps.runner import SubprocessRunner
say = lambda stream, line: print("ready", flush=True)
SubprocessRunner().run(["sh", "-c", "echo up; exec sleep " + sys.argv[1]], on_line=say)
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT", "exit"])
def test_a_command_dies_with_the_process_that_started_it(marker, how):
    """A stand-in kernel (own session, as jupyter_client starts one) runs ``sleep`` and is killed
    with its process group the way a kernel is, or exits with ``os._exit`` as ipykernel does when
    its parent is gone."""
    code = _KERNEL
    if how == "exit":
        code = code.replace("SubprocessRunner().run(", "proc = SubprocessRunner().start(")
        code = code.replace(", on_line=say)", ")\nnext(proc.lines(timeout=30))\nsay(0, 0)\n")
        code += "sys.stdin.readline()\nimport os\nos._exit(1)\n"  # once the test has seen it
    kernel = subprocess.Popen(
        [PY, "-c", code, marker],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        assert kernel.stdout is not None and kernel.stdout.readline().strip() == "ready"
        assert _wait_for(marker, present=True), "the command did not start"
        if how == "exit":
            kernel.stdin.write("\n")  # type: ignore[union-attr]
            kernel.stdin.flush()  # type: ignore[union-attr]
        else:
            os.killpg(kernel.pid, getattr(signal, how))
        kernel.wait(timeout=30)
        assert _wait_for(marker, present=False) == [], f"sleep {marker} outlived its starter ({how})"
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()


# -- labkit validate --------------------------------------------------------------------------
def _notebook(path: Path, *cells: str) -> Path:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def _starts_sleep(marker: str, *, wait: bool) -> str:
    """A cell that starts ``sleep MARKER`` through labkit's runner and waits for it (or not)."""
    how = "run" if wait else "start"
    return textwrap.dedent(
        f"""\
        from labkit.steps.runner import SubprocessRunner
        proc = SubprocessRunner().{how}(["sleep", "{marker}"])
        """
    )


def _validate(tmp_path: Path, nb: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [PY, "-m", "labkit", "validate", str(nb), "--out", str(tmp_path / "out"), "--jobs", "1", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


def test_validate_cell_timeout_kills_what_the_cell_started(tmp_path, marker):
    nb = _notebook(tmp_path / "slow.ipynb", _starts_sleep(marker, wait=True))
    rc, out = _finish(_validate(tmp_path, nb, "--timeout", "4"))
    assert rc == 1 and "timeout" in out.lower(), out
    assert _wait_for(marker, present=False) == [], f"sleep {marker} outlived the timed-out cell"


def test_validate_leaves_nothing_running_after_a_notebook_that_ends_normally(tmp_path, marker):
    nb = _notebook(tmp_path / "leaves.ipynb", _starts_sleep(marker, wait=False), "print('done')")
    rc, out = _finish(_validate(tmp_path, nb))
    assert rc == 0, out
    assert _wait_for(marker, present=False) == [], f"sleep {marker} outlived its notebook"


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "kernel-killed"])
def test_validate_ending_early_kills_what_the_kernel_started(tmp_path, marker, how):
    nb = _notebook(tmp_path / "stuck.ipynb", _starts_sleep(marker, wait=True))
    proc = _validate(tmp_path, nb, "--timeout", "100")
    try:
        found = _wait_for(marker, present=True, within=90)
        assert found, "the notebook did not start its command"
        if how == "kernel-killed":
            os.kill(found[0].ppid(), signal.SIGKILL)  # the kernel dies under the running cell
        else:
            proc.send_signal(getattr(signal, how))
        rc, out = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    expected = {"SIGINT": 130, "SIGTERM": -signal.SIGTERM, "kernel-killed": 1}[how]
    assert rc == expected, out
    assert _wait_for(marker, present=False) == [], f"sleep {marker} outlived labkit validate ({how})"
