"""The real two-node ZeroTier lab (``../shared/tools/zerotier/lab.sh``) as a pytest fixture.

``build.sh`` builds ZeroTier One 1.14.1 once into its cache prefix; ``lab.sh up`` starts two daemons
in two network namespaces (node 1 runs the embedded controller); ``lab.sh down`` stops them at
the end. Tests skip with the reason only where the lab cannot exist here (no tools folder, not
root, the build impossible); a lab that fails to come up fails the tests.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def tools_dir() -> Path | None:
    """``../shared/tools/zerotier`` beside the clone (CI), or one level up (a worktree)."""
    env = os.environ.get("LABKIT_ZT_TOOLS")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared/tools/zerotier", REPO.parent.parent / "shared/tools/zerotier"]
    return next((c for c in candidates if (c / "lab.sh").is_file() and (c / "build.sh").is_file()), None)


def lab_processes(lab_dir: str) -> list[Any]:
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if "zerotier-one" in cmd and lab_dir in cmd:
            found.append(proc)
    return found


@pytest.fixture(scope="session")
def ztlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tools = tools_dir()
    if tools is None:
        pytest.skip("no ../shared/tools/zerotier (build.sh, lab.sh) beside this checkout")
    if os.geteuid() != 0:
        pytest.skip("the ZeroTier lab needs root (network namespaces, TUN devices)")
    if shutil.which("ip") is None or not os.path.exists("/dev/net/tun"):
        pytest.skip("cannot run the ZeroTier lab here: needs ip (iproute2) and /dev/net/tun")
    build = subprocess.run(
        ["bash", str(tools / "build.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "ZT_NO_APT": "1"},
    )
    if build.returncode != 0:
        pytest.skip("zerotier build.sh failed: " + (build.stderr or build.stdout)[-800:])
    lab_dir = str(tmp_path_factory.mktemp("ztlab"))
    lab = str(tools / "lab.sh")
    up = subprocess.run(["bash", lab, "up", lab_dir], capture_output=True, text=True, timeout=150)
    try:
        assert up.returncode == 0, f"lab.sh up failed:\n{up.stderr[-3000:]}"
        text = subprocess.run(
            ["bash", lab, "env", lab_dir], check=True, capture_output=True, text=True
        ).stdout
        env = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = shlex.split(value)[0] if value else ""
        yield env
    finally:
        subprocess.run(["bash", lab, "down", lab_dir], capture_output=True, text=True, timeout=60)
        left = lab_processes(lab_dir)
        assert not left, f"lab.sh down left processes: {[p.pid for p in left]}"
