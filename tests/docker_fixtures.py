"""Fixtures shared by the Docker test modules (loaded with ``pytest_plugins = ["docker_fixtures"]``).

The engine is REAL: CI starts ``dockerd``. When it does not answer, the docker tests FAIL with the
reason and the start command (a silently skipped engine test proves nothing); set
``LABKIT_NO_DOCKER=1`` to skip them on purpose on a machine without Docker.

Everything a test creates is tracked and removed at the end of the session, by id: the engine may be
shared with other test runs, so nothing here removes objects by label or deletes "all".

:func:`run_recorded` executes a step for real through a recording runner AND a recording Docker
connector (``DockerEngine(client_factory=...)`` wrapping the real client in :class:`RecordedSdk`),
then asserts the plan-equals-execution rule (``tests/planmatch.py``) and the engine-call rule of
``labkit/logic/docker.py``: every SDK call that changes the engine is covered by a recorded argv,
no engine read is recorded, and the labels / ``--change`` lines the SDK got are the ones shown.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import tarfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from planmatch import RecordingRunner, assert_plan_matches, executed_argv

from labkit.checks import CheckResult
from labkit.logic import docker as dk
from labkit.logic.docker_names import LOCAL_BASES


def _skip_or_fail_without_engine() -> None:
    if os.environ.get("LABKIT_NO_DOCKER") == "1":
        pytest.skip("LABKIT_NO_DOCKER=1: Docker tests skipped on purpose")
    from labkit.steps.docker.engine import DockerEngine

    reason = DockerEngine().unavailable(timeout=10)
    if reason:
        pytest.fail(
            "the Docker tests need a running engine (CI starts it with "
            "`dockerd --host unix:///var/run/docker.sock &`); set LABKIT_NO_DOCKER=1 to skip them. "
            f"Engine: {reason}",
            pytrace=False,
        )


@dataclass
class Tracker:
    """Ids of the containers and images a test session created; removed at the end."""

    client: Any
    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def container(self, cid: str) -> str:
        self.containers.append(cid)
        return cid

    def image(self, ref_or_id: str) -> str:
        """Track an image (by ref or id); returns its id."""
        image_id = self.client.images.get(ref_or_id).id
        if image_id not in self.images:
            self.images.append(image_id)
        return image_id

    def remove_all(self) -> list[str]:
        import docker.errors

        problems: list[str] = []
        for cid in reversed(self.containers):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(cid).remove(force=True)
        for image_id in reversed(self.images):
            try:
                self.client.images.remove(image_id, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                problems.append(f"{image_id}: {exc}")
        return problems


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A connected SDK client (fails the test with the reason when there is no engine)."""
    _skip_or_fail_without_engine()
    from labkit.steps.docker.engine import DockerEngine

    client = DockerEngine().connect(timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="session")
def tracker(docker_client) -> Iterator[Tracker]:
    track = Tracker(docker_client)
    yield track
    problems = track.remove_all()
    assert not problems, problems


@pytest.fixture(scope="session")
def busybox_base(docker_client, tracker) -> str:
    """``labkit/busybox:local``, built by the real step when missing (then removed at the end)."""
    from labkit.steps.docker.local_base import BuildLocalBase

    ref = LOCAL_BASES["busybox"]
    result = BuildLocalBase().execute("live")
    assert result.status == "pass", result
    if not result.evidence["reused"]:
        tracker.image(ref)
    return ref


@pytest.fixture
def uniq() -> str:
    """A fresh lower-case name fragment for refs and container names."""
    return "lkt" + uuid.uuid4().hex[:10]


@pytest.fixture
def unlabelled_image(docker_client, tracker):
    """Factory: ``unlabelled_image(ref)`` creates a tracked image WITHOUT labkit labels; returns its id."""

    def make(ref: str, content: bytes = b"not labkit\n") -> str:
        return tracker.image(import_unlabelled(docker_client, ref, content))

    return make


