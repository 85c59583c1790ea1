"""Chapter 2a, engine side: connecting, diagnosing what students hit, hello-world, names, ports.

Pure tests (reference grammar, message classification, labels) run everywhere; tests marked
``docker`` use the REAL engine (see docker_fixtures.py: they fail when it is not running unless
``LABKIT_NO_DOCKER=1``).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.errors import ConsentRequired, InvalidField, NotSupportedHere, ToolMissing
from labkit.logic import docker as dk
from labkit.logic import docker_names as dn
from labkit.steps.docker.engine import DockerEngine, DockerFailed, docker_errors, translate
from labkit.steps.docker.engine_check import EngineCheck
from labkit.steps.docker.local_base import BuildLocalBase
from labkit.steps.docker.packaging import CommitContainer
from labkit.steps.docker.run import GREETING, HelloContainer, RunImage

pytest_plugins = ["docker_fixtures"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


# ----------------------------------------------------------------------------------------------
# Pure: labels
# ----------------------------------------------------------------------------------------------
def test_labels_carry_step_kind_and_a_fresh_object_id():
    a = dn.labkit_labels("ch2.docker.commit", kind="image", ref="labkit/x:1")
    b = dn.labkit_labels("ch2.docker.commit", kind="image", ref="labkit/x:1")
    assert a[dn.LABEL_CREATED] == "true"
    assert a[dn.LABEL_STEP] == "ch2.docker.commit"
    assert a[dn.LABEL_REF] == "labkit/x:1"
    assert a[dn.LABEL_OBJECT].startswith("image:")
    assert a[dn.LABEL_OBJECT] != b[dn.LABEL_OBJECT]
    assert dn.labkit_labels("s", kind="container")[dn.LABEL_OBJECT].startswith("container:")
    assert dn.is_labkit_object(a, "image")
    assert not dn.is_labkit_object(a, "container")
    assert not dn.is_labkit_object({"org.labkit.created": "false"})
    with pytest.raises(InvalidField):
        dn.labkit_labels("")
    with pytest.raises(InvalidField):
        dn.labkit_labels("s", kind="volume")


def _img(oid: str, labels: dict, layers: int, created: str, tags=()) -> dn.DockerObject:
    return dn.DockerObject("image", oid, tuple(tags), labels, layers, created)


def test_select_labkit_tells_created_objects_from_ones_that_inherited_the_labels():
    base = dn.labkit_labels("ch2.docker.base", kind="image", ref="labkit/busybox:local")
    commit = dn.labkit_labels("ch2.docker.commit", kind="image", ref="labkit/ailab:latest")
    objs = [
        _img("sha256:" + "a" * 64, base, 1, "2026-01-01T00:00:00Z", ["labkit/busybox:local"]),
        # a student's image built FROM the labkit base: same labels, one layer more, newer
        _img("sha256:" + "b" * 64, base, 2, "2026-01-02T00:00:00Z", ["mine:1"]),
        _img("sha256:" + "c" * 64, commit, 2, "2026-01-03T00:00:00Z", ["labkit/ailab:latest"]),
        # labkit's mark but no object label (older tools / hand-made): never ours
        _img("sha256:" + "d" * 64, {dn.LABEL_CREATED: "true"}, 1, "2026-01-04T00:00:00Z"),
        # a container a student ran from a labkit image: the image's labels only
        dn.DockerObject("container", "e" * 64, ("student",), base, 0, "2026-01-05T00:00:00Z"),
        dn.DockerObject(
            "container", "f" * 64, ("lk",), dn.labkit_labels("s", kind="container"), 0, "2026-01-06T00:00:00Z"
        ),
        _img("sha256:" + "0" * 64, {}, 1, "2026-01-07T00:00:00Z", ["unlabelled:1"]),
    ]
    # labkit's record names what it made: the base, the commit and its own container
    made = dn.parse_created_records(
        "".join(dn.created_record(o.id, o.labels) for o in objs if o.id[-1] in "acf")
    )
    ours, lookalike = dn.select_labkit(objs, made)
    assert [o.id[-1] for o in ours] == ["f", "c", "a"]  # containers first, then images newest first
    assert sorted(o.id[-1] for o in lookalike) == ["b", "d", "e"]
    # once the base is gone, the student's image built on it is still not labkit's (issue 9, 5b)
    ours, lookalike = dn.select_labkit([o for o in objs if o.id[-1] != "a"], made)
    assert [o.id[-1] for o in ours] == ["f", "c"]
    assert sorted(o.id[-1] for o in lookalike) == ["b", "d", "e"]
    # the label alone proves nothing: with no record, nothing is labkit's
    assert dn.select_labkit(objs, frozenset())[0] == []
    # the weaker ancestry test, used only to move labkit's own tag (which deletes nothing)
    assert dn.looks_like_labkits_image(objs[0], objs)
    assert not dn.looks_like_labkits_image(objs[1], objs)  # the student's image, base present
    assert not dn.looks_like_labkits_image(objs[4], objs)  # a container is never an image


# ----------------------------------------------------------------------------------------------
# Pure: one builder per engine call (labkit/logic/docker.py)
# ----------------------------------------------------------------------------------------------
def test_a_run_call_shows_exactly_the_labels_env_and_ports_the_sdk_gets():
    call = dk.run_container(
        "labkit/x:1", ["echo", "hi"], step="ch2.docker.run", name="box", ports={"8888/tcp": 9000},
        environment={"GREETING": "it's $HOME"},
    )  # fmt: skip
    assert call.method == "containers.create"
    assert call.args == ("labkit/x:1", ["echo", "hi"])
    labels = call.kwargs["labels"]
    assert call.labels == labels
    assert labels[dn.LABEL_CREATED] == "true"
    assert labels[dn.LABEL_STEP] == "ch2.docker.run"
    shown = [dk.mask_unique(a) for a in dk.label_args(labels)]
    assert call.cli == [
        "docker", "run", "--rm", "--name", "box", "-p", "9000:8888", *shown,
        "-e", "GREETING=it's $HOME", "labkit/x:1", "echo", "hi",
    ]  # fmt: skip
    assert f"--label {dn.LABEL_CREATED}=true" in " ".join(call.cli)
    assert f"{dn.LABEL_OBJECT}=container:{dk.UNIQUE}" in call.cli
    assert call.kwargs["environment"] == {"GREETING": "it's $HOME"}
    assert call.kwargs["ports"] == {"8888/tcp": 9000}
    assert call.port == 9000


def test_plan_and_run_build_the_same_argv_though_each_object_gets_a_fresh_id():
    first = dk.run_container("img", None, step="s", detach=True, name="c1")
    second = dk.run_container("img", None, step="s", detach=True, name="c1")
    assert first.argv == second.argv
    assert first.kwargs["labels"][dn.LABEL_OBJECT] != second.kwargs["labels"][dn.LABEL_OBJECT]
    assert first.cli[:3] == ["docker", "run", "-d"]
    assert first.args == ("img", None)


def test_commit_and_import_show_the_change_lines_the_sdk_gets():
    commit = dk.commit("box", "labkit/ailab:v1", step="ch2.docker.commit", message="m")
    assert commit.kwargs["repository"] == "labkit/ailab"
    assert commit.kwargs["tag"] == "v1"
    (change,) = commit.kwargs["changes"]
    assert change == dk.label_change(commit.labels)
    assert commit.labels[dn.LABEL_REF] == "labkit/ailab:v1"
    assert commit.cli == [
        "docker",
        "commit",
        "--change",
        dk.mask_unique(change),
        "-m",
        "m",
        "box",
        "labkit/ailab:v1",
    ]
    imported = dk.import_rootfs("labkit/busybox:local", step="ch2.docker.base", kind="busybox")
    assert imported.method == "api.import_image"
    assert imported.cli[-2:] == ["-", "labkit/busybox:local"]
    assert imported.kwargs["changes"][1:] == ['CMD ["/bin/sh"]', "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    assert imported.labels["org.labkit.base"] == "busybox"


def test_removal_templates_match_only_their_shape():
    rm, rmi_tag, rmi_id = dk.CLEANUP_TEMPLATES
    assert dk.matches_template(["docker", "rm", "-f", "abc"], rm)
    assert not dk.matches_template(["docker", "rm", "abc"], rm)
    assert dk.matches_template(dk.remove_image("sha256:" + "a" * 64).cli, rmi_id)
    assert not dk.matches_template(["docker", "rmi", "-f", "x"], rmi_tag)
    assert dk.matches_template(dk.remove_image("x", force=True).cli, dk.NUKE_TEMPLATES[1])


def test_compression_and_save_choices_are_pure():
    assert dk.compression_for("a.tar.gz", "auto") == "gzip"
    assert dk.compression_for("a.TAR", "auto") == "none"
    with pytest.raises(InvalidField):
        dk.compression_for("a.zip", "gzip")
    assert dk.save("x:1", "a.tar", compression="none", chunk_size=1).cli == [
        "docker",
        "save",
        "-o",
        "a.tar",
        "x:1",
    ]
    assert dk.save("x:1", "a.tar.gz", compression="gzip", chunk_size=1).cli == ["docker", "save", "x:1"]
    assert dk.save_named("x", ["x:latest"]) == "x:latest"
    assert dk.save_named("x:1", ["y:2"]) is False


def test_the_label_is_written_in_one_place():
    """``org.labkit.created`` is spelled only in logic/docker_names.py; everything else uses LABEL_CREATED."""
    spelled = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "labkit").rglob("*.py")
        if "org.labkit.created" in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["labkit/logic/docker_names.py"]


def test_hello_plan_shows_exactly_what_builds_a_missing_base():
    """The conditional base build is not a plan command (it runs only when the image is missing),
    so the plan's note carries its exact argv, built by the same builders the build runs."""
    from labkit.steps.docker.local_base import base_build_commands

    plan = HelloContainer().plan()
    ref = dn.LOCAL_BASES["busybox"]
    commands, _ = base_build_commands("busybox", ref, step="ch2.docker.hello")
    assert commands[1] == dk.import_rootfs(ref, step="ch2.docker.hello", kind="busybox").cli
    for argv in commands:
        assert shlex.join(argv) in plan.notes[0]
    assert dk.inspect_image_argv(ref) in plan.probes


