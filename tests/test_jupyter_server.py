"""Chapter 4.4: a real Jupyter Server, configured, started, logged into and stopped by labkit.

* Pure: the fields (each bad one named), the exposure rule (no ``0.0.0.0`` without a login), the
  config texts (current names; the seed's ``c.ServerApp.password``), masking, the parsers
  (hypothesis: they never raise), the 4.4.3 verdict.
* Real: a server started by :class:`StartServer` in its own dirs, logged into over HTTP with the
  password (and refused with a wrong one and none), a kernel started through the REST API running
  the torch check (torch is absent here: reported so), stopped by its own pid with no process left
  and the port free; the seed's config on a copy answered with 401 and a random token; the
  password absent from every evidence, plan, message, streamed line, file and a saved notebook.

Run the server tests under ``flock /work/wt/docker.lock`` (they start servers and kernels).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import socket
import stat
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.checks import CHECK_MIME
from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import jupyter_server as lj
from labkit.steps.jupyter_checks import KernelCheck, SeedConfigDemo, VerifyLogin
from labkit.steps.jupyter_server import StartServer, StopServer, WriteServerConfig

ROOT = os.geteuid() == 0
PASSWORD = "Recognisable-Pw-4711-xyzzy"
HASH = "argon2:$argon2id$v=19$m=10240,t=10,p=8$MNkUJSIPP7WJOHy3VLrVpQ$HjHDeY89CBXPGzc3AVG0Ut+WZOAddFXfCwbH02Po8gA"  # noqa: E501


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted on in English (the default language is Chinese)."""
    with use_lang("en"):
        yield


@pytest.fixture(autouse=True)
def _no_env_password(monkeypatch):
    monkeypatch.delenv(lj.PASSWORD_ENV, raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def fields(**kw):
    base = {"ip": "127.0.0.1", "port": 8888, "root_dir": "/srv/nb"}
    return lj.server_fields(**{**base, **kw})


# ----------------------------------------------------------------------------------------------
# Pure
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": "jupyter.example"}, "ip"),
        ({"port": 80}, "port"),
        ({"port": True}, "port"),
        ({"port": "8888"}, "port"),
        ({"root_dir": "notebooks"}, "root_dir"),
        ({"allow_root": "yes"}, "allow_root"),
        ({"open_browser": 1}, "open_browser"),
    ],
)
def test_bad_fields_are_named(kw, field):
    with pytest.raises(InvalidField) as info:
        fields(**kw)
    assert info.value.field == field


@pytest.mark.parametrize("ip", ["0.0.0.0", "::", "192.168.1.5"])
def test_listening_beyond_loopback_without_a_login_is_refused(ip):
    f = fields(ip=ip)
    findings = lj.exposure_findings(f, has_password=False)
    assert [x.field for x in findings] == ["ip"] and findings[0].is_error
    with pytest.raises(InvalidField) as info:
        lj.config_text(f, None)
    assert info.value.field == "ip" and "password" in str(info.value)
    assert lj.exposure_findings(f, has_password=True) == []
    assert lj.exposure_findings(f, has_password=False, has_token=True) == []


def test_loopback_without_a_login_is_allowed():
    text = lj.config_text(fields(), None)
    assert lj.parse_config_text(text)["IdentityProvider.token"] == ""


def test_config_text_uses_the_current_names():
    values = lj.parse_config_text(lj.config_text(fields(port=9999), HASH))
    assert values == {
        "PasswordIdentityProvider.hashed_password": HASH,
        "ServerApp.ip": "127.0.0.1",
        "ServerApp.port": 9999,
        "ServerApp.open_browser": False,
        "ServerApp.root_dir": "/srv/nb",
    }
    with_root = lj.config_text(fields(allow_root=True), HASH)
    assert lj.parse_config_text(with_root)["ServerApp.allow_root"] is True
    assert "--allow-root" in with_root
    seed = lj.parse_config_text(lj.seed_config_text(HASH))
    assert seed == {"ServerApp.password": HASH}
    with pytest.raises(InvalidField) as info:
        lj.config_text(fields(), "ailab")  # a password where the hash belongs
    assert info.value.field == "hashed_password" and "ailab" not in str(info.value)