def tiny_rootfs_tar(files: dict[str, bytes]) -> bytes:
    """A tar holding only ``files`` (for unlabelled images made with ``docker import``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def import_unlabelled(client: Any, ref: str, content: bytes = b"not labkit\n") -> str:
    """Create an image WITHOUT labkit labels (as a student's own image would be); returns its id."""
    repo, tag = ref.rsplit(":", 1)
    client.api.import_image_from_data(tiny_rootfs_tar({"owner.txt": content}), repository=repo, tag=tag)
    return client.images.get(ref).id


# ----------------------------------------------------------------------------------------------
# The recording connector
# ----------------------------------------------------------------------------------------------
#: SDK calls that change the engine (named as :class:`RecordedSdk` logs them) → the ``docker`` CLI
#: verbs that do the same. ``docker run`` is create + start (+ wait, logs) + remove.
MUTATIONS: dict[str, frozenset[str]] = {
    "containers.create": frozenset({"run", "create"}),
    "containers.run": frozenset({"run"}),
    "Container.start": frozenset({"run", "start"}),
    "Container.exec_run": frozenset({"exec"}),
    "Container.commit": frozenset({"commit"}),
    "Container.remove": frozenset({"run", "rm"}),
    "Container.stop": frozenset({"stop"}),
    "Container.kill": frozenset({"kill"}),
    "images.remove": frozenset({"rmi"}),
    "images.build": frozenset({"build"}),
    "images.load": frozenset({"load"}),
    "Image.tag": frozenset({"tag"}),
    "Image.save": frozenset({"save"}),  # not a change, but the step's whole point: recorded
    "api.import_image": frozenset({"import"}),
    "api.import_image_from_data": frozenset({"import"}),
    "api.load_image": frozenset({"load"}),
    "api.build": frozenset({"build"}),
    "api.tag": frozenset({"tag"}),
    "api.push": frozenset({"push"}),
}
#: SDK calls that only read: never recorded (the rule in labkit/logic/docker.py).
READS = frozenset(
    {
        "ping",
        "version",
        "info",
        "close",
        "containers.get",
        "containers.list",
        "images.get",
        "images.list",
        "Container.reload",
        "Container.wait",
        "Container.logs",
        "Image.reload",
        "Image.history",
    }
)
#: ``docker`` verbs that only read: none may appear in a step's recorded commands.
READ_VERBS = frozenset({"ps", "images", "inspect", "image", "container", "version", "info", "logs"})


@dataclass(frozen=True)
class SdkCall:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class SdkLog:
    """Every SDK call a step made through the recording connector, in order."""

    calls: list[SdkCall] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def mutations(self) -> list[SdkCall]:
        return [c for c in self.calls if c.method in MUTATIONS]


class RecordedSdk:
    """Proxy of an SDK object (client, manager, model): logs each call, wraps the models returned.

    ``visible`` (a set of ids) sandboxes a step that acts on *everything*: ``containers.list`` and
    ``images.list`` show only those objects, and a removal of anything else fails the test, so
    DeleteEverything can run for real on a shared engine.
    """

    def __init__(self, inner: Any, log: SdkLog, *, path: str = "", visible: set[str] | None = None) -> None:
        self._inner = inner
        self._log = log
        self._path = path
        self._visible = visible

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        method = f"{self._path}.{name}" if self._path else name
        if not self._path and name in ("containers", "images", "api"):
            return RecordedSdk(value, self._log, path=name, visible=self._visible)
        if name.startswith("_") or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._log.calls.append(SdkCall(method, args, dict(kwargs)))
            self._guard(method, args)
            return self._wrap(method, value(*args, **kwargs))

        return call

    def _guard(self, method: str, args: tuple[Any, ...]) -> None:
        if self._visible is None:
            return
        if method == "Container.remove":
            assert self._inner.id in self._visible, f"would remove container {self._inner.id}"
        if method == "images.remove":
            assert self._inner.get(args[0]).id in self._visible, f"would remove image {args[0]}"

    def _wrap(self, method: str, result: Any) -> Any:
        from docker.models.resource import Model

        if isinstance(result, Model):
            return RecordedSdk(result, self._log, path=type(result).__name__, visible=self._visible)
        if isinstance(result, list) and all(isinstance(r, Model) for r in result):
            if self._visible is not None and method in ("containers.list", "images.list"):
                result = [r for r in result if r.id in self._visible]
            return [self._wrap(method, r) for r in result]
        return result


def recording_engine(log: SdkLog, *, visible: set[str] | None = None) -> Any:
    """A Docker connector whose clients log every SDK call into ``log``."""
    from labkit.steps.docker.engine import DockerEngine

    return DockerEngine(client_factory=lambda client: RecordedSdk(client, log, visible=visible))


def _contains(argv: Sequence[str], part: Sequence[str]) -> bool:
    n = len(part)
    return any(list(argv[i : i + n]) == list(part) for i in range(len(argv) - n + 1))


def assert_engine_calls_recorded(log: SdkLog, ran: list[list[str]]) -> None:
    """The engine-call rule: mutations are recorded (with the data shown), reads are not."""
    unknown = sorted({m for m in log.methods() if m not in MUTATIONS and m not in READS})
    assert not unknown, f"classify these SDK calls in tests/docker_fixtures.py: {unknown}"
    docker_argv = [a for a in ran if a[:1] == ["docker"]]
    for argv in docker_argv:
        assert argv[1] not in READ_VERBS, f"an engine read was recorded: {shlex.join(argv)}"
    for method, count in Counter(c.method for c in log.mutations()).items():
        covering = [a for a in docker_argv if a[1] in MUTATIONS[method]]
        assert count <= len(covering), f"{count}× {method} but only {len(covering)} recorded: {docker_argv}"
    for c in log.mutations():
        if c.kwargs.get("labels"):
            shown = [dk.mask_unique(a) for a in dk.label_args(c.kwargs["labels"])]
            assert any(_contains(a, shown) for a in docker_argv), f"{c.method} labels not shown: {shown}"
        for change in c.kwargs.get("changes") or []:
            shown = ["--change", dk.mask_unique(change)]
            assert any(_contains(a, shown) for a in docker_argv), f"{c.method} change not shown: {change}"
        if c.kwargs.get("environment"):
            shown = dk.env_args(c.kwargs["environment"])
            assert any(_contains(a, shown) for a in docker_argv), f"{c.method} env not shown: {shown}"


@dataclass
class Recorded:
    """What :func:`run_recorded` returns: the result, the argv that ran, the SDK calls made."""

    result: CheckResult
    ran: list[list[str]]
    sdk: SdkLog


def run_recorded(
    step: Any,
    mode: str = "live",
    *,
    templates: Sequence[Sequence[str]] = (),
    visible: set[str] | None = None,
    **kw: Any,
) -> Recorded:
    """Execute ``step`` for real through recording runner + connector; assert both rules.

    ``templates``: the removal shapes a state-dependent step (cleanup) shows in its plan notes
    instead of exact argv; each executed argv that is not planned exactly must match one.
    """
    plan = step.plan()
    runner = RecordingRunner()
    log = SdkLog()
    result = step.execute(mode, runner=runner, docker=recording_engine(log, visible=visible), **kw)
    if templates:
        ran = executed_argv(result)
        for argv in runner.history:
            assert argv in ran, f"ran outside the run context: {shlex.join(argv)}"
        notes = "\n".join(plan.notes)
        for template in templates:
            assert shlex.join(template) in notes, f"template not shown in the plan: {shlex.join(template)}"
        for argv in ran:
            fits = argv in plan.planned_argv() or any(dk.matches_template(argv, t) for t in templates)
            assert fits, f"ran but neither planned nor of a planned shape: {shlex.join(argv)}"
    else:
        ran = assert_plan_matches(plan, result, runner.history)
    assert_engine_calls_recorded(log, ran)
    return Recorded(result, ran, log)


@pytest.fixture
def recorded() -> Callable[..., Recorded]:
    """The :func:`run_recorded` helper, as a fixture (test modules load this file as a plugin)."""
    return run_recorded