def test_a_container_step_builds_its_docker_run_once_for_plan_and_run():
    """The plan of HelloContainer / RunImage is the call that runs: one DockerCall per step, so its
    labels (with the random object id), -e and argv cannot drift between plan and run."""
    for step in (HelloContainer(), RunImage("labkit/busybox:local", ["echo", "hi"], name="labkit-t1")):
        call = step.call()
        assert step.call() is call
        assert step.plan().commands == [call.cli]
        assert call.kwargs["labels"] == call.labels
        assert dn.LABEL_OBJECT in call.labels
        assert all(a in call.cli for a in dk.label_args(call.labels)[1::2] if "object" not in a)
    hello = HelloContainer().call()
    assert hello.kwargs["environment"] == {"LABKIT_GREETING": GREETING}
    assert dk.env_args(hello.kwargs["environment"]) == hello.cli[-6:-4]


def _every_docker_step() -> list:
    from labkit.steps.docker.cleanup import CleanupLabkit, DeleteEverything
    from labkit.steps.docker.packaging import LoadImage, SaveImage

    return [
        EngineCheck(), BuildLocalBase(), BuildLocalBase("debian"), HelloContainer(), CommitContainer(),
        SaveImage(), LoadImage(), RunImage(), CleanupLabkit(), DeleteEverything(),
    ]  # fmt: skip


