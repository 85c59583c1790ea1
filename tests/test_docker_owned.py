"""Issue 9, 5b: Docker cleanup owns only what labkit created, not what inherited its labels.

Before, cleanup took "the image with the fewest layers among those with the same
``org.labkit.object``" for labkit's: once labkit's base was gone, a student's image built FROM it
(same labels, inherited) was the only one left and was removed as labkit's. Now labkit keeps a
record of the ids it created (:mod:`labkit.steps.docker.owned`) and cleanup removes only those.
Real engine, real BuildKit build by "the student" (no parent link, so the base can really go).
"""

from __future__ import annotations

import contextlib

import pytest

from labkit.logic import docker_names as dn
from labkit.steps.docker.cleanup import CleanupLabkit
from labkit.steps.docker.local_base import BuildLocalBase
from labkit.steps.docker.owned import created_by_labkit, record_path, remember_created

pytest_plugins = ["docker_fixtures"]


@pytest.fixture
def own_record(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_STATE", str(tmp_path / "state"))
    return record_path()


def _student_image(client, base: str, tag: str | None, tmp_path) -> bytes:
    """A student's ``FROM base`` + a label image, saved to a tar and removed (so that the base can
    go, as with BuildKit, which records no parent); the tar, to be loaded back later."""
    ctx = tmp_path / "student"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {base}\nLABEL student=yes\n", encoding="utf-8")
    image, _ = client.images.build(path=str(ctx), rm=True)
    if tag:
        image.tag(tag)
    data = b"".join(client.images.get(tag or image.id).save(named=bool(tag)))
    client.images.remove(tag or image.id, force=True)
    if tag:
        with contextlib.suppress(Exception):
            client.images.remove(image.id)
    return data


def test_a_students_image_on_a_removed_labkit_base_is_not_labkits(
    docker_client, tracker, uniq, tmp_path, own_record
):
    base_ref = f"{uniq}/base:1"
    built = BuildLocalBase(ref=base_ref).execute("live")
    assert built.status == "pass", built.message
    base_id = tracker.image(base_ref)
    assert (dn.bare_id(base_id), built.evidence["labels"][dn.LABEL_OBJECT]) in created_by_labkit()

    tars = [_student_image(docker_client, base_ref, tag, tmp_path) for tag in (None, f"{uniq}/mine:1")]

    gone = CleanupLabkit(consent=True, ids=[base_id]).execute("live")
    assert gone.status == "pass", gone.message
    assert base_id not in {i.id for i in docker_client.images.list(all=True)}

    untagged, tagged = (docker_client.images.load(t)[0].id for t in tars)  # the student's images
    tracker.image(untagged)
    tracker.image(tagged)
    assert not docker_client.images.get(untagged).tags
    for child in (untagged, tagged):  # the labkit labels really are inherited, object id included
        labels = docker_client.images.get(child).labels
        assert labels[dn.LABEL_OBJECT] == built.evidence["labels"][dn.LABEL_OBJECT]

    listing = CleanupLabkit(ids=[untagged, tagged]).execute("auto")
    assert listing.status == "pass", listing.message  # nothing of labkit's left to remove
    kept = " ".join(listing.evidence["lookalike_kept"])
    assert dn.short_id(untagged) in kept and dn.short_id(tagged) in kept
    done = CleanupLabkit(consent=True, ids=[untagged, tagged]).execute("live")
    assert done.status == "pass", done.message
    assert done.evidence["removed"] == []
    assert docker_client.images.get(untagged).id == untagged
    assert docker_client.images.get(tagged).id == tagged


def test_labels_alone_do_not_make_an_object_labkits(docker_client, tracker, uniq, own_record, tmp_path):
    """An image that carries labkit's labels (even its own object id) but is not in the record."""
    built = BuildLocalBase(ref=f"{uniq}/base:2").execute("live")
    assert built.status == "pass", built.message
    base_id = tracker.image(f"{uniq}/base:2")
    own_record.unlink()  # as on another account, or made before labkit kept a record
    listing = CleanupLabkit(ids=[base_id]).execute("auto")
    assert listing.status == "pass"
    assert dn.short_id(base_id) in " ".join(listing.evidence["lookalike_kept"])
    remember_created(base_id, built.evidence["labels"])
    again = CleanupLabkit(ids=[base_id]).execute("auto")
    assert again.status == "skipped" and again.evidence["error"] == "ConsentRequired"  # now it is