def test_argv_env_and_url_keep_secrets_out():
    argv = lj.server_argv("/usr/bin/python3", "/w/config/jupyter_server_config.py")
    assert argv == ["/usr/bin/python3", "-m", "jupyter_server", "--config=/w/config/jupyter_server_config.py"]
    env = lj.server_env("/w/c", "/w/r", "/w/d")
    assert env["JUPYTER_CONFIG_DIR"] == "/w/c" and env["JUPYTER_RUNTIME_DIR"] == "/w/r"
    assert lj.shown_url(fields()) == "http://127.0.0.1:8888/"
    assert "token" not in lj.shown_url(fields(ip="0.0.0.0"))
    assert lj.base_url("0.0.0.0", 8888) == "http://127.0.0.1:8888/"
    assert lj.base_url("::", 8888) == "http://[::1]:8888/"
    seed = lj.seed_argv("/p", fields(allow_root=True))
    assert "--allow-root" in seed and not any(a.startswith("--config") for a in seed)


def test_masking():
    masked = lj.mask_hash(HASH)
    assert masked.startswith("argon2:$argon2id$v=19$m=10240") and "HjHDeY89" not in masked
    assert "MNkUJSIPP7" not in masked
    line = "http://127.0.0.1:8888/?token=09bec70032e1cfc3b0cb931e5ab8e920aee819abff203ef9"
    assert lj.mask_tokens(line) == "http://127.0.0.1:8888/?token=<hidden>"
    info = lj.parse_runtime_info(json.dumps({"pid": 5, "port": 1, "token": "abc", "url": "http://x/"}))
    assert info == {"pid": 5, "port": 1, "url": "http://x/", "token_set": True}
    assert "abc" not in json.dumps(info)


def test_password_never_shows():
    p = lj.Password(PASSWORD)
    assert PASSWORD not in f"{p} {p!r} {[p]}"
    assert p.reveal() == PASSWORD
    with pytest.raises(TypeError):
        pickle.dumps(p)
    with pytest.raises(InvalidField) as info:
        lj.Password("bad\x00pw")
    assert info.value.field == "password" and "bad" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_parsers_never_raise(text):
    assert isinstance(lj.parse_status(text), dict)
    assert isinstance(lj.parse_runtime_info(text), dict)
    assert isinstance(lj.parse_kernel(text), dict)
    assert isinstance(lj.kernel_ids(text), list)
    assert isinstance(lj.parse_config_text(text), dict)
    assert "token=" not in lj.mask_tokens(text).replace("token=<hidden>", "")


@given(st.integers(100, 599), st.text(max_size=40))
def test_login_outcome(status, location):
    outcome = lj.login_outcome(status, location)
    assert outcome == ("accepted" if status in (301, 302, 303) and "/login" not in location else "refused")


def test_parse_status_reads_the_real_shape():
    body = b'{"started": "2026-12-02T17:41:47Z", "last_activity": "x", "connections": 0, "kernels": 1}'
    assert lj.parse_status(body)["kernels"] == 1
    assert lj.parse_status(b'{"message": "Forbidden"}') == {}


def _kernel_evidence(probe: dict, deleted: bool = True) -> dict:
    stdout = "PyTorch is not installed in this kernel: x\nLABKIT-PROBE " + json.dumps(probe) + "\n"
    return {"stdout": stdout, "kernel_deleted": deleted, "kernel_name": "python3"}


def test_judge_kernel():
    no_torch = lj.judge_kernel("c", _kernel_evidence({"error": "no-torch", "torch": None}))
    assert no_torch.status == "pass" and "not installed" in no_torch.message
    assert no_torch.evidence["gpu"] is False
    gpu = lj.judge_kernel("c", _kernel_evidence({"error": None, "torch": "2.4", "device": "NVIDIA H200"}))
    assert gpu.status == "pass" and gpu.evidence["gpu"] is True and "H200" in gpu.message
    assert lj.judge_kernel("c", _kernel_evidence({"error": "no-torch"}, deleted=False)).status == "fail"
    assert lj.judge_kernel("c", {"stdout": "", "kernel_deleted": True}).status == "fail"
    assert lj.judge_kernel("c", _kernel_evidence({"error": "cuda-error", "detail": "x"})).status == "error"