def test_plans_never_ask_the_engine(monkeypatch):
    import docker

    from labkit.steps.docker import engine

    def refuse(*args, **kwargs):
        raise AssertionError("plan() talked to the Docker engine")

    monkeypatch.setattr(engine.DockerEngine, "connect", refuse)
    monkeypatch.setattr(docker, "from_env", refuse)
    monkeypatch.setattr(docker, "DockerClient", refuse)
    for step in _every_docker_step():
        plan = step.plan()
        assert plan.step == step.check_id
        for argv in plan.commands:
            assert argv[0] in ("docker", "debootstrap") or argv[1] == "--list-full", argv


# ----------------------------------------------------------------------------------------------
# Pure: image references and container names
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "labkit/ailab:latest",
        "chinageology/ailab:latest",
        "localhost:5000/a/b-c__d.e:v1.2_3",
        "registry.example.com/team/img@sha256:" + "ab" * 32,
        "a" * 200 + ":" + "T" * 128,
        "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
    ],
)
def test_valid_references_parse_and_round_trip(ref):
    parsed = dn.parse_reference(ref)
    assert str(parsed) == ref
    assert dn.validate_reference(ref) == ref


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("Chinageology/AILab:latest", "lowercase"),
        ("ailab:", "empty tag"),
        ("ailab:.hidden", "invalid tag"),
        ("ailab:" + "x" * 129, "invalid tag"),
        ("my image", "whitespace"),
        ("ailab//x", "empty path component"),
        ("-ailab", "not allowed"),
        ("ailab@sha256:xyz", "invalid digest"),
        ("", "empty"),
        ("a" * 256, "longer than 255"),
        ("bad_host!/x", "not allowed"),
    ],
)
def test_invalid_references_say_what_is_wrong_and_how_to_fix(ref, problem):
    with pytest.raises(InvalidField) as info:
        dn.validate_reference(ref, "image")
    assert info.value.field == "image"
    assert problem in str(info.value)
    assert info.value.fix


