"""Every course step has a plan-equals-execution test (``tests/planmatch.py``).

The rule (ARCHITECTURE.md): the argv lists a step runs are the ones its plan shows. Each step
class must be exercised by at least one test function that calls ``execute_and_match``,
``assert_plan_matches`` or the Docker tests' ``recorded`` run; a new step without such a test
fails here, naming it.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import labkit
from labkit.steps.base import Step

TESTS = Path(__file__).resolve().parent
#: planmatch's helpers, and docker_fixtures' recording run that calls assert_plan_matches.
MATCHERS = {"execute_and_match", "assert_plan_matches", "recorded", "run_recorded"}


def _step_classes() -> set[str]:
    for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
        if info.name.startswith("labkit.steps"):
            importlib.import_module(info.name)

    def walk(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        return found.union(*(walk(c) for c in found)) if found else found

    # a base class without its own plan() (DockerStep) is not a step of the course
    return {c.__name__ for c in walk(Step) if c.__module__.startswith("labkit.") and c.plan is not Step.plan}


def _names_in_matching_tests() -> set[str]:
    names: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            used |= {n.attr for n in ast.walk(fn) if isinstance(n, ast.Attribute)}
            if used & MATCHERS:
                names |= used
    return names


def test_every_step_has_a_plan_equals_execution_test():
    steps = _step_classes()
    assert len(steps) >= 20  # the walk really found the chapter 1 and 2a steps
    missing = sorted(steps - _names_in_matching_tests())
    assert not missing, f"steps without a planmatch test: {missing}"
