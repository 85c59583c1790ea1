"""binder/ must stay in step with pyproject.toml so the kit builds on Binder/JupyterHub."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_binder_requirements_match_pyproject_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    binder = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    assert sorted(map(_name, binder)) == sorted(map(_name, deps))


def test_binder_apt_covers_bootstrap_packages():
    apt = set((ROOT / "binder" / "apt.txt").read_text().split())
    boot = (ROOT / "scripts" / "bootstrap.sh").read_text()
    # Binder images run no Docker daemon and give no root, so the engine and debootstrap stay out.
    not_on_binder = {"python3-venv", "ca-certificates", "docker.io", "debootstrap"}
    pkgs = set(re.search(r"pkgs=\(([^)]*)\)", boot).group(1).split()) - not_on_binder
    assert pkgs <= apt
    assert "pip install" in (ROOT / "binder" / "postBuild").read_text()