_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
)
def test_every_reference_built_from_the_grammar_is_accepted(path, tag):
    ref = "/".join(path) + (f":{tag}" if tag else "")
    if len(ref.split(":")[0]) > 255:
        return
    first = path[0]
    is_domain = len(path) > 1 and "." in first  # a first component with '.' is a registry host
    if is_domain and "_" in first:  # ... and host names have no '_': the engine refuses it too
        with pytest.raises(InvalidField, match="registry host"):
            dn.parse_reference(ref)
        return
    parsed = dn.parse_reference(ref)
    assert str(parsed) == ref
    assert parsed.domain == (first if is_domain else "")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_the_suggested_fix_is_always_a_valid_reference(text):
    suggestion = dn.suggest_reference(text)
    assert dn.validate_reference(suggestion) == suggestion


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=40))
def test_upper_case_repository_names_are_always_rejected(text):
    if not any(c.isupper() for c in text) or "/" in text or ":" in text or "@" in text:
        return
    with pytest.raises(InvalidField):
        dn.validate_reference(text)


@pytest.mark.parametrize("name", ["ailab", "a1", "labkit-ailab", "x.y_z", "/ailab"])
def test_valid_container_names(name):
    assert dn.validate_container_name(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["a", "-x", "_x", "my box", "ailab!", ""])
def test_invalid_container_names(name):
    with pytest.raises(InvalidField) as info:
        dn.validate_container_name(name, "container_name")
    assert info.value.field == "container_name"
    assert "e.g. ailab" in info.value.fix


# ----------------------------------------------------------------------------------------------
# Pure: engine messages (texts recorded from Docker 20.10 and the SDK)
# ----------------------------------------------------------------------------------------------
REAL_TEXTS = {
    "port-host": (
        "driver failed programming external connectivity on endpoint eager_goldwasser (2a1aafc5): "
        "Error starting userland proxy: listen tcp4 0.0.0.0:37185: bind: address already in use"
    ),
    "port-container": (
        "driver failed programming external connectivity on endpoint x (9f): Bind for 0.0.0.0:8888 "
        "failed: port is already allocated"
    ),
    "conflict": (
        'Conflict. The container name "/ailab" is already in use by container '
        '"5d1a0c6e2f0b9a7c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0". You have to remove (or '
        "rename) that container to be able to reuse that name."
    ),
    "nospace": "write /var/lib/docker/tmp/docker-import-123/rootfs.tar: no space left on device",
    "noimage": "no such image: nope:1: No such image: nope:1",
    "permission": (
        "Error while fetching server API version: ('Connection aborted.', PermissionError(13, "
        "'Permission denied'))"
    ),
    "notrunning": (
        "Error while fetching server API version: ('Connection aborted.', FileNotFoundError(2, "
        "'No such file or directory'))"
    ),
    "refused": (
        "Error while fetching server API version: ('Connection aborted.', ConnectionRefusedError(111, "
        "'Connection refused'))"
    ),
    "version": "client version 1.45 is too new. Maximum supported API version is 1.41",
}


