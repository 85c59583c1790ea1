"""Fixtures shared by the Docker test modules (loaded with ``pytest_plugins = ["docker_fixtures"]``).

The engine is REAL: CI starts ``dockerd``. When it does not answer, the docker tests FAIL with the
reason and the start command (a silently skipped engine test proves nothing); set
``LABKIT_NO_DOCKER=1`` to skip them on purpose on a machine without Docker.

Everything a test creates is tracked and removed at the end of the session, by id: the engine may be
shared with other test runs, so nothing here removes objects by label or deletes "all".
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from labkit.logic.docker_names import LOCAL_BASES


def _skip_or_fail_without_engine() -> None:
    if os.environ.get("LABKIT_NO_DOCKER") == "1":
        pytest.skip("LABKIT_NO_DOCKER=1: Docker tests skipped on purpose")
    from labkit.steps.docker.engine import engine_unavailable

    reason = engine_unavailable(timeout=10)
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
    from labkit.steps.docker.engine import get_client

    client = get_client(timeout=60)
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
    from labkit.steps.docker.containers import BuildLocalBase

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
