"""``labkit doctor``: the real CLI on this machine, the JSON shape, the fixes, and ``--install`` rules."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.doctor import EXIT_APT_FAILED, EXIT_REFUSED, build_rows, install_packages, main, render_table
from labkit.logic.host import DockerInfo, HostFacts, ToolInfo
from labkit.steps.runner import Completed, FunctionRunner

ROOT = Path(__file__).resolve().parents[1]
APT_PREFIX = "sudo apt-get install -y --no-install-recommends "
ENV = {**os.environ, "LABKIT_LANG": "en", "COLUMNS": "120"}


def _cli_argv() -> list[str]:
    """The real ``labkit`` command; ``python -m labkit.doctor`` only while another verb module the
    dispatcher imports is still missing in this checkout (the doctor's own wiring is the same)."""
    exe = ROOT / ".venv" / "bin" / "labkit"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "labkit"]
    probe = subprocess.run([*base, "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    if probe.returncode == 0:
        return [*base, "doctor"]
    assert "labkit.doctor" not in probe.stderr, probe.stderr
    return [sys.executable, "-m", "labkit.doctor"]


@pytest.fixture(scope="module")
def cli() -> list[str]:
    return _cli_argv()


@pytest.fixture(scope="module")
def report(cli) -> dict:
    done = subprocess.run([*cli, "--json"], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _row(report: dict, component: str) -> dict:
    rows = [r for r in report["rows"] if r["component"] == component]
    assert len(rows) == 1, component
    return rows[0]


def test_real_cli_dispatches_doctor():
    exe = ROOT / ".venv" / "bin" / "labkit"
    probe = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    if probe.returncode != 0 and "No module named" in probe.stderr and "labkit.doctor" not in probe.stderr:
        pytest.skip(
            "another verb module of the dispatcher is not in this checkout yet: " + probe.stderr[-200:]
        )
    done = subprocess.run([str(exe), "doctor", "--help"], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0
    assert "--install" in done.stdout
    assert "--json" in done.stdout


def test_doctor_json_shape(report):
    assert set(report) >= {"labkit_version", "facts", "rows", "sizing", "install"}
    assert report["facts"]["cores"] == os.cpu_count()
    for row in report["rows"]:
        assert set(row) >= {"component", "status", "detail", "fix", "apt", "optional"}
        assert row["status"] in ("ok", "missing", "unusable")
        assert row["detail"], row
        if row["status"] == "ok":
            assert row["fix"] == ""
    components = {r["component"] for r in report["rows"]}
    assert {
        "qemu-img",
        "qemu-system-aarch64",
        "KVM",
        "docker",
        "docker engine",
        "kubectl",
        "torch",
    } <= components


def test_kvm_row_matches_the_probe(report):
    facts = report["facts"]
    kvm = _row(report, "KVM")
    assert kvm["detail"] == facts["kvm_reason"]
    if facts["kvm_usable"]:
        assert kvm["status"] == "ok"
        assert facts["kvm_probe"]["usable"] is True
    elif not facts["kvm_device"]:
        assert kvm["status"] == "missing"
    else:
        assert kvm["status"] == "unusable"
        assert kvm["fix"]
        if facts["kvm_accessible"]:
            assert kvm["detail"].startswith("/dev/kvm exists but ")
    if facts["arch"] == "x86_64" and not facts["virt_flags"] and facts["kvm_device"]:
        assert kvm["status"] == "unusable"
        assert "vmx/svm" in kvm["detail"]


def test_rows_follow_the_facts(report):
    facts = report["facts"]
    for name in ("qemu-img", "qemu-system-aarch64", "kubectl", "microk8s", "zerotier-cli"):
        tool = facts["tools"][name]
        row = _row(report, name)
        assert (row["status"] == "ok") == (tool["present"] and not tool["detail"]), name
        if row["status"] == "ok":
            assert tool["version"] in row["detail"]
    torch = _row(report, "torch")
    if not facts["torch"]["present"]:
        assert torch["status"] == "missing"
        assert "pip install labkit[gpu]" in torch["fix"]


def test_missing_apt_pieces_show_the_exact_install_command(report):
    for row in report["rows"]:
        if row["status"] == "missing" and row["apt"]:
            assert row["fix"] == APT_PREFIX + " ".join(row["apt"])
    pkgs = report["install"]["packages"]
    if pkgs:
        assert report["install"]["command"] == "sudo apt-get install -y --no-install-recommends " + " ".join(
            pkgs
        )


def test_human_table(cli, report):
    done = subprocess.run(cli, capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("labkit doctor ")
    lines = out.splitlines()
    kvm = next(line for line in lines if line.startswith("KVM "))
    assert kvm.split("|")[1].strip() == _row(report, "KVM")["status"]
    for row in report["rows"]:
        if row["status"] == "missing" and row["apt"]:
            assert row["apt"][-1] in out
    assert "VM sizing:" in out


# ---------------------------------------------------------------------------------------------
# Pure row building, with hand-made facts
# ---------------------------------------------------------------------------------------------
BARE = HostFacts(os_id="debian", tools={}, firmware={}, kvm_device=False, kvm_reason="no /dev/kvm")


def test_bare_host_needs_the_course_packages(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    rows = {r.component: r for r in build_rows(BARE)}
    assert rows["qemu-img"].status == "missing"
    assert rows["qemu-img"].fix == APT_PREFIX + "qemu-utils"
    assert rows["qemu-system-aarch64"].fix == APT_PREFIX + "qemu-system-arm"
    assert rows["UEFI firmware (aarch64)"].fix == APT_PREFIX + "qemu-efi-aarch64"
    assert rows["NIC boot ROM (ipxe-qemu)"].apt == ("ipxe-qemu",)
    assert rows["docker engine"].apt == ("docker.io",)
    assert rows["kubectl"].apt == ("kubernetes-client",)
    assert rows["zerotier-cli"].apt == ()
    assert "install.zerotier.com" in rows["zerotier-cli"].fix
    assert rows["microk8s"].apt == ()
    assert "snap install microk8s --classic" in rows["microk8s"].fix
    assert rows["KVM"].status == "missing"
    assert rows["KVM"].apt == ()
    assert rows["torch"].apt == ()
    assert rows["NVIDIA GPU"].apt == ()
    assert install_packages(list(rows.values())) == [
        "qemu-utils",
        "qemu-system-arm",
        "qemu-efi-aarch64",
        "ipxe-qemu",
        "docker.io",
        "kubernetes-client",
    ]


def test_offered_packages_really_exist_in_apt():
    if shutil.which("apt-cache") is None:
        pytest.skip("not a Debian/Ubuntu host")
    pkgs = sorted({p for r in build_rows(BARE) for p in r.apt} | {"snapd"})
    out = subprocess.run(["apt-cache", "policy", *pkgs], capture_output=True, text=True, check=True).stdout
    from labkit.logic.host import parse_apt_policy

    known = parse_apt_policy(out)
    for pkg in pkgs:
        assert known.get(pkg), f"{pkg} has no apt candidate on this host"


def test_unavailable_packages_are_not_offered(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    rows = {r.component: r for r in build_rows(BARE, {"qemu-utils": "1", "kubernetes-client": None})}
    assert rows["qemu-img"].apt == ("qemu-utils",)
    assert rows["kubectl"].apt == ()
    assert rows["kubectl"].fix == ""
    assert "not available" in rows["kubectl"].detail


def test_docker_engine_states(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    client = {"docker": ToolInfo("docker", "/usr/bin/docker", "20.10.24", "docker.io")}

    def engine(**kw):
        facts = HostFacts(tools=client, docker=DockerInfo(client_path="/usr/bin/docker", **kw))
        return next(r for r in build_rows(facts) if r.component == "docker engine")

    assert engine(engine="ok", server_version="20.10.24", api_version="1.41").status == "ok"
    down = engine(engine="not running", dockerd_path="/usr/sbin/dockerd", detail="no socket")
    assert down.status == "unusable"
    assert "dockerd" in down.fix
    assert "systemctl start docker" in engine(engine="not running", dockerd_path="/x", systemd=True).fix
    assert engine(engine="not running").apt == ("docker.io",)  # client only, no engine installed
    denied = engine(engine="permission denied", detail="permission denied on /var/run/docker.sock")
    assert denied.status == "unusable"
    assert "usermod -aG docker" in denied.fix


def test_table_renders_every_row_and_wraps(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "zh")
    rows = build_rows(BARE)
    text = render_table(rows, 80)
    for r in rows:
        assert any(line.startswith(r.component) for line in text.splitlines())
    from labkit.doctor import _width

    assert max(_width(line) for line in text.splitlines()) <= 80


# ---------------------------------------------------------------------------------------------
# --install
# ---------------------------------------------------------------------------------------------
def _apt_runner(install_rc: int = 0) -> FunctionRunner:
    def handler(argv):
        if argv[:2] == ["apt-cache", "policy"]:
            return Completed(argv, 0, "".join(f"{p}:\n  Candidate: 1.0\n" for p in argv[2:]))
        if argv[:2] == ["apt-get", "install"]:
            return Completed(argv, install_rc, "Setting up ...\n", "E: failed\n" if install_rc else "")
        raise AssertionError(f"unexpected command {argv}")

    return FunctionRunner(handler)


def _installs(runner: FunctionRunner) -> list[list[str]]:
    return [a for a in runner.history if a[:2] == ["apt-get", "install"]]


def test_install_refused_without_root(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    runner, out = _apt_runner(), io.StringIO()
    rc = main(install=True, yes=True, facts=BARE, is_root=False, runner=runner, out=out)
    assert rc == EXIT_REFUSED
    assert "sudo apt-get install -y --no-install-recommends qemu-utils" in out.getvalue()
    assert _installs(runner) == []


def test_install_asks_and_respects_no(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    runner, out = _apt_runner(), io.StringIO()
    rc = main(install=True, facts=BARE, is_root=True, runner=runner, out=out, stdin=io.StringIO("n\n"))
    assert rc == EXIT_REFUSED
    assert "proceed? [y/N]" in out.getvalue()
    assert _installs(runner) == []
    rc = main(install=True, facts=BARE, is_root=True, runner=runner, out=out, stdin=io.StringIO(""))
    assert rc == EXIT_REFUSED
    assert _installs(runner) == []


def test_install_as_root_runs_apt_get_with_the_missing_packages(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    runner, out = _apt_runner(), io.StringIO()
    rc = main(install=True, facts=BARE, is_root=True, runner=runner, out=out, stdin=io.StringIO("y\n"))
    assert rc == 0
    (argv,) = _installs(runner)
    assert argv == [
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "qemu-utils",
        "qemu-system-arm",
        "qemu-efi-aarch64",
        "ipxe-qemu",
        "docker.io",
        "kubernetes-client",
    ]
    assert not any("torch" in a or "nvidia" in a for a in argv)


def test_install_failure_has_its_own_exit_code(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    runner, out = _apt_runner(install_rc=100), io.StringIO()
    assert main(install=True, yes=True, facts=BARE, is_root=True, runner=runner, out=out) == EXIT_APT_FAILED
    assert "apt-get failed" in out.getvalue()


def test_install_with_nothing_missing_is_a_no_op(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")
    tools = {
        n: ToolInfo(n, f"/usr/bin/{n}", "1.0", p)
        for n, p in [
            ("qemu-img", "qemu-utils"),
            ("qemu-system-aarch64", "qemu-system-arm"),
            ("docker", "docker.io"),
            ("kubectl", "kubernetes-client"),
        ]
    }
    facts = HostFacts(
        tools=tools,
        firmware={"/f": True},
        docker=DockerInfo(engine="ok", server_version="1", api_version="1.41"),
        extra={"nic_rom": "/usr/lib/ipxe/qemu/efi-virtio.rom"},
    )
    runner, out = _apt_runner(), io.StringIO()
    assert main(install=True, facts=facts, is_root=False, runner=runner, out=out) == 0
    assert "nothing to install" in out.getvalue()
    assert runner.history == []


def test_install_as_an_unprivileged_user_is_refused_for_real(cli):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the CLI as user nobody")
    nobody = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cli]
    env = {**ENV, "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    seen = subprocess.run(
        [*nobody, "--json"], capture_output=True, text=True, env=env, timeout=120, cwd="/tmp"
    )
    report = json.loads(seen.stdout)
    assert report["facts"]["is_root"] is False
    done = subprocess.run(
        [*nobody, "--install", "--yes"], capture_output=True, text=True, env=env, timeout=120, cwd="/tmp"
    )
    if report["install"]["packages"]:
        assert done.returncode == EXIT_REFUSED, done.stderr
        assert "--install needs root" in done.stdout
        assert "sudo apt-get install -y --no-install-recommends" in done.stdout
    else:
        assert done.returncode == 0
        assert "nothing to install" in done.stdout


def test_install_leaves_out_packages_apt_cannot_install(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")

    def handler(argv):
        if argv[:2] == ["apt-cache", "policy"]:
            # kubernetes-client unknown to this host's sources (as on Ubuntu): absent from the output
            return Completed(
                argv, 0, "".join(f"{p}:\n  Candidate: 1.0\n" for p in argv[2:] if p != "kubernetes-client")
            )
        return Completed(argv, 0, "")

    runner, out = FunctionRunner(handler), io.StringIO()
    assert (
        main(install=True, yes=True, facts=BARE, is_root=True, runner=runner, out=out, json_output=True) == 0
    )
    doc = json.loads(out.getvalue())
    assert "kubernetes-client" not in doc["install"]["packages"]
    kubectl = next(r for r in doc["rows"] if r["component"] == "kubectl")
    assert kubectl["fix"] == ""
    assert "not available" in kubectl["detail"]
    x86 = next(r for r in doc["rows"] if r["component"] == "qemu-system-x86_64")
    assert x86["fix"] == APT_PREFIX + "qemu-system-x86"  # optional, not asked about, still offered
    (argv,) = _installs(runner)
    assert "kubernetes-client" not in argv
    assert "qemu-utils" in argv
