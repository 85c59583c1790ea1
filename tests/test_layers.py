"""Architecture rules, checked on the source so they cannot silently erode.

* logic/ is pure: no process or socket modules, and imports only shared data types and logic.
* steps/ never imports the widget layer or the CLI.
* Only labkit/steps/runner.py imports subprocess; nothing uses ``shell=True`` or ``os.system``.
* The CLI verbs and the grader never import the widget layer.
* ``import labkit`` (and building the CLI parser) loads no heavy third-party module.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "labkit"
SHARED = {"labkit", "labkit._version", "labkit.errors", "labkit.checks", "labkit.i18n", "labkit.findings"}
HEAVY = ("torch", "docker", "kubernetes", "ipywidgets", "papermill", "nbformat", "matplotlib", "psutil")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out[name] = path
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = _modules()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("labkit.logic")))
def test_logic_layer_is_pure(name):
    imports = _imports(MODULES[name])
    assert not imports & {"subprocess", "socket", "requests", "urllib.request", "http.client"}, name
    labkit_imports = {i for i in imports if i.startswith("labkit")}
    bad = {i for i in labkit_imports if i not in SHARED and not i.startswith("labkit.logic")}
    assert not bad, f"{name} imports {bad} from a higher layer"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("labkit.steps")))
def test_steps_layer_never_imports_widgets_or_cli(name):
    bad = {i for i in _imports(MODULES[name]) if i.startswith(("labkit.ui", "labkit.cli", "labkit.validate"))}
    assert not bad, f"{name} imports {bad}"


def test_only_the_runner_spawns_processes():
    spawners = sorted(n for n, p in MODULES.items() if "subprocess" in _imports(p))
    assert spawners == ["labkit.steps.runner"]
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        assert "shell=True" not in text.replace(" ", ""), name
        assert "os.system(" not in text, name


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if not n.startswith(("labkit.ui", "labkit.steps", "labkit.logic")))
)
def test_cli_and_top_level_modules_never_import_widgets(name):
    imports = _imports(MODULES[name])
    assert not {i for i in imports if i.startswith("labkit.ui") or i == "ipywidgets"}, name


def test_import_labkit_and_cli_parser_stay_light():
    code = (
        "import sys, json, labkit, labkit.cli; labkit.cli.build_parser();"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_pyproject_lists_every_package():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(conf["packages"])
    on_disk = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    assert on_disk <= listed, f"add to pyproject packages: {sorted(on_disk - listed)}"
    assert conf["package-dir"]["labkit.assets"] == "widgets"
    assert not (ROOT / "widgets" / "__init__.py").exists(), "widgets/ must not become a package named widgets"
