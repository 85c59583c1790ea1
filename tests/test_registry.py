"""Chapter 2b's local registry: the real distribution registry, the real engine, real files.

* ``daemon.json``: the merge keeps unknown keys, makes a backup, refuses invalid JSON and leaves
  the file byte-for-byte untouched, is idempotent (pure logic and the step on real files).
* The registry: ``docker-registry serve`` started and stopped by the steps on a free loopback port
  (no process left behind, checked with psutil); a push round trip through the engine: push, the
  catalog, the tag list, the manifest digest, then the local image removed and pulled back by
  digest with the same image id.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import psutil
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import daemon_json as dj
from labkit.logic import registry as rg
from labkit.steps.registry import (
    AddInsecureRegistry,
    PushImage,
    StartRegistry,
    StopRegistry,
    http,
    manifest_digest,
    registry_answers,
)

pytest_plugins = ["docker_fixtures"]


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted on in English (the default language is Chinese)."""
    with use_lang("en"):
        yield


ORIGINAL = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m"},
    "data-root": "/srv/docker",
    "insecure-registries": ["10.0.0.5:5000"],
    "x-unknown": {"nested": [1, 2, {"ü": "中文"}]},
}


def _others(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != dj.KEY}


# ----------------------------------------------------------------------------------------------
# daemon.json: pure merge
# ----------------------------------------------------------------------------------------------
def test_merge_keeps_every_other_key_in_order_and_appends_once():
    text = json.dumps(ORIGINAL, ensure_ascii=False)
    merge = dj.add_insecure_registry(text, "localhost:32000")
    assert merge.changed
    data = json.loads(merge.text)
    assert list(data) == list(ORIGINAL)
    assert _others(data) == _others(ORIGINAL)
    assert data[dj.KEY] == ["10.0.0.5:5000", "localhost:32000"]
    assert merge.text.endswith("\n") and "中文" in merge.text
    again = dj.add_insecure_registry(merge.text, "localhost:32000")
    assert not again.changed and again.text == merge.text


@pytest.mark.parametrize("text", ["", "   \n", "{}"])
def test_merge_into_an_empty_file(text):
    merge = dj.add_insecure_registry(text, "localhost:32000")
    assert json.loads(merge.text) == {dj.KEY: ["localhost:32000"]}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"log-driver": "json-file",\n  "debug": true,,}', "line 2"),
        ("[1, 2]", "JSON object"),
        ('{"insecure-registries": "localhost:32000"}', "list of strings"),
        ('{"insecure-registries": [5000]}', "list of strings"),
    ],
)
def test_merge_refuses_what_is_not_a_daemon_json(text, words):
    with pytest.raises(InvalidField) as info:
        dj.add_insecure_registry(text, "localhost:32000", "/x/daemon.json")
    assert words in str(info.value) and "untouched" in str(info.value)


@pytest.mark.parametrize("bad", ["http://localhost:32000", "localhost:32000/v2", "", "host:99999", "a b"])
def test_registry_names_are_validated(bad):
    with pytest.raises(InvalidField):
        dj.validate_registry(bad)
    assert dj.validate_registry("10.0.0.0/8") == "10.0.0.0/8"