# ----------------------------------------------------------------------------------------------
# The config step (no server)
# ----------------------------------------------------------------------------------------------
def test_open_address_without_a_login_is_refused_before_anything_happens(tmp_path):
    step = WriteServerConfig(root=tmp_path / "j", ip="0.0.0.0", auth="none", allow_root=ROOT)
    with pytest.raises(InvalidField):
        step.plan()  # the plan itself refuses: nothing to show, nothing to run
    result = step.execute("live")
    assert result.status == "error" and result.evidence["field"] == "ip"
    assert "commands" not in result.evidence and not (tmp_path / "j").exists()
    start = StartServer(root=tmp_path / "j", ip="0.0.0.0", allow_root=ROOT).execute("live")
    assert start.status == "error" and not (tmp_path / "j").exists()  # nothing to start from


@pytest.mark.parametrize("port", ["abc", 70000, 0])
@pytest.mark.parametrize("cls", [KernelCheck, StopServer, VerifyLogin])
def test_a_bad_port_is_named_not_a_urllib_traceback(tmp_path, cls, port):
    """``KernelCheck``/``StopServer`` used the port unchecked: "abc" escaped as ``InvalidURL``."""
    result = cls(root=tmp_path / "j", port=port, password=PASSWORD).execute("auto")
    assert result.status == "error" and result.evidence["field"] == "port", result
    assert "1024" in result.message and "URL" not in result.message


def test_a_start_port_other_than_the_configs_is_refused_before_anything_starts(tmp_path):
    """The server listens where its config says: a start field left at another port made the step
    wait a minute at the wrong address and report a raw log."""
    written, typed = free_port(), free_port()
    kw = {"root": tmp_path / "j", "allow_root": ROOT, "password": PASSWORD}
    assert WriteServerConfig(**kw, port=written).execute("live").status == "pass"
    result = StartServer(**kw, port=typed).execute("live")
    assert result.status == "error" and result.evidence["field"] == "port", result
    assert str(written) in result.message and "config" in result.message
    assert not (tmp_path / "j" / "server.pid").exists() and port_free(written)


def test_a_blank_password_with_none_to_fall_back_on_says_so(tmp_path):
    with pytest.raises(InvalidField) as blank:
        VerifyLogin(root=tmp_path / "j").need_password()
    assert blank.value.field == "password" and "<hidden>" not in str(blank.value)
    assert "is blank" in str(blank.value) and lj.PASSWORD_ENV in str(blank.value)


@pytest.mark.skipif(not ROOT, reason="the kernel runs as root only on root machines")
def test_root_needs_allow_root(tmp_path):
    result = WriteServerConfig(root=tmp_path, allow_root=False).execute("live")
    assert result.status == "error" and result.evidence["field"] == "allow_root"
    assert "--allow-root" in result.message and not (tmp_path / "config").exists()


def test_generated_password_is_kept_private_and_the_config_idempotent(tmp_path):
    root = tmp_path / "j"
    lines: list[str] = []
    first, _ = execute_and_match(
        WriteServerConfig(root=root, allow_root=ROOT), on_line=lambda s, line: lines.append(line)
    )
    assert first.status == "pass", first.message
    secret = (root / "password.txt").read_text().strip()
    assert len(secret) >= 16
    for path in (root / "password.txt", root / "config" / lj.CONFIG_NAME):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = (root / "config" / lj.CONFIG_NAME).read_text()
    assert secret not in config and "argon2:$argon2id$" in config
    shown = json.dumps(first.evidence) + first.message + "\n".join(lines)
    assert secret not in shown and str(root / "password.txt") in shown
    again, _ = execute_and_match(WriteServerConfig(root=root, allow_root=ROOT))
    assert again.status == "pass" and again.evidence["already_present"]
    # a different port: the existing file differs and is replaced only with consent, keeping a backup
    other = WriteServerConfig(root=root, port=9999, allow_root=ROOT).execute("auto")
    assert other.status == "skipped" and other.evidence["skip_reason"] == "consent"
    assert "ServerApp.port" in other.message
    replaced = WriteServerConfig(root=root, port=9999, allow_root=ROOT, overwrite=True).execute("live")
    assert replaced.status == "pass" and replaced.evidence["backup_kept"]
    assert list((root / "config").glob(f"{lj.CONFIG_NAME}.labkit-bak-*"))
    # a password typed in the field replaces the generated one (and its file)
    typed = WriteServerConfig(root=root, port=9999, allow_root=ROOT, password=PASSWORD, overwrite=True)
    assert typed.execute("live").status == "pass" and not (root / "password.txt").exists()