@pytest.mark.parametrize(
    ("key", "kind", "subject"),
    [
        ("port-host", "port-in-use", "37185"),
        ("port-container", "port-in-use", "8888"),
        ("conflict", "name-conflict", "ailab"),
        ("nospace", "no-space", ""),
        ("noimage", "not-found", "nope:1"),
        ("permission", "permission", ""),
        ("notrunning", "not-running", ""),
        ("refused", "not-running", ""),
        ("version", "api-version", ""),
    ],
)
def test_engine_messages_are_classified(key, kind, subject):
    problem = dn.classify_engine_error(REAL_TEXTS[key])
    assert (problem.kind, problem.subject) == (kind, subject)


class _FakeApiError(Exception):
    """Shaped like docker.errors.APIError (explanation + status_code) without a live response."""

    def __init__(self, explanation: str, status: int) -> None:
        super().__init__(explanation)
        self.explanation = explanation
        self.status_code = status


def test_translation_gives_each_student_error_its_fix():
    port = translate(_FakeApiError(REAL_TEXTS["port-container"], 500), "run")
    assert isinstance(port, InvalidField)
    assert port.field == "port"
    assert port.value == "8888"
    assert "ss -ltnp 'sport = :8888'" in port.fix
    conflict = translate(_FakeApiError(REAL_TEXTS["conflict"], 409), "create")
    assert isinstance(conflict, InvalidField)
    assert conflict.value == "ailab"
    assert "5d1a0c6e2f0b" in str(conflict)
    assert "docker rm -f ailab" in conflict.fix
    space = translate(_FakeApiError(REAL_TEXTS["nospace"], 500), "import")
    assert isinstance(space, NotSupportedHere)
    assert "docker system df" in space.fix
    assert "df -h /var/lib/docker" in space.fix
    missing = translate(_FakeApiError(REAL_TEXTS["noimage"], 404), "inspect")
    assert isinstance(missing, InvalidField)
    assert missing.field == "image"
    assert missing.value == "nope:1"
    version = translate(_FakeApiError(REAL_TEXTS["version"], 400), "connect")
    assert isinstance(version, NotSupportedHere)
    assert "version=" in version.fix
    other = translate(_FakeApiError("something odd", 500), "frobnicate", argv=["docker", "x"])
    assert isinstance(other, DockerFailed)
    assert other.returncode == 500
    assert "`docker x` failed (Docker engine HTTP 500)" in str(other)


