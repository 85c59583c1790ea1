"""Architecture rules, checked on the source so they cannot silently erode.

* logic/ is pure: no process or socket modules, and imports only shared data types and logic.
* steps/ never imports the widget layer or the CLI.
* Only labkit/steps/runner.py imports subprocess; nothing uses ``shell=True`` or ``os.system``.
* The CLI verbs and the grader never import the widget layer; grading and validation never import
  the steps layer either (file helpers are :mod:`labkit.files`, cell helpers :mod:`labkit.notebooks`),
  except that ``labkit grade --rerun`` starts its jails through the one runner
  (``labkit.grading.rerun`` → ``labkit.steps.runner``, nothing else of ``steps``).
* ``import labkit`` (and building the CLI parser) loads no heavy third-party module, and
  ``labkit --help`` imports no verb module: a verb loads when it is used.
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
SHARED = {
    "labkit",
    "labkit._version",
    "labkit.errors",
    "labkit.checks",
    "labkit.i18n",
    "labkit.findings",
    "labkit.plotfont",
    "labkit.imports",
    "labkit.hidden",
}
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


GRADING_SIDE = ("labkit.grading", "labkit.validate", "labkit.notebooks", "labkit.identity")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(GRADING_SIDE)))
def test_grading_and_validation_never_import_steps_or_widgets(name):
    bad = {i for i in _imports(MODULES[name]) if i.startswith(("labkit.steps", "labkit.ui"))}
    if name == "labkit.grading.rerun":  # the jails start through the one runner, nothing else
        bad -= {"labkit.steps.runner"}
    assert not bad, f"{name} imports {bad}"


VERB_MODULES = (
    "labkit.validate",
    "labkit.grading",
    "labkit.doctor",
    "labkit.guestcli",
    "labkit.k8scli",
    "labkit.vlancli",
)


def test_cli_parser_and_top_level_help_import_no_verb_module():
    code = (
        "import sys, json, contextlib, io, labkit.cli\n"
        "parser = labkit.cli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    parser.parse_args(['--help'])\n"
        "assert 'validate' in out.getvalue()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({VERB_MODULES!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize(
    ("verb", "option"),
    [("validate", "NOTEBOOK"), ("validate", "--mode"), ("grade", "--id-pattern"), ("release", "--course")],
)
def test_verb_help_shows_the_verb_options(verb, option, capsys):
    """A verb's options load from its module on first use, so its help is complete."""
    from labkit import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main([verb, "--help"])
    assert exit_info.value.code == 0
    assert option in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["bogus"], ["grade"], ["validate", "--bogus"], ["release", "--overwrite"]])
def test_bad_arguments_exit_2(argv, capsys):
    from labkit import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


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


#: The size rule of ARCHITECTURE.md: a topic that outgrows one file becomes a small package, and a
#: function that does several things becomes named rules.
MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 100


def test_no_giant_module_or_function():
    big_modules = []
    big_functions = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            big_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big_functions.append(f"{name}.{node.name}: {length} lines")
    assert big_modules == [], "split these modules by topic"
    assert big_functions == [], "split these functions into named rules"