# ----------------------------------------------------------------------------------------------
# A real server
# ----------------------------------------------------------------------------------------------
def _files_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.fixture
def server_root(tmp_path):
    """The work folder; whatever the test left running there is stopped (by its own pid) after."""
    root = tmp_path / "jupyter"
    yield root
    for port_file in root.rglob("server.pid"):
        pid = int(port_file.read_text())
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()


@pytest.mark.slow
def test_a_real_server_logged_into_checked_and_stopped(server_root):
    port = free_port()
    kw = {"root": server_root, "port": port, "allow_root": ROOT, "password": lj.Password(PASSWORD)}
    lines: list[str] = []
    results = []

    def run(step):
        results.append(step.plan().to_payload())
        result, ran = execute_and_match(step, on_line=lambda s, line: lines.append(line))
        results.append(result.to_payload())
        results.append(result.message)
        assert result.status == "pass", result.message
        return result, ran

    run(WriteServerConfig(**kw))
    started, ran = run(StartServer(**kw))
    assert ran == [lj.server_argv(sys.executable, str(server_root / "config" / lj.CONFIG_NAME))]
    pid = started.evidence["pid"]
    assert started.evidence["url"] == f"http://127.0.0.1:{port}/" and started.evidence["token_set"] is False
    again, ran = run(StartServer(**kw))
    assert again.evidence["already_present"] and ran == [] and again.evidence["pid"] == pid

    login, _ = run(VerifyLogin(**kw))
    assert login.evidence["no_credentials"]["status"] == 403
    assert login.evidence["wrong_password"] == {"status": 401, "location": "", "outcome": "refused"}
    assert login.evidence["right_password"]["status"] == 302
    assert login.evidence["right_password"]["api_status"] == 200
    assert "started" in login.evidence["right_password"]["server_status"]
    wrong = VerifyLogin(**{**kw, "password": lj.Password("not-the-password")}).execute("live")
    assert wrong.status == "fail" and "did not get in" in wrong.message

    kernel, _ = run(KernelCheck(**kw))
    assert kernel.evidence["probe"]["error"] == "no-torch"  # no torch on this CPU machine
    assert kernel.evidence["gpu"] is False and kernel.evidence["kernel_deleted"]
    assert "PyTorch is not installed in this kernel" in "\n".join(kernel.evidence["lines"])
    assert "not installed" in kernel.message

    server = psutil.Process(pid)
    assert server.cmdline()[1:] == lj.server_argv("", str(server_root / "config" / lj.CONFIG_NAME))[1:]
    stopped, ran = run(StopServer(**kw))
    assert ran == [] and stopped.evidence["signal"] == "SIGTERM" and stopped.evidence["port_free"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert port_free(port) and not (server_root / "server.pid").exists()
    assert run(StopServer(**kw))[0].evidence["already_present"]

    shown = json.dumps(results, default=str) + "\n".join(lines) + _files_text(server_root)
    assert PASSWORD not in shown


@pytest.mark.slow
def test_a_password_changed_after_start_fails_honestly_and_restart_is_asked_for(server_root):
    """The student changes the password while the server runs: the login says why it fails, the
    start step asks for its restart checkbox (not for a backup or another file name)."""
    kw = {"root": server_root, "port": free_port(), "allow_root": ROOT}
    first, second = lj.Password(PASSWORD), lj.Password(PASSWORD + "-changed")
    assert WriteServerConfig(**kw, password=first).execute("live").status == "pass"
    started = StartServer(**kw).execute("live")
    assert started.status == "pass", started
    try:
        mistyped = VerifyLogin(**kw, password=lj.Password("typo")).execute("live")
        assert mistyped.status == "fail" and mistyped.evidence["password_matches_config"] is False
        assert "does not match the hash in the config" in mistyped.message
        changed = WriteServerConfig(**kw, password=second, overwrite=True).execute("live")
        assert changed.status == "pass", changed
        stale = VerifyLogin(**kw, password=second).execute("live")
        assert stale.status == "fail" and stale.evidence["config_changed_since_start"] is True
        assert "still uses the old hash" in stale.message and "restart with the new config" in stale.message
        refused = StartServer(**kw).execute("auto")
        assert refused.status == "skipped", refused
        assert "stop the running server" in refused.message and "older config" in refused.message
        assert "backup" not in refused.message and "name" not in refused.message
        restarted = StartServer(**kw, restart=True).execute("live")
        assert restarted.status == "pass" and restarted.evidence["pid"] != started.evidence["pid"]
        assert VerifyLogin(**kw, password=second).execute("live").status == "pass"
    finally:  # the stop panel's port field left at another value: it reports the port it freed
        stopped = StopServer(**{**kw, "port": free_port()}).execute("live")
    assert stopped.status == "pass" and stopped.evidence["port"] == kw["port"], stopped
    assert f"port {kw['port']} is free" in stopped.message and port_free(kw["port"])
    shown = json.dumps([mistyped.to_payload(), stale.to_payload(), refused.to_payload()], default=str)
    assert PASSWORD not in shown and "typo" not in shown


@pytest.mark.slow
def test_the_seeds_config_is_ignored_and_the_right_password_gets_401(server_root):
    step = SeedConfigDemo(root=server_root, port=free_port(), allow_root=ROOT, password=PASSWORD)
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    assert ran == [step.seed_argv()]
    ev = result.evidence
    assert ev["right_password"]["status"] == 401 and ev["right_password"]["outcome"] == "refused"
    assert ev["no_credentials"]["status"] == 403 and ev["token_set"] is True and ev["token_in_log"]
    assert (server_root / "seed-demo" / "config" / lj.SEED_CONFIG_NAME).is_file()
    assert not (server_root / "seed-demo" / "config" / lj.CONFIG_NAME).exists()
    assert not psutil.pid_exists(ev["pid"]) and ev["port_free"]
    shown = json.dumps(ev) + result.message + _files_text(server_root)
    assert PASSWORD not in shown
    assert "?token=<hidden>" in "\n".join(ev["log_tail"])
    assert not re.search(r"token=[0-9a-f]{16,}", shown)  # the real token is masked everywhere


NOTEBOOK_CELLS = [
    "from labkit.steps.jupyter_server import WriteServerConfig, StartServer, StopServer\n"
    "from labkit.steps.jupyter_checks import VerifyLogin, SeedConfigDemo\n"
    "kw = dict(root={root!r}, port={port}, allow_root={root_ok})",
    "WriteServerConfig(**kw).execute('live')",
    "StartServer(**kw).execute('live')",
    "VerifyLogin(**kw).execute('live')",
    "SeedConfigDemo(root={root!r}, port={seed_port}, allow_root={root_ok}).execute('live')",
    "StopServer(**kw).execute('live')",
]


@pytest.mark.slow
def test_the_password_is_absent_from_a_saved_notebook(server_root, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv(lj.PASSWORD_ENV, PASSWORD)  # the headless route; the kernel inherits it
    values = {"root": str(server_root), "port": free_port(), "seed_port": free_port(), "root_ok": ROOT}
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c.format(**values)) for c in NOTEBOOK_CELLS]
    )
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    saved = tmp_path / "ch4.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    outputs = [o for cell in nb.cells[1:] for o in cell.outputs]
    payloads = [o["data"][CHECK_MIME] for o in outputs if CHECK_MIME in o.get("data", {})]
    assert [(p["check"], p["status"]) for p in payloads] == [
        ("ch4.jupyter.config", "pass"),
        ("ch4.jupyter.start", "pass"),
        ("ch4.jupyter.login", "pass"),
        ("ch4.jupyter.seed", "pass"),
        ("ch4.jupyter.stop", "pass"),
    ]
    assert "ch4.jupyter.login" in text and "ch4.jupyter.seed" in text and "ch4.jupyter.stop" in text
    assert PASSWORD not in text
    assert PASSWORD not in _files_text(server_root)
