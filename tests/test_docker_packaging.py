"""Chapter 2a, course 2.4.5 / 2.4.6 against the REAL engine: commit → save → load → run, cleanup.

The round trip removes the image between save and load, so "same image id after load" is proved
by the file, not by the engine still holding the original.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from labkit.logic import docker as dk
from labkit.logic import docker_names as dn
from labkit.steps.docker.cleanup import CleanupLabkit, DeleteEverything
from labkit.steps.docker.packaging import CommitContainer, LoadImage, SaveImage
from labkit.steps.docker.run import RunImage

pytest_plugins = ["docker_fixtures"]
pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


@pytest.fixture
def committed(docker_client, busybox_base, tracker, uniq):
    """A labkit-committed image holding /labkit-note; returns (ref, note, commit result)."""
    ref = f"labkit-test/{uniq}:v1"
    note = f'note {uniq}: it\'s "$HOME" `id` ; 中文'  # quotes and $: nothing is shell-quoted
    result = CommitContainer(ref, container_name=f"{uniq}-c", note=note).execute("live")
    assert result.status == "pass", result
    tracker.image(ref)
    return ref, note, result


def test_commit_labels_the_image_and_removes_its_container(docker_client, committed, uniq):
    ref, _, result = committed
    ev = result.evidence
    assert ev["layers"] == ev["base_layers"] + 1
    assert ev["owned_by_labkit"]
    labels = docker_client.images.get(ref).labels
    assert labels[dn.LABEL_STEP] == "ch2.docker.commit"
    assert labels[dn.LABEL_REF] == ref
    assert labels[dn.LABEL_OBJECT].startswith("image:")
    assert not docker_client.containers.list(all=True, filters={"name": f"{uniq}-c"})


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar"])
def test_save_load_round_trip_keeps_the_image_id(docker_client, committed, tracker, tmp_path, suffix):
    ref, note, commit = committed
    original = commit.evidence["image_id"]
    path = tmp_path / f"ailab-image{suffix}"
    progress: list[float] = []
    saved = SaveImage(ref, path).execute("live", on_progress=progress.append)
    assert saved.status == "pass", saved
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == saved.evidence["sha256"]
    assert dn.archive_kind(data[:512]) == ("gzip" if suffix == ".tar.gz" else "tar")
    if suffix == ".tar.gz":
        assert len(gzip.decompress(data)) == saved.evidence["tar_bytes"]
    assert progress
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    side = dn.parse_sidecar(Path(str(path) + dn.SIDECAR_SUFFIX).read_text())
    assert side["image_id"] == original
    assert ref in side["tags"]

    docker_client.images.remove(ref)  # gone from the engine: only the file can bring it back
    assert not [i for i in docker_client.images.list() if i.id == original]

    loaded = LoadImage(path).execute("live")
    assert loaded.status == "pass", loaded
    tracker.image(ref)
    assert loaded.evidence["image_ids"] == [original] == [docker_client.images.get(ref).id]
    assert loaded.evidence["expected_id"] == original
    assert ref in loaded.evidence["loaded"]

    ran = RunImage(ref, ["cat", "/labkit-note"], expect=note).execute("live")
    assert ran.status == "pass", ran
    assert ran.evidence["stdout"].strip() == note
    assert ran.evidence["exit_code"] == 0


def test_files_interoperate_with_the_docker_cli(docker_client, committed, tracker, tmp_path):
    """labkit's .tar.gz loads with `docker load`; the CLI's `docker save | gzip` loads with labkit."""
    ref, _, commit = committed
    mine = tmp_path / "labkit.tar.gz"
    assert SaveImage(ref, mine).execute("live").status == "pass"
    docker_client.images.remove(ref)
    cli = subprocess.run(["docker", "load", "-i", str(mine)], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert dn.parse_load_output(cli.stdout.splitlines()) == [ref]
    assert docker_client.images.get(ref).id == commit.evidence["image_id"]

    theirs = tmp_path / "cli.tar.gz"
    with open(theirs, "wb") as out:
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
        gz = subprocess.run(["gzip", "-6"], stdin=save.stdout, stdout=out, timeout=120, check=True)
        save.stdout.close()
        assert save.wait(timeout=60) == 0
        assert gz.returncode == 0
    docker_client.images.remove(ref)
    loaded = LoadImage(theirs, expect_id=commit.evidence["image_id"]).execute("live")
    tracker.image(ref)
    assert loaded.status == "pass", loaded
    assert loaded.evidence["sidecar"] is None
    assert loaded.evidence["archive_kind"] == "gzip"


def test_a_zip_is_refused_with_the_seed_lesson(committed, tmp_path):
    ref, _, _ = committed
    tar = tmp_path / "ailab-image.tar"
    assert SaveImage(ref, tar).execute("live").status == "pass"
    zipped = tmp_path / "ailab-image.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(tar, "ailab-image.tar")
    result = LoadImage(zipped).execute("live")
    assert result.status == "error"
    assert result.evidence["field"] == "path"
    assert "zip archive" in result.message
    assert "unzip" in result.message
    assert SaveImage(ref, tmp_path / "x.zip").execute("plan").status == "error"  # and never written as zip


def test_a_damaged_file_is_caught(docker_client, committed, tmp_path):
    ref, _, _ = committed
    path = tmp_path / "a.tar.gz"
    assert SaveImage(ref, path).execute("live").status == "pass"
    sidecar = Path(str(path) + dn.SIDECAR_SUFFIX)
    data = json.loads(sidecar.read_text())
    data["sha256"] = "0" * 64  # the file no longer matches what was recorded at save time
    sidecar.write_text(json.dumps(data))
    result = LoadImage(path).execute("live")
    assert result.status == "fail"
    assert "sha256" in result.message

    cut = tmp_path / "cut.tar"
    assert SaveImage(ref, cut).execute("live").status == "pass"
    with open(cut, "r+b") as fh:
        fh.truncate(os.path.getsize(cut) // 2)
    os.unlink(str(cut) + dn.SIDECAR_SUFFIX)
    truncated = LoadImage(cut).execute("live")
    assert truncated.status == "error"
    assert "Traceback" not in truncated.message
    assert "docker load" in truncated.message


def test_save_and_load_again_verify_the_file_and_the_image_id(
    docker_client, committed, tracker, tmp_path, monkeypatch
):
    monkeypatch.setenv("LABKIT_LANG", "en")
    ref, note, commit = committed
    path = tmp_path / "again.tar.gz"
    assert SaveImage(ref, path).execute("live").status == "pass"
    before = path.stat()
    saved = SaveImage(ref, path).execute("live")
    assert saved.status == "pass", saved.message
    assert saved.evidence["already_present"] is True
    assert "sha256 matches its sidecar" in saved.evidence["verified_by"]
    assert saved.evidence["image_id"] == commit.evidence["image_id"]
    assert path.stat().st_ino == before.st_ino and not list(tmp_path.glob("*.labkit-bak-*"))

    loaded = LoadImage(path).execute("live")  # the image never left: docker load would change nothing
    assert loaded.status == "pass", loaded.message
    assert loaded.evidence["already_present"] is True
    assert loaded.evidence["image_ids"] == [commit.evidence["image_id"]]
    assert loaded.message.startswith("already present, verified (the file's sha256 matches its sidecar; ")

    # the tag now names another image: the file differs from what saving would write
    other = CommitContainer(ref, container_name=f"{commit.evidence['container_name']}-2", note=note + "!")
    assert other.execute("live").status == "pass"
    tracker.image(ref)
    refused = SaveImage(ref, path).execute("auto")
    assert (refused.status, refused.evidence["skip_reason"]) == ("skipped", "consent")
    assert f"the file holds image {commit.evidence['image_id'][7:19]}" in refused.message
    assert "pass overwrite=True" in refused.message  # Python names the keyword (a panel: its checkbox)
    assert path.stat().st_ino == before.st_ino
    reloaded = LoadImage(path).execute("live")  # the tag moved: a real load puts it back
    assert reloaded.status == "pass" and "already_present" not in reloaded.evidence, reloaded.message
    assert docker_client.images.get(ref).id == commit.evidence["image_id"]


def test_save_never_overwrites_without_consent(committed, tmp_path):
    ref, _, _ = committed
    path = tmp_path / "a.tar.gz"
    path.write_bytes(b"precious")
    refused = SaveImage(ref, path).execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "ConsentRequired"
    assert path.read_bytes() == b"precious"
    allowed = SaveImage(ref, path, overwrite=True).execute("live")
    assert allowed.status == "pass", allowed
    backups = list(tmp_path.glob("a.tar.gz.labkit-bak-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes() == b"precious"
    assert not list(tmp_path.glob(".*labkit-tmp*"))  # no temporary left behind


def test_cleanup_removes_only_what_labkit_created(
    docker_client, busybox_base, committed, tracker, uniq, unlabelled_image
):
    ref, _, commit = committed
    # a student's own image: no labels at all
    own = f"{uniq}/mine:1"
    own_id = unlabelled_image(own)
    # a student's container from the labkit image, committed: both merely INHERIT labkit's labels
    student = docker_client.containers.create(ref, ["sleep", "1"], name=f"{uniq}-student")
    tracker.container(student.id)
    derived = student.commit(repository=f"{uniq}/derived", tag="1")
    tracker.image(derived.id)
    assert dn.is_labkit_object(derived.labels)  # the label really is inherited

    # plan() reads nothing: which objects would go is listed by the run, which stops without consent
    plan = CleanupLabkit().plan()
    assert plan.commands == []
    assert dk.list_labelled_argv("image") in plan.probes
    listing = CleanupLabkit().execute("auto")
    assert listing.status == "skipped"
    assert listing.evidence["error"] == "ConsentRequired"
    text = listing.message
    assert f"image {commit.evidence['image_id'][7:19]} {ref}" in text
    kept = text.split("kept: inherited the labels")[1]
    assert f"{uniq}/derived:1" in kept
    assert f"{uniq}-student" in kept
    assert own not in text
    assert "commands" not in listing.evidence  # nothing removed
    assert docker_client.images.get(ref)

    targets = [commit.evidence["image_id"]]  # only this test's objects: the engine may be shared
    refused = CleanupLabkit(ids=targets).execute("live")
    assert refused.status == "error"
    assert refused.evidence["error"] == "ConsentRequired"
    assert ref in refused.message
    assert docker_client.images.get(ref)

    student.remove(force=True)  # else it pins the image (cleanup would report it as kept, in use)
    done = CleanupLabkit(consent=True, ids=targets).execute("live")
    assert done.status == "pass", done
    assert not [i for i in docker_client.images.list() if commit.evidence["image_id"] == i.id]
    assert docker_client.images.get(own).id == own_id
    assert docker_client.images.get(f"{uniq}/derived:1").id == derived.id
    assert docker_client.images.get(busybox_base)  # not in ids: untouched


def test_cleanup_keeps_a_tag_a_student_added(docker_client, committed, tracker, uniq):
    ref, _, _ = committed
    image = docker_client.images.get(ref)
    image.tag(f"{uniq}/keep", "me")
    done = CleanupLabkit(consent=True, ids=[image.id]).execute("live")
    assert done.status == "pass"
    assert done.evidence["kept"]
    remaining = docker_client.images.get(image.id)
    assert remaining.tags == [f"{uniq}/keep:me"]


@pytest.mark.parametrize("confirm", ["", "delete all", "DELETE ALL ", "yes", "DELETE  ALL"])
def test_delete_everything_refuses_without_the_exact_phrase(docker_client, busybox_base, confirm):
    before = sorted(i.id for i in docker_client.images.list())
    result = DeleteEverything(confirm).execute("live")
    assert result.status == "error"
    assert result.evidence["error"] == "ConsentRequired"
    assert "DELETE ALL" in result.message
    assert sorted(i.id for i in docker_client.images.list()) == before


def test_delete_everything_shows_the_course_commands_as_text_with_a_warning():
    plan = DeleteEverything().plan()
    text = str(plan)
    for command in dn.NUKE_COMMANDS:
        assert command in text
    assert plan.commands == []  # nothing runnable: the $(...) forms are text only
    assert "WARNING" in plan.reason or "警告" in plan.reason
    assert "CleanupLabkit" in text
    assert dn.NUKE_PHRASE in text


def test_cancelling_a_save_leaves_no_file_behind(committed, tmp_path):
    import threading

    ref, _, _ = committed
    path = tmp_path / "a.tar"
    cancel = threading.Event()
    result = SaveImage(ref, path, chunk_size=4096).execute(
        "live", on_progress=lambda f: cancel.set(), cancel=cancel
    )
    assert result.status == "skipped"
    assert result.evidence["skip_reason"] == "stopped"
    assert list(tmp_path.iterdir()) == []  # neither the file, nor its sidecar, nor a temporary


def test_debian_base_plan_uses_the_hosts_mirror():
    from labkit.steps.docker.local_base import BuildLocalBase, _host_debian_mirror, debootstrap_argv

    argv = debootstrap_argv("/tmp/r", "http://deb.debian.org/debian")
    assert argv[:3] == ["debootstrap", "--variant=minbase", "--include=python3,ca-certificates"]
    assert argv[-3:] == ["bookworm", "/tmp/r", "http://deb.debian.org/debian"]
    mirror, why = _host_debian_mirror(None)
    assert mirror.startswith("http")
    assert why
    assert _host_debian_mirror("http://mirrors.tuna.tsinghua.edu.cn/debian/")[0] == (
        "http://mirrors.tuna.tsinghua.edu.cn/debian"
    )
    plan = BuildLocalBase("debian").plan()
    assert [c[:2] for c in plan.commands] == [["docker", "import"]]
    assert plan.commands[-1][-1] == dn.LOCAL_BASES["debian"]
    # debootstrap's target is a temporary directory made while running: a template in the notes
    assert any("debootstrap --variant=minbase" in n and "<temporary dir>/rootfs" in n for n in plan.notes)
    bad = BuildLocalBase("alpine").execute("plan")
    assert bad.status == "error"
    assert bad.evidence["field"] == "kind"


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("LABKIT_DOCKER_DEBIAN") != "1" or os.geteuid() != 0,
    reason="debootstraps Debian (~30-60 s, root, a Debian mirror): set LABKIT_DOCKER_DEBIAN=1 to run",
)
def test_debian_base_runs_python(docker_client, tracker, uniq):
    from labkit.steps.docker.local_base import BuildLocalBase

    ref = f"labkit-test/debian:{uniq}"
    result = BuildLocalBase("debian", ref=ref).execute("live")
    assert result.status == "pass", result
    tracker.image(ref)
    assert result.evidence["layers"] == 1
    assert result.evidence["size"] < 250 * 2**20
    ran = RunImage(ref, ["python3", "-c", "import ssl, sys; print(sys.version_info[:2])"]).execute("live")
    assert ran.status == "pass" and ran.evidence["stdout"].strip() == "(3, 11)", ran


# ----------------------------------------------------------------------------------------------
# Each step runs exactly what it planned (recording runner + recording connector)
# ----------------------------------------------------------------------------------------------
def test_commit_runs_as_planned_and_replaces_its_own_stale_container(
    docker_client, busybox_base, tracker, uniq, recorded
):
    ref = f"labkit-test/{uniq}:rec"
    name = f"{uniq}-rec"
    kept = CommitContainer(ref, container_name=name, keep_container=True)
    first = recorded(kept)
    tracker.image(ref)
    assert first.result.status == "pass", first.result
    assert first.ran == kept.plan().commands  # run -d, exec, commit; the container is kept
    tracker.container(first.result.evidence["container_id"])
    assert [c.method for c in first.sdk.mutations()] == [
        "containers.create",
        "Container.start",
        "Container.exec_run",
        "Container.commit",
    ]
    # the same commit again: the image is verified, nothing is committed (the kept container stays)
    same = recorded(CommitContainer(ref, container_name=name, keep_container=True))
    assert same.result.status == "pass", same.result
    assert same.result.evidence["already_present"] is True
    assert same.result.evidence["image_id"] == first.result.evidence["image_id"]
    assert same.ran == [] and not same.sdk.mutations()
    # another note: a second commit, which finds the container the first one kept: labkit's, so
    # removed with the planned argv
    step = CommitContainer(ref, container_name=name, note="a second note")
    second = recorded(step)
    tracker.image(ref)
    assert second.result.status == "pass", second.result
    assert "already_present" not in second.result.evidence
    assert second.result.evidence["image_id"] != first.result.evidence["image_id"]
    remove = ["docker", "rm", "-f", name]
    assert second.ran == [remove, *step.plan().commands]
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_save_and_load_run_as_planned(docker_client, committed, tracker, tmp_path, recorded):
    ref, _, _ = committed
    path = tmp_path / "rec.tar.gz"
    saved = recorded(SaveImage(ref, path))
    assert saved.result.status == "pass", saved.result
    assert saved.ran == [["docker", "save", ref]]
    assert [c.method for c in saved.sdk.mutations()] == ["Image.save"]
    assert saved.sdk.mutations()[0].kwargs["named"] == ref
    docker_client.images.remove(ref)
    loaded = recorded(LoadImage(path))
    tracker.image(ref)
    assert loaded.result.status == "pass", loaded.result
    assert loaded.ran == [["docker", "load", "-i", str(path)]]
    assert [c.method for c in loaded.sdk.mutations()] == ["api.load_image"]
    assert "images.get" in loaded.sdk.methods()  # read back, not recorded
    plain = recorded(SaveImage(ref, tmp_path / "rec.tar"))
    assert plain.ran == [["docker", "save", "-o", str(tmp_path / "rec.tar"), ref]]


def test_cleanup_removals_have_the_planned_shape(docker_client, committed, recorded):
    ref, _, commit = committed
    image_id = commit.evidence["image_id"]
    rec = recorded(CleanupLabkit(consent=True, ids=[image_id]), templates=dk.CLEANUP_TEMPLATES)
    assert rec.result.status == "pass", rec.result
    assert rec.ran == [["docker", "rmi", ref], ["docker", "rmi", image_id]]
    assert [c.method for c in rec.sdk.mutations()] == ["images.remove", "images.remove"]
    assert "containers.list" in rec.sdk.methods()  # the listing is a read: not recorded
    assert not [i for i in docker_client.images.list() if i.id == image_id]


def test_cleanup_without_consent_lists_and_runs_nothing(committed, recorded):
    ref, _, commit = committed
    rec = recorded(CleanupLabkit(ids=[commit.evidence["image_id"]]), "auto", templates=dk.CLEANUP_TEMPLATES)
    assert rec.result.status == "skipped"
    assert ref in rec.result.message
    assert rec.ran == []
    assert rec.sdk.mutations() == []


def test_delete_everything_runs_the_planned_shape(
    docker_client, busybox_base, tracker, uniq, unlabelled_image, recorded
):
    """For real, but on a sandboxed view of the engine: it sees (and may remove) only this test's objects."""
    container = docker_client.containers.create(busybox_base, ["true"], name=f"{uniq}-nuke")
    tracker.container(container.id)
    image_id = unlabelled_image(f"{uniq}/nuke:1")
    rec = recorded(
        DeleteEverything(dn.NUKE_PHRASE), templates=dk.NUKE_TEMPLATES, visible={container.id, image_id}
    )
    assert rec.result.status == "pass", rec.result
    assert rec.ran == [["docker", "rm", "-f", container.id], ["docker", "rmi", "-f", image_id]]
    assert not docker_client.containers.list(all=True, filters={"id": container.id})
    assert not [i for i in docker_client.images.list() if i.id == image_id]
    assert docker_client.images.get(busybox_base)  # outside the sandbox: untouched
