"""Seafile as a SaaS example (course 4.4): the compose project, validated by the REAL compose tool.

Tools: Debian's ``docker-compose`` 1.29 (``config -q``) and the Docker engine (image and container
reads). No registry is reachable here, so ``up`` is planned with the ``docker pull`` lines and the
HTTP health check is planned too; neither ran against a real Seafile in this suite.
Run with ``flock /work/wt/docker.lock`` (the Docker tests share one engine).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import seafile as sf
from labkit.steps.seafile import (
    ComposeDown,
    ComposeUp,
    SeafileHealth,
    ValidateCompose,
    WriteCompose,
    compose_v2,
    port_free,
)

pytest_plugins = ["docker_fixtures"]

needs_compose = pytest.mark.skipif(
    compose_v2() is None, reason="no compose tool (apt-get install docker-compose)"
)


@pytest.fixture(autouse=True)
def _english():
    with use_lang("en"):
        yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _secrets(folder: Path) -> list[str]:
    values = sf.parse_env((folder / "seafile" / ".env").read_text())
    assert set(values) == set(sf.SECRET_VARS) and all(len(v) >= 24 for v in values.values())
    return list(values.values())


def _assert_no_secret(secrets: list[str], *things: object) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, ensure_ascii=False, default=str)
        for value in secrets:
            assert value not in text


# -- pure ---------------------------------------------------------------------------------------------
def test_compose_text_references_passwords_as_variables(tmp_path):
    spec = sf.build_spec(
        str(tmp_path), http_port=8080, hostname="files.lab.example", admin_email="t@lab.example"
    )
    text = sf.compose_text(spec)
    assert "${SEAFILE_DB_ROOT_PASSWORD}" in text and "${SEAFILE_ADMIN_PASSWORD}" in text
    for var in (
        "DB_HOST",
        "DB_ROOT_PASSWD",
        "MYSQL_ROOT_PASSWORD",
        "SEAFILE_ADMIN_EMAIL",
        "SEAFILE_SERVER_HOSTNAME",
    ):
        assert f"{var}:" in text
    assert '"8080:80"' in text
    assert f'"{tmp_path}/seafile-data/db:/var/lib/mysql"' in text
    secrets = sf.new_secrets()
    assert sf.parse_env(sf.env_text(secrets)) == secrets
    assert sf.mask(f"x {secrets['SEAFILE_ADMIN_PASSWORD']} y", list(secrets.values())) == "x *** y"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"http_port": 0}, "http_port"),
        ({"http_port": "80000"}, "http_port"),
        ({"hostname": "bad host"}, "hostname"),
        ({"admin_email": "admin"}, "admin_email"),
        ({"data_dir": "../outside"}, "data_dir"),
        ({"data_dir": "/srv/seafile"}, "data_dir"),
        ({"data_dir": "."}, "data_dir"),
        ({"seafile_image": "Seafile:latest"}, "seafile_image"),
        ({"time_zone": "Asia/Shang hai"}, "time_zone"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(tmp_path, fields, field):
    with pytest.raises(InvalidField) as info:
        sf.build_spec(str(tmp_path), **fields)
    assert info.value.field == field
    result = WriteCompose(tmp_path, **fields).execute("auto")
    assert result.status == "error" and result.evidence["field"] == field
    assert not (tmp_path / "seafile").exists()


@given(
    port=st.one_of(st.integers(-10, 70000), st.text(max_size=6)),
    hostname=st.text(max_size=30),
    data_dir=st.text(max_size=20),
)
def test_spec_findings_never_raise_and_name_fields(port, hostname, data_dir):
    fields = {"folder": "/work/f", "http_port": port, "hostname": hostname, "data_dir": data_dir}
    fields.update(admin_email="a@b.example", time_zone="UTC", **sf.DEFAULT_IMAGES)
    found = sf.spec_findings(fields)
    assert {f.field for f in found} <= {"http_port", "hostname", "data_dir"}
    if not any(f.severity == "error" for f in found):
        spec = sf.build_spec(**fields)
        assert sf.inside("/work/f", spec.data_path)


def test_the_tools_complaints_become_findings():
    v1 = (
        "ERROR: The Compose file './docker-compose.yml' is invalid because:\n"
        "Unsupported config option for services.db: 'restrt'\n"
        "services.seafile.ports contains an invalid type, it should be a number, or an object\n"
    )
    found = sf.parse_config_errors(v1)
    assert [f.field for f in found] == ["services.db", "services.seafile.ports"]
    yaml_error = (
        'yaml.scanner.ScannerError: mapping values are not allowed here\n  in "./x.yml", line 6, column 16'
    )
    (one,) = sf.parse_config_errors(yaml_error)
    assert one.field == "compose" and one.line == 6
    assert one.message.startswith("mapping values are not allowed here")  # no Python class name


# -- the step with the real tool ------------------------------------------------------------------------
@needs_compose
def test_write_then_validate_with_the_real_compose_tool_and_no_password_anywhere(tmp_path, docker_client):
    port = _free_port()
    fields = {"http_port": port}
    written, ran = execute_and_match(WriteCompose(tmp_path, **fields), mode="auto")
    assert written.status == "pass", written.message
    assert ran == []
    env = tmp_path / "seafile" / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    secrets = _secrets(tmp_path)
    compose_text = (tmp_path / "seafile" / "docker-compose.yml").read_text()
    assert written.evidence["secrets_generated"] == list(sf.SECRET_VARS)

    step = ValidateCompose(tmp_path, **fields)
    checked, ran = execute_and_match(step, mode="auto")
    assert checked.status == "pass", checked.message
    assert ran == [sf.config_argv(step.spec())]
    assert checked.evidence["returncode"] == 0 and checked.evidence["tool_findings"] == []

    plans = [s.plan().to_payload() for s in (WriteCompose(tmp_path, **fields), step)]
    _assert_no_secret(secrets, compose_text, plans, written.to_payload(), checked.to_payload(), str(written))
    with use_lang("zh"):
        again = WriteCompose(tmp_path, **fields).execute("auto")
    _assert_no_secret(secrets, again.to_payload(), str(again))


@needs_compose
def test_second_write_verifies_keeps_passwords_and_refuses_a_differing_file(tmp_path):
    first = WriteCompose(tmp_path, http_port=_free_port()).execute("auto")
    assert first.status == "pass"
    secrets = _secrets(tmp_path)
    port = first.evidence["http_port"]
    again = WriteCompose(tmp_path, http_port=port).execute("auto")
    assert again.status == "pass" and again.evidence["already_present"] is True
    assert "already present, verified" in again.message

    changed = WriteCompose(tmp_path, http_port=port, hostname="other.example").execute("auto")
    assert changed.status == "skipped" and changed.evidence["skip_reason"] == "consent"
    assert changed.evidence["keyword"] == "overwrite"
    assert "seafile.local" in (tmp_path / "seafile" / "docker-compose.yml").read_text()

    replaced = WriteCompose(tmp_path, http_port=port, hostname="other.example", overwrite=True).execute(
        "auto"
    )
    assert replaced.status == "pass"
    assert Path(replaced.evidence["backup"]).read_text().count("seafile.local") == 1
    assert _secrets(tmp_path) == secrets  # the database password did not change under the database
    assert replaced.evidence["secrets_kept"] == list(sf.SECRET_VARS)


def _hand_edit(tmp_path: Path, old: str, new: str) -> None:
    path = tmp_path / "seafile" / "docker-compose.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@needs_compose
@pytest.mark.parametrize(
    ("old", "new", "field", "by"),
    [
        ('"${SEAFILE_ADMIN_PASSWORD}"', '"${SEAFILE_ADMIN_PASSWORD"', "services.seafile.environment", "tool"),
        ("    restart: unless-stopped\n  memcached:", "    restrt: no\n  memcached:", "services.db", "tool"),
        ("  db:\n    image:", "  db:\n   image:", "compose", "tool"),
        ("PORT:80", "80000:80", "services.seafile.ports[0]", "labkit"),
        ("DATA/db:/var/lib/mysql", "/etc:/var/lib/mysql", "services.db.volumes[0]", "labkit"),
    ],
)
def test_a_broken_compose_file_is_rejected_naming_the_field(tmp_path, docker_client, old, new, field, by):
    port = _free_port()
    assert WriteCompose(tmp_path, http_port=port).execute("auto").status == "pass"
    secrets = _secrets(tmp_path)
    data = str(tmp_path / "seafile-data")
    _hand_edit(tmp_path, old.replace("PORT", str(port)).replace("DATA", data), new)
    result, _ = execute_and_match(ValidateCompose(tmp_path, http_port=port), mode="auto")
    assert result.status == "fail"
    found = result.evidence["tool_findings" if by == "tool" else "labkit_findings"]
    assert field in [f["field"] for f in found], found
    assert result.evidence["matches_fields"] is False
    if by == "tool":
        assert result.evidence["returncode"] != 0
    else:  # docker-compose 1.29 lets these by; labkit's own checks catch them
        assert result.evidence["returncode"] == 0
    _assert_no_secret(secrets, result.to_payload())


@needs_compose
def test_a_port_in_use_is_detected_for_real(tmp_path, docker_client):
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not port_free(port)
        assert WriteCompose(tmp_path, http_port=port).execute("auto").status == "pass"
        result, _ = execute_and_match(ValidateCompose(tmp_path, http_port=port), mode="auto")
    assert result.status == "fail"
    assert result.evidence["returncode"] == 0  # the compose tool does not know
    assert [f["code"] for f in result.evidence["labkit_findings"]] == ["port.in_use"]
    assert result.evidence["labkit_findings"][0]["field"] == "http_port"
    assert port_free(port)


def test_validate_without_a_compose_file_says_write_it_first(tmp_path):
    result = ValidateCompose(tmp_path).execute("auto")
    if compose_v2() is None:
        assert result.evidence["skip_reason"] == "host"
        return
    assert result.status == "skipped" and result.evidence["skip_reason"] == "host"
    assert "ch4.seafile.compose" in result.message


@needs_compose
def test_up_is_planned_with_the_missing_images_and_health_and_down_follow(tmp_path, docker_client):
    port = _free_port()
    assert WriteCompose(tmp_path, http_port=port).execute("auto").status == "pass"
    step = ComposeUp(tmp_path, http_port=port)
    missing = [ref for ref in step.spec().images if not docker_client.images.list(name=ref)]
    if not missing:
        pytest.skip("the Seafile images are in this engine: up would really start Seafile")
    result, ran = execute_and_match(step, mode="auto")
    assert result.status == "skipped" and result.evidence["skip_reason"] == "host"
    assert ran == []
    for ref in missing:
        assert f"docker pull {ref}" in result.message
    assert result.evidence["plan"]["commands"] == [sf.up_argv(step.spec())]

    health, ran = execute_and_match(SeafileHealth(tmp_path, http_port=port), mode="auto")
    assert health.status == "skipped" and health.evidence["skip_reason"] == "host" and ran == []
    assert "not running" in health.message

    down, ran = execute_and_match(ComposeDown(tmp_path, http_port=port), mode="auto")
    assert down.status == "pass" and down.evidence["already_present"] is True and ran == []
    assert os.path.isdir(tmp_path / "seafile-data" / "db")


# -- compose up / health / down mechanics, with stand-in images (NOT Seafile) ----------------------------
#: Three tiny images standing in for MariaDB, memcached and Seafile: a rootfs holding only the
#: host's static busybox (``docker import``, independent of any other test's images). They prove
#: the steps' compose up/down, the engine reads and the HTTP check for real; they say nothing
#: about Seafile itself (there is no registry here to pull it).
#: As PID 1 ``sleep`` and ``httpd`` ignore SIGTERM (compose down would wait 10 s for each).
_TRAP = """["sh", "-c", "trap 'exit 0' TERM; %s & wait"]"""
STANDINS = {
    "db_image": ("labkit-test/standin-db:1", {}, f"CMD {_TRAP % 'sleep 3600'}"),
    "memcached_image": (
        "labkit-test/standin-memcached:1",
        {"bin/memcached": b"#!/bin/sh\ntrap 'exit 0' TERM; sleep 3600 & wait\n"},
        'CMD ["memcached"]',
    ),
    "seafile_image": (
        "labkit-test/standin-seafile:1",
        {"www/index.html": b"standin\n"},
        f"CMD {_TRAP % 'httpd -f -p 80 -h /www'}",
    ),
}
BUSYBOX = "/bin/busybox"


def _rootfs(extra: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "sleep", "httpd"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def standin_images(docker_client, tracker) -> dict[str, str]:
    if not os.path.isfile(BUSYBOX):
        pytest.skip("no static busybox (apt-get install busybox-static)")
    refs = {}
    for field, (ref, files, cmd) in STANDINS.items():
        repo, tag = ref.rsplit(":", 1)
        docker_client.api.import_image_from_data(_rootfs(files), repository=repo, tag=tag, changes=[cmd])
        tracker.image(ref)
        refs[field] = ref
    return refs


@needs_compose
def test_up_health_down_mechanics_with_standin_images(tmp_path, docker_client, standin_images):
    label = f"com.docker.compose.project={sf.PROJECT}"
    if docker_client.containers.list(all=True, filters={"label": label}):
        pytest.skip(f"a {sf.PROJECT} project already exists on this engine; not touching it")
    fields = {"http_port": _free_port(), **standin_images}
    assert WriteCompose(tmp_path, **fields).execute("auto").status == "pass"
    secrets = _secrets(tmp_path)
    try:
        up, ran = execute_and_match(ComposeUp(tmp_path, **fields), mode="auto")
        assert up.status == "pass", up.message
        assert ran == [sf.up_argv(ComposeUp(tmp_path, **fields).spec())]
        assert set(up.evidence["containers"]) == set(sf.SERVICES)
        again = ComposeUp(tmp_path, **fields).execute("auto")
        assert again.status == "pass" and again.evidence["already_present"] is True

        # the port is now held by the project itself: validation still passes
        checked = ValidateCompose(tmp_path, **fields).execute("auto")
        assert checked.status == "pass", checked.message
        health, ran = execute_and_match(SeafileHealth(tmp_path, **fields), mode="auto")
        assert health.status == "pass" and health.evidence["status"] == 200 and ran == []

        refused = ComposeDown(tmp_path, **fields).execute("auto")
        assert refused.status == "skipped" and refused.evidence["skip_reason"] == "consent"
        assert docker_client.containers.list(filters={"label": label})
        _assert_no_secret(secrets, up.to_payload(), health.to_payload(), refused.to_payload())
    finally:
        down, ran = execute_and_match(ComposeDown(tmp_path, consent=True, **fields), mode="auto")
    assert down.status == "pass", down.message
    assert ran == [sf.down_argv(ComposeDown(tmp_path, **fields).spec())]
    assert not docker_client.containers.list(all=True, filters={"label": label})
    assert down.evidence["data_kept"] is True


@needs_compose
def test_a_password_in_the_tools_complaint_is_masked(tmp_path, docker_client):
    port = _free_port()
    assert WriteCompose(tmp_path, http_port=port).execute("auto").status == "pass"
    secrets = _secrets(tmp_path)
    # a student pasted the password itself into a broken variable: the tool quotes the line back
    _hand_edit(tmp_path, '"${SEAFILE_ADMIN_PASSWORD}"', '"${' + secrets[1] + '"')
    result, _ = execute_and_match(ValidateCompose(tmp_path, http_port=port), mode="auto")
    assert result.status == "fail"
    assert result.evidence["returncode"] != 0
    assert "${***" in result.evidence["tool_output"]
    _assert_no_secret(secrets, result.to_payload(), str(result))