# ----------------------------------------------------------------------------------------------
# daemon.json: the step on real files
# ----------------------------------------------------------------------------------------------
def test_add_insecure_registry_merges_keeps_a_backup_and_is_idempotent(tmp_path):
    path = tmp_path / "daemon.json"
    original = json.dumps(ORIGINAL, indent=4, ensure_ascii=False)
    path.write_text(original, encoding="utf-8")
    path.chmod(0o640)
    refused = AddInsecureRegistry(daemon_json=path, registry="localhost:32000").execute("auto")
    assert refused.status == "skipped" and refused.evidence["skip_reason"] == "consent"
    assert path.read_text(encoding="utf-8") == original

    step = AddInsecureRegistry(daemon_json=path, registry="localhost:32000", consent=True)
    result, ran = execute_and_match(step)
    assert result.status == "pass", result
    assert ran == []  # a file edit, no command
    assert "systemctl restart docker" in result.message
    backup = Path(result.evidence["backup"])
    assert backup.read_text(encoding="utf-8") == original
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data[dj.KEY] == ["10.0.0.5:5000", "localhost:32000"]
    assert _others(data) == _others(ORIGINAL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not [p for p in tmp_path.iterdir() if ".labkit-tmp" in p.name]

    step = AddInsecureRegistry(daemon_json=path, registry="localhost:32000", consent=True)
    again, _ = execute_and_match(step)
    assert again.status == "pass" and again.evidence["already_present"]
    assert "already present" in again.message
    assert len(list(tmp_path.glob("daemon.json.labkit-bak-*"))) == 1


def test_add_insecure_registry_refuses_invalid_json_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "daemon.json"
    broken = b'{\n  "log-driver": "json-file"\n  "debug": true\n}\n'
    path.write_bytes(broken)
    result, _ = execute_and_match(AddInsecureRegistry(daemon_json=path, consent=True))
    assert result.status == "error", result
    assert "line 3" in result.message
    assert path.read_bytes() == broken
    assert sorted(p.name for p in tmp_path.iterdir()) == ["daemon.json"]


def test_add_insecure_registry_writes_a_practice_copy_first(tmp_path):
    path = tmp_path / "docker" / "daemon.json"
    step = AddInsecureRegistry(daemon_json=path, registry="192.168.1.20:32000", consent=True, sample=True)
    assert str(path) in step.plan().files
    result, _ = execute_and_match(step)
    assert result.status == "pass", result
    assert result.evidence["sample_written"]
    data = json.loads(path.read_text(encoding="utf-8"))
    sample = json.loads(dj.sample_daemon_json())
    assert data == {**sample, dj.KEY: ["192.168.1.20:32000"]}


# ----------------------------------------------------------------------------------------------
# registry logic
# ----------------------------------------------------------------------------------------------
def test_addresses_must_be_loopback_for_labkits_registry():
    assert rg.parse_address("127.0.0.1:32000").base == "http://127.0.0.1:32000/v2/"
    assert rg.parse_address("localhost:5000").port == 5000
    for bad in ("0.0.0.0:32000", "192.168.1.2:5000", "127.0.0.1", "http://127.0.0.1:1/", "x:0"):
        with pytest.raises(InvalidField):
            rg.parse_address(bad)
    assert rg.parse_address("10.1.2.3:32000", loopback_only=False).host == "10.1.2.3"
    assert not rg.needs_insecure_entry("127.0.0.1:32000") and not rg.needs_insecure_entry("localhost:32000")
    assert rg.needs_insecure_entry("10.1.2.3:32000")


def test_config_is_yaml_the_registry_reads():
    config = yaml.safe_load(rg.registry_config("/w/reg storage", rg.parse_address("127.0.0.1:32000")))
    assert config["storage"]["filesystem"]["rootdirectory"] == "/w/reg storage"
    assert config["http"]["addr"] == "127.0.0.1:32000"


def test_target_reference_and_calls():
    reg = rg.parse_address("127.0.0.1:32000")
    assert rg.target_reference("labkit/ailab:latest", reg) == "127.0.0.1:32000/labkit/ailab:latest"
    assert rg.target_reference("labkit/ailab", reg, "ailab", "v1") == "127.0.0.1:32000/ailab:v1"
    push = rg.push_call("127.0.0.1:32000/ailab:v1")
    assert push.cli == ["docker", "push", "127.0.0.1:32000/ailab:v1"]
    assert push.args == ("127.0.0.1:32000/ailab",) and push.kwargs["tag"] == "v1"
    tag = rg.tag_call("labkit/ailab:latest", "127.0.0.1:32000/ailab:v1")
    assert tag.cli == ["docker", "tag", "labkit/ailab:latest", "127.0.0.1:32000/ailab:v1"]
    assert tag.args == ("labkit/ailab:latest", "127.0.0.1:32000/ailab")


def test_push_stream_parser():
    digest = "sha256:" + "ab" * 32
    ok = rg.parse_push_stream(
        [
            {"status": "The push refers to repository [127.0.0.1:32000/ailab]"},
            {"status": "Pushing", "progressDetail": {"current": 1}, "id": "x"},
            "junk",
            {"status": f"v1: digest: {digest} size: 527"},
            {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": 527}},
        ]
    )
    assert ok.digest == digest and ok.size == 527 and not ok.error
    failed = rg.parse_push_stream(
        [{"aux": {"Digest": digest}}, {"errorDetail": {"message": "connection refused"}, "error": "refused"}]
    )
    assert failed.error == "refused" and failed.digest == ""
    assert rg.parse_catalog(b'{"repositories": ["a", 1]}') == ["a"]
    assert rg.parse_catalog(b"not json") == [] and rg.parse_tags(b'{"name": "a", "tags": null}') == []


# ----------------------------------------------------------------------------------------------
# the real registry
# ----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _registry_processes(config: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if str(config) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.fixture
def registry(tmp_path):
    """A real registry on a free loopback port, started by the step; stopped (and checked) after."""
    address = f"127.0.0.1:{_free_port()}"
    root = tmp_path / "registry"
    result, _ = execute_and_match(StartRegistry(root=root, address=address))
    assert result.status == "pass", result
    yield address, root
    stop, _ = execute_and_match(StopRegistry(root=root, address=address))
    assert stop.status == "pass", stop
    assert not _registry_processes(root / "config.yml")


def test_start_and_stop_the_registry_leaves_no_process(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    root = tmp_path / "reg"
    step = StartRegistry(root=root, address=address)
    result, ran = execute_and_match(step)
    assert result.status == "pass", result
    assert ran == [rg.serve_argv(str(root / "config.yml"))]
    pid = int((root / "registry.pid").read_text())
    assert psutil.Process(pid).cmdline()[:2] == ["docker-registry", "serve"]
    assert result.evidence["repositories"] == []

    again, ran = execute_and_match(StartRegistry(root=root, address=address))
    assert again.status == "pass" and again.evidence["already_present"] and ran == []
    assert again.evidence["pid"] == pid

    stopped, _ = execute_and_match(StopRegistry(root=root, address=address))
    assert stopped.status == "pass", stopped
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not _registry_processes(root / "config.yml")
    assert registry_answers(rg.parse_address(address)) is None
    assert not (root / "registry.pid").exists()

    twice, _ = execute_and_match(StopRegistry(root=root, address=address))
    assert twice.status == "pass" and twice.evidence["already_present"]


def test_a_port_in_use_is_reported_and_nothing_is_left(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        result, _ = execute_and_match(StartRegistry(root=tmp_path, address=address))
    assert result.status == "error", result
    assert "ss -ltnp" in result.message
    assert not _registry_processes(tmp_path / "config.yml")


def test_stop_leaves_a_registry_it_did_not_start_alone(registry, tmp_path):
    address, _root = registry
    other = StopRegistry(root=tmp_path / "elsewhere", address=address).execute("live")
    assert other.status in ("skipped", "error") and "labkit" in other.message
    assert registry_answers(rg.parse_address(address)) is not None


@pytest.mark.docker
def test_push_round_trip_catalog_digest_and_pull_by_digest(
    registry, docker_client, unlabelled_image, uniq, recorded
):
    address, _root = registry
    source = f"labkit-test/{uniq}:v1"
    image_id = unlabelled_image(source, content=uniq.encode())
    step = PushImage(source=source, address=address, name=f"course/{uniq}", tag="v1")
    target = f"{address}/course/{uniq}:v1"
    assert step.target == target

    run = recorded(step)
    assert run.result.status == "pass", run.result
    assert run.ran == [["docker", "tag", source, target], ["docker", "push", target]]
    digest = run.result.evidence["digest"]
    assert digest.startswith("sha256:") and run.result.evidence["registry_digest"] == digest
    assert f"course/{uniq}" in run.result.evidence["catalog"] and run.result.evidence["tags"] == ["v1"]
    reg = rg.parse_address(address)
    assert manifest_digest(reg, f"course/{uniq}", "v1") == digest
    assert rg.parse_tags(http(reg.tags_url(f"course/{uniq}")).body) == ["v1"]

    again = recorded(PushImage(source=source, address=address, name=f"course/{uniq}", tag="v1"))
    assert again.result.status == "pass" and again.result.evidence["already_present"] and again.ran == []

    # remove the image locally (both names), pull it back by digest: the same image id
    docker_client.images.remove(target)
    docker_client.images.remove(source)
    import docker.errors

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_id)
    pulled = docker_client.images.pull(f"{address}/course/{uniq}@{digest}")
    assert pulled.id == image_id
    assert f"{address}/course/{uniq}@{digest}" in pulled.attrs["RepoDigests"]
    docker_client.images.remove(pulled.id, force=True)


@pytest.mark.docker
def test_push_over_a_tag_holding_other_content_needs_consent(registry, unlabelled_image, uniq, recorded):
    address, _root = registry
    first, second = f"labkit-test/{uniq}:a", f"labkit-test/{uniq}:b"
    unlabelled_image(first, content=b"first\n")
    unlabelled_image(second, content=b"second\n")
    pushed = recorded(PushImage(source=first, address=address, name=uniq, tag="v1"))
    assert pushed.result.status == "pass", pushed.result
    reg = rg.parse_address(address)

    refused = recorded(PushImage(source=second, address=address, name=uniq, tag="v1"), "auto")
    assert refused.result.status == "skipped" and refused.result.evidence["skip_reason"] == "consent"
    assert pushed.result.evidence["digest"] in refused.result.message
    assert manifest_digest(reg, uniq, "v1") == pushed.result.evidence["digest"]

    replaced = recorded(PushImage(source=second, address=address, name=uniq, tag="v1", overwrite=True))
    assert replaced.result.status == "pass", replaced.result
    assert replaced.result.evidence["digest"] != pushed.result.evidence["digest"]
    assert manifest_digest(reg, uniq, "v1") == replaced.result.evidence["digest"]


@pytest.mark.docker
def test_push_without_a_registry_is_planned_with_the_reason(uniq):
    address = f"127.0.0.1:{_free_port()}"
    result = PushImage(source="labkit/busybox:local", address=address).execute("auto")
    assert result.status == "skipped" and result.evidence["skip_reason"] == "host"
    assert address in result.message


def test_no_registry_process_survives_the_module():
    """Belt and braces: nothing this module started under pytest's tmp folders still runs."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [
            p
            for p in psutil.process_iter(["cmdline", "ppid", "status"])
            if (p.info["cmdline"] or [])[:1] == ["docker-registry"]
            and p.info["ppid"] == os.getpid()
            and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        if not left:
            break
        time.sleep(0.1)
    assert not left


# ----------------------------------------------------------------------------------------------
# properties: outside input never raises anything but the documented error
# ----------------------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=60), _JSON.map(json.dumps)))
def test_merge_of_any_text_is_a_merge_or_the_refusal(text):
    try:
        merge = dj.add_insecure_registry(text, "localhost:32000")
    except InvalidField as exc:
        assert exc.field == "daemon_json"
        return
    data = json.loads(merge.text)
    assert "localhost:32000" in data[dj.KEY]
    if text.strip():
        assert _others(data) == _others(json.loads(text))


@settings(max_examples=150, deadline=None)
@given(st.lists(_JSON, max_size=6), st.binary(max_size=40))
def test_push_stream_and_listing_parsers_take_anything(items, body):
    outcome = rg.parse_push_stream(items)
    assert outcome.digest == "" or rg.valid_digest(outcome.digest)
    assert not (outcome.error and outcome.digest)
    for parse in (rg.parse_catalog, rg.parse_tags):
        assert all(isinstance(x, str) for x in parse(body))
        assert all(isinstance(x, str) for x in parse(json.dumps(items)))