def test_out_of_disk_while_writing_locally_is_translated():
    with pytest.raises(NotSupportedHere) as info, docker_errors("save the image"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "out of disk space" in str(info.value)
    assert "docker system df" in info.value.fix
    with pytest.raises(FileNotFoundError), docker_errors("save"):  # our own bugs are not hidden
        raise FileNotFoundError("x")


# ----------------------------------------------------------------------------------------------
# Pure: archives, load output, sidecar
# ----------------------------------------------------------------------------------------------
def _tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    return buf.getvalue()


def test_archive_kind_by_magic_bytes():
    tar = _tar_bytes()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("image.tar", tar)
    assert dn.archive_kind(tar[:512]) == "tar"
    assert dn.archive_kind(gzip.compress(tar)[:512]) == "gzip"
    assert dn.archive_kind(zbuf.getvalue()[:512]) == "zip"
    assert dn.archive_kind(b"hello") == "unknown"
    assert dn.ARCHIVE_KINDS["gzip"]
    assert not dn.ARCHIVE_KINDS["zip"]


def test_parse_load_output_reads_cli_lines_and_engine_stream():
    assert dn.parse_load_output(["Loaded image: labkit/ailab:latest", "noise"]) == ["labkit/ailab:latest"]
    stream = [{"stream": "Loaded image ID: sha256:" + "a" * 64 + "\n"}]
    assert dn.parse_load_output(stream) == ["sha256:" + "a" * 64]
    with pytest.raises(ValueError, match="unexpected EOF"):
        dn.parse_load_output([{"errorDetail": {"message": "unexpected EOF"}}])


def test_sidecar_round_trip_and_rejection():
    text = dn.make_sidecar(
        image_id="sha256:" + "a" * 64, tags=["b:1", "a:1"], sha256="f" * 64, size=3, compression="gzip",
        archive="x.tar.gz",
    )  # fmt: skip
    data = dn.parse_sidecar(text)
    assert data["tags"] == ["a:1", "b:1"]
    assert data["size"] == 3
    with pytest.raises(InvalidField):
        dn.parse_sidecar(json.dumps({"image_id": "x"}))
    with pytest.raises(InvalidField):
        dn.parse_sidecar("not json")


# ----------------------------------------------------------------------------------------------
# Real engine
# ----------------------------------------------------------------------------------------------


@pytest.mark.docker
def test_engine_check_reports_versions_driver_and_user(docker_client):
    result = EngineCheck().execute("live")
    assert result.status == "pass", result
    eng = result.evidence["engine"]
    server = docker_client.version()
    assert eng["server_version"] == server["Version"]
    assert eng["api_version"] == server["ApiVersion"] == eng["negotiated_api_version"]
    assert eng["storage_driver"] == docker_client.info()["Driver"]
    assert result.evidence["user"]["is_root"] == (os.geteuid() == 0)
    assert result.evidence["probe"]["engine"] == "ok"


@pytest.mark.docker
def test_pinning_a_too_new_api_version_is_explained(docker_client):
    import docker

    with pytest.raises(NotSupportedHere) as info, docker_errors("connect"):
        docker.DockerClient(version="1.99").version()
    assert "too new" in str(info.value)
    assert "negotiates" in info.value.fix


def _missing_socket(tmp_path: Path) -> str:
    return f"unix://{tmp_path / 'run' / 'docker.sock'}"


@pytest.mark.docker
def test_daemon_not_running_is_diagnosed_with_the_start_command(monkeypatch, tmp_path, docker_client):
    monkeypatch.setenv("DOCKER_HOST", _missing_socket(tmp_path))
    result = EngineCheck().execute("live")
    assert result.status == "fail"
    assert "not running" in result.message
    start = "systemctl start docker" if os.path.isdir("/run/systemd/system") else "dockerd"
    assert start in result.message
    assert "Traceback" not in result.message
    assert result.evidence["error_type"] == "NotSupportedHere"
    # other steps: auto mode plans and says why; live mode reports an error; never a traceback
    auto = HelloContainer().execute("auto")
    assert auto.status == "skipped"
    assert auto.mode == "plan"
    assert "not running" in auto.message
    live = HelloContainer().execute("live")
    assert live.status == "error"
    assert "not running" in live.message


@pytest.mark.docker
def test_a_stale_socket_with_no_daemon_is_not_running(monkeypatch, tmp_path, docker_client):
    path = tmp_path / "docker.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))  # bound, never listening: what a crashed dockerd leaves behind
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        with pytest.raises(NotSupportedHere) as info:
            DockerEngine().connect(timeout=5)
        assert "not running" in str(info.value)
    finally:
        sock.close()


@pytest.mark.docker
def test_engine_not_installed_names_the_package(monkeypatch, tmp_path, docker_client):
    monkeypatch.setenv("DOCKER_HOST", _missing_socket(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, no dockerd
    with pytest.raises(ToolMissing) as info:
        DockerEngine().connect(timeout=5)
    assert info.value.package == "docker.io"
    assert "apt-get install" in str(info.value)
    result = EngineCheck().execute("live")
    assert result.status == "fail"
    assert "docker.io" in result.message


_AS_NOBODY = """
import json
from labkit.steps.docker.engine_check import EngineCheck
from labkit.steps.docker.local_base import BuildLocalBase
from labkit.steps.docker.run import HelloContainer
print(json.dumps([EngineCheck().execute("live").to_payload(), HelloContainer().execute("auto").to_payload()]))
"""


@pytest.mark.docker
def test_permission_denied_for_a_user_outside_the_docker_group(docker_client):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run as user nobody")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": "/tmp",
        "LABKIT_LANG": "en",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if "DOCKER_HOST" in os.environ:
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    argv = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", _AS_NOBODY]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    engine_check, hello = json.loads(done.stdout)
    assert engine_check["status"] == "fail"
    msg = engine_check["message"]
    assert "permission denied" in msg
    assert "usermod -aG" in msg
    assert "log out and in again" in msg
    assert "root-equivalent" in msg  # the course's warning, said where it matters
    assert engine_check["evidence"]["user"] == {"uid": 65534, "is_root": False, "in_socket_group": False}
    assert hello["status"] == "skipped"
    assert "permission denied" in hello["message"]


@pytest.mark.docker
def test_hello_container_prints_the_greeting_and_is_removed(docker_client, busybox_base):
    result = HelloContainer().execute("live")
    assert result.status == "pass", result
    ev = result.evidence
    assert GREETING in ev["stdout"]
    assert ev["exit_code"] == 0
    assert ev["container_removed"] is True
    assert ev["labels"][dn.LABEL_STEP] == "ch2.docker.hello"
    assert not docker_client.containers.list(all=True, filters={"id": ev["container_id"]})


@pytest.mark.docker
def test_a_missing_image_is_named(docker_client, uniq):
    result = RunImage(f"{uniq}/nothing:here", ["true"]).execute("live")
    assert result.status == "error"
    assert result.evidence["field"] == "image"
    assert f"{uniq}/nothing:here" in result.message
    assert "docker images" in result.message


def test_an_invalid_image_name_is_refused_before_anything_runs():
    result = RunImage("Chinageology/AILab:latest", ["true"]).execute("live")
    assert result.status == "error"
    assert result.evidence["field"] == "image"
    assert "lowercase" in result.message
    assert "chinageology/ailab:latest" in result.message
    assert "commands" not in result.evidence


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.docker
def test_port_held_by_a_host_program_is_named(docker_client, busybox_base):
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen()
    port = holder.getsockname()[1]
    before = {c.id for c in docker_client.containers.list(all=True)}
    try:
        result = RunImage(busybox_base, ["true"], ports={"8888/tcp": port}).execute("live")
    finally:
        holder.close()
    assert result.status == "error"
    assert result.evidence["field"] == "port"
    assert result.evidence["value"] == str(port)
    assert f"ss -ltnp 'sport = :{port}'" in result.message
    assert {c.id for c in docker_client.containers.list(all=True)} <= before  # nothing left behind


@pytest.mark.docker
def test_port_held_by_another_container_is_named(docker_client, busybox_base, tracker):
    port = _free_port()
    first = docker_client.containers.run(
        busybox_base, ["sleep", "60"], detach=True, ports={"80/tcp": port}, labels={"test": "holder"}
    )
    tracker.container(first.id)
    try:
        result = RunImage(busybox_base, ["true"], ports={"8888/tcp": port}).execute("live")
    finally:
        first.remove(force=True)
    assert result.status == "error"
    assert result.evidence["value"] == str(port)
    assert "already in use" in result.message
    assert "docker ps" in result.message


@pytest.mark.docker
def test_container_name_in_use_says_which_and_how_to_remove(docker_client, busybox_base, tracker, uniq):
    squatter = docker_client.containers.create(busybox_base, ["true"], name=uniq)  # not labkit's
    tracker.container(squatter.id)
    result = CommitContainer(f"{uniq}/img:1", container_name=uniq).execute("live")
    assert result.status == "error"
    assert result.evidence["field"] == "name"
    assert squatter.id[:12] in result.message
    assert f"docker rm -f {uniq}" in result.message
    squatter.reload()  # untouched: labkit never removes a container it did not create
    assert squatter.status == "created"
    squatter.remove(force=True)


@pytest.mark.docker
def test_commit_refuses_to_steal_a_tag_from_a_students_image(
    docker_client, busybox_base, unlabelled_image, uniq
):
    ref = f"{uniq}/mine:1"
    image_id = unlabelled_image(ref)
    step = CommitContainer(ref, container_name=uniq)
    with pytest.raises(ConsentRequired):
        step.run(_ctx())
    assert docker_client.images.get(ref).id == image_id
    assert not docker_client.containers.list(all=True, filters={"name": uniq})


def _ctx():
    from labkit.steps.base import RunContext
    from labkit.steps.runner import default_runner

    return RunContext(runner=default_runner())


@pytest.mark.docker
def test_a_failed_build_shows_the_tail_of_its_log(docker_client, busybox_base, tracker, uniq):
    dockerfile = f"FROM {busybox_base}\nRUN echo step-one-{uniq}\nRUN echo boom-{uniq} && false\n"
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(DockerFailed) as info, docker_errors("build", argv=["docker", "build", "."]):
        docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True, forcerm=True)
    text = str(info.value)
    assert f"boom-{uniq}" in text
    assert "non-zero code" in text
    assert "`docker build .` failed" in text
    assert "RUN command failed" in info.value.hint
    assert {c.id for c in docker_client.containers.list(all=True)} <= before
    for image in docker_client.images.list(all=True, filters={"dangling": True}):
        if (image.attrs.get("Parent") or "") and image.id not in tracker.images:
            history = " ".join(h.get("CreatedBy", "") for h in image.history())
            if f"step-one-{uniq}" in history:
                tracker.image(image.id)


# ----------------------------------------------------------------------------------------------
# Real engine: each step runs exactly what it planned (recording runner + recording connector)
# ----------------------------------------------------------------------------------------------
@pytest.mark.docker
def test_engine_check_runs_only_its_probes(docker_client, recorded):
    rec = recorded(EngineCheck())
    assert rec.result.status == "pass", rec.result
    assert ["docker", "--version"] in rec.ran
    assert "version" in rec.sdk.methods()
    assert "info" in rec.sdk.methods()
    assert rec.sdk.mutations() == []


@pytest.mark.docker
def test_build_local_base_runs_as_planned_then_is_already_there(docker_client, tracker, uniq, recorded):
    ref = f"labkit-test/busybox:{uniq}"
    step = BuildLocalBase(ref=ref)
    rec = recorded(step)
    tracker.image(ref)
    assert rec.result.status == "pass", rec.result
    assert rec.ran == step.plan().commands  # busybox --list-full, docker import
    assert [c.method for c in rec.sdk.mutations()] == ["api.import_image"]
    assert docker_client.images.get(ref).labels[dn.LABEL_STEP] == "ch2.docker.base"
    again = recorded(BuildLocalBase(ref=ref))
    assert again.result.status == "pass", again.result
    assert again.result.evidence["already_present"] is True
    assert again.result.evidence["reused"] is True
    assert again.ran == []
    assert again.sdk.mutations() == []


@pytest.mark.docker
def test_hello_runs_the_planned_container(docker_client, busybox_base, recorded):
    step = HelloContainer()
    rec = recorded(step)
    assert rec.result.status == "pass", rec.result
    assert rec.ran == step.plan().commands
    create = rec.sdk.mutations()[0]
    assert create.method == "containers.create"
    assert create.kwargs["environment"] == {"LABKIT_GREETING": GREETING}
    # built once: the container got exactly the labels and -e the plan showed (random id included)
    assert create.kwargs["labels"] == step.call().labels == rec.result.evidence["labels"]
    assert ["-e", f"LABKIT_GREETING={GREETING}"] == step.plan().commands[0][-6:-4]
    assert [c.method for c in rec.sdk.mutations()] == [
        "containers.create",
        "Container.start",
        "Container.remove",
    ]


@pytest.mark.docker
def test_run_image_runs_the_planned_container(docker_client, busybox_base, uniq, recorded):
    step = RunImage(busybox_base, ["echo", uniq], expect=uniq, name=f"{uniq}-run")
    rec = recorded(step)
    assert rec.result.status == "pass", rec.result
    assert rec.ran == step.plan().commands
    assert rec.result.evidence["cli"] == shlex.join(step.plan().commands[0])
    assert not docker_client.containers.list(all=True, filters={"name": f"{uniq}-run"})
