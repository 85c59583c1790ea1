"""Building images (course 2.4.7): pre-checks without an engine, real builds against the engine.

The real build uses the generated CUDA + PyTorch Dockerfile with ``BASE_IMAGE`` swapped for the
local Debian base (built once by the shared ``BuildLocalBase(kind="debian")`` step and kept, by tag,
across test runs) and ``TORCH_PACKAGES`` swapped for ``six==1.16.0`` from PyPI. Images the tests
build are removed at the end of the session by id (``docker_fixtures.Tracker``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from labkit.logic import dockerfile as dfl
from labkit.logic.docker_names import LABEL_CREATED, LABEL_OBJECT, LABEL_STEP, LOCAL_BASES
from labkit.steps.base import RunContext
from labkit.steps.docker import build as ib
from labkit.steps.runner import FunctionRunner, default_runner

pytest_plugins = ["docker_fixtures"]


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


def _seed_dockerfile() -> str:
    from test_dockerfile import SEED_DOCKERFILE

    return SEED_DOCKERFILE


def _context(tmp_path: Path, text: str = "FROM debian:12\nUSER 1000\n", name: str = "Dockerfile") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / name).write_text(text, encoding="utf-8")
    return ctx


# -- pre-checks (no engine needed: plan mode) ----------------------------------------------------
def test_missing_dockerfile_names_the_path_and_spots_an_extension(tmp_path):
    ctx = _context(tmp_path, name="Dockerfile.txt")
    result = ib.BuildImage(ctx, "labkit-test/x:1").execute("plan")
    assert result.status == "error" and result.evidence["field"] == "dockerfile"
    assert str(ctx / "Dockerfile") in result.message
    assert "Dockerfile.txt" in result.message and "spec=ImageSpec()" in result.message


def test_invalid_image_name_and_context(tmp_path):
    ctx = _context(tmp_path)
    result = ib.BuildImage(ctx, "PyTorch-CUDA:latest").execute("plan")
    assert result.status == "error" and result.evidence["field"] == "tag" and "lowercase" in result.message
    result = ib.BuildImage(tmp_path / "nope", "labkit-test/x:1").execute("plan")
    assert result.status == "error" and result.evidence["field"] == "context_dir"


def test_undeclared_build_args_are_refused(tmp_path):
    ctx = _context(tmp_path, dfl.build_dockerfile())
    result = ib.BuildImage(ctx, "labkit-test/x:1", {"BASE_IMAG": "labkit/debian:bookworm-local"}).execute(
        "plan"
    )
    assert result.status == "error" and result.evidence["field"] == "build_args"
    assert "BASE_IMAG" in result.message and "BASE_IMAGE" in result.message


def test_context_size_honours_dockerignore(tmp_path):
    ctx = _context(tmp_path)
    (ctx / "data").mkdir()
    (ctx / "data" / "big.bin").write_bytes(b"x" * 5000)
    (ctx / "keep.txt").write_bytes(b"y" * 10)
    size = ib.context_size(ctx)
    assert size["files"] == 3 and size["bytes"] == 5010 + len("FROM debian:12\nUSER 1000\n")
    assert size["largest"][0] == ("data/big.bin", 5000)
    (ctx / ".dockerignore").write_text("# comment\ndata\n")
    size = ib.context_size(ctx)
    assert size["dockerignore"] and ("data/big.bin", 5000) not in size["largest"]
    assert size["bytes"] < 5000


def test_a_huge_context_needs_consent_before_anything_is_sent(tmp_path):
    ctx = _context(tmp_path)
    with open(ctx / "disk.img", "wb") as fh:  # sparse: 2 GiB that take no space
        fh.truncate(2 * 2**30)
    result = ib.BuildImage(ctx, "labkit-test/x:1").execute("plan")
    assert result.status == "error" and result.evidence["error"] == "ConsentRequired"
    assert "disk.img" in result.message and "allow_large=True" in result.message
    warned = ib.BuildImage(ctx, "labkit-test/x:1", allow_large=True).execute("plan")
    assert warned.status == "skipped" and any("warning" in n for n in warned.evidence["plan"]["notes"])
    (ctx / ".dockerignore").write_text("*.img\n")
    assert ib.BuildImage(ctx, "labkit-test/x:1").execute("plan").status == "skipped"


def test_generated_dockerfile_does_not_replace_a_different_file_without_consent(tmp_path):
    ctx = _context(tmp_path, "FROM debian:12\n")
    result = ib.BuildImage(ctx, "labkit-test/x:1", spec=dfl.ImageSpec()).execute("plan")
    assert result.status == "error" and result.evidence["error"] == "ConsentRequired"
    ok = ib.BuildImage(ctx, "labkit-test/x:1", spec=dfl.ImageSpec(), overwrite=True).execute("plan")
    assert ok.status == "skipped" and ok.mode == "plan"


def test_plan_shows_the_dockerfile_the_command_and_the_lint(tmp_path):
    ctx = _context(tmp_path, _seed_dockerfile())
    result = ib.BuildImage(ctx, "pytorch-cuda:latest").execute("plan")
    plan = result.evidence["plan"]
    assert plan["files"][str(ctx / "Dockerfile")] == _seed_dockerfile()
    cmd = plan["commands"][0]
    assert cmd[:4] == ["env", "DOCKER_BUILDKIT=1", "docker", "build"] and cmd[-1] == str(ctx)
    assert f"{LABEL_CREATED}=true" in cmd and "pytorch-cuda:latest" in cmd
    notes = "\n".join(plan["notes"])
    for code in ("apt-no-recommends", "pip-cache", "cuda-mismatch", "pip-nightly"):
        assert code in notes


# -- builder choice ---------------------------------------------------------------------------------
def _fake_cli(directory: Path) -> Path:
    directory.mkdir()
    cli = directory / "docker"
    cli.write_text("#!/bin/sh\nexit 0\n")
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    return cli


@pytest.mark.parametrize(
    ("buildx_rc", "version", "picked"),
    [(0, "28.2.2", True), (1, "20.10.24+dfsg1", True), (1, "28.2.2", False)],
)
def test_buildkit_cli_choice(tmp_path, monkeypatch, buildx_rc, version, picked):
    cli = _fake_cli(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(cli.parent))
    monkeypatch.setattr(ib, "_docker_clis", lambda: [str(cli)])

    def handler(argv):
        if argv[1:] == ["buildx", "version"]:
            return (buildx_rc, "github.com/docker/buildx v0.20\n" if buildx_rc == 0 else "", "")
        return (0, version + "\n", "")

    from labkit.steps.base import RunContext

    runner = FunctionRunner(handler)
    chosen, why = ib.buildkit_cli(RunContext(runner=runner))
    assert (chosen == str(cli)) is picked and why
    assert runner.history[0] == [str(cli), "buildx", "version"]


def test_docker_clis_lists_each_executable_once(tmp_path, monkeypatch):
    a = _fake_cli(tmp_path / "a")
    link_dir = tmp_path / "b"
    link_dir.mkdir()
    (link_dir / "docker").symlink_to(a)
    monkeypatch.setenv("PATH", os.pathsep.join([str(a.parent), str(link_dir)]))
    clis = ib._docker_clis()
    assert clis[0] == str(a) and str(link_dir / "docker") not in clis


def test_host_extra_ca_files(tmp_path):
    (tmp_path / "a.crt").write_text("x")
    (tmp_path / "b.pem").write_text("x")
    assert ib.host_extra_ca_files(str(tmp_path)) == [tmp_path / "a.crt"]
    assert ib.host_extra_ca_files(str(tmp_path / "none")) == []


# -- real engine ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def debian_base(docker_client) -> str:
    """The shared Debian minbase with python3 (kept across runs: building it takes ~40-130 s)."""
    from labkit.steps.docker.local_base import BuildLocalBase

    result = BuildLocalBase(kind="debian").execute("live")
    assert result.status == "pass", result
    return LOCAL_BASES["debian"]


@pytest.mark.docker
@pytest.mark.slow
def test_generated_dockerfile_builds_on_the_local_base_with_a_stand_in(
    docker_client, debian_base, tracker, tmp_path, uniq
):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    tag = f"labkit-test/{uniq}:torch-standin"
    note = 'quote " dollar $HOME back\\slash 中文'
    spec = dfl.ImageSpec(extra_ca_certs=bool(ib.host_extra_ca_files()), labels={"org.example.note": note})
    lines: list[str] = []
    step = ib.BuildImage(
        ctx,
        tag,
        {
            "BASE_IMAGE": debian_base,
            "TORCH_INDEX_URL": "https://pypi.org/simple",
            "TORCH_PACKAGES": "six==1.16.0",
            "TORCH_DIST": "six",
        },
        spec=spec,
    )
    result = step.execute("live", on_line=lambda stream, line: lines.append(line))
    if result.evidence.get("image_id"):
        tracker.image(result.evidence["image_id"])
    assert result.status == "pass", result
    ev = result.evidence
    assert (ctx / "Dockerfile").read_text() == dfl.build_dockerfile(spec)
    assert ev["recorded_version"] == "1.16.0" and ev["recorded_dist"] == "six"
    assert ev["builder"] in ("buildkit-cli", "sdk-classic") and ev["lint"] == []
    assert ev["layers"] >= 4 and ev["size"] > 0
    image = docker_client.images.get(tag)
    assert image.id == ev["image_id"]
    labels = image.labels
    assert labels["org.example.note"] == note  # quoting survived a real build
    assert labels[LABEL_STEP] == "ch2.docker.build" and labels[LABEL_OBJECT].startswith("image:")
    assert labels[dfl.LABEL_PACKAGES] == "six==1.16.0"
    assert labels["org.opencontainers.image.base.name"] == debian_base
    assert image.attrs["Config"]["User"] == "lab"
    assert any("six" in line for line in lines)  # progress was streamed
    gone = ev["version_container"]["container_id"]
    assert not docker_client.containers.list(all=True, filters={"id": gone})
    assert "stand-in" in result.message


@pytest.mark.docker
def test_sdk_classic_builder_streams_labels_and_reads_the_record(
    docker_client, busybox_base, tracker, tmp_path, uniq
):
    text = (
        f"FROM {busybox_base}\nARG NOTE=unset\n"
        f"RUN echo building $NOTE && mkdir -p /opt/labkit && echo 0.0.{len(uniq)} > {dfl.VERSION_FILE}\n"
        "USER 1000\n"
    )
    ctx = _context(tmp_path, text)
    tag = f"labkit-test/{uniq}:sdk"
    lines: list[str] = []
    result = ib.BuildImage(ctx, tag, {"NOTE": uniq}, buildkit="sdk").execute(
        "live", on_line=lambda s, line: lines.append(line)
    )
    if result.evidence.get("image_id"):
        tracker.image(result.evidence["image_id"])
    assert result.status == "pass", result
    assert result.evidence["builder"] == "sdk-classic"
    assert result.evidence["recorded_version"] == f"0.0.{len(uniq)}"
    assert any(f"building {uniq}" in line for line in lines)
    assert docker_client.images.get(tag).labels[LABEL_CREATED] == "true"


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["sdk", "auto"])
def test_a_failing_run_is_an_error_with_the_log_not_a_traceback(
    docker_client, busybox_base, tmp_path, uniq, builder
):
    ctx = _context(tmp_path, f"FROM {busybox_base}\nRUN echo about-to-fail-{uniq} && false\n")
    tag = f"labkit-test/{uniq}:fails"
    result = ib.BuildImage(ctx, tag, buildkit=builder).execute("live")
    assert result.status == "error", result
    assert "Traceback" not in result.message
    assert "RUN command failed" in result.message or "returned a non-zero code" in result.message
    # the RUN's own output (not just the command line) is in the message
    output = [line for line in result.message.splitlines() if "echo" not in line]
    assert any(line.rstrip().endswith(f"about-to-fail-{uniq}") for line in output), result.message
    assert not docker_client.images.list(name=f"labkit-test/{uniq}")


@pytest.mark.docker
def test_a_missing_base_is_not_pulled_implicitly(tmp_path, docker_client, busybox_base):
    """pull=False: a base that is not on this machine makes the step planned, with the way to get it."""
    spec = dfl.ImageSpec(base_image="nvidia/cuda:12.8.1-runtime-ubuntu24.04")
    step = ib.BuildImage(tmp_path, "labkit-test/never-built:1", spec=spec, pull=False)
    result = step.execute("auto")
    assert (result.status, result.mode) == ("skipped", "plan")
    assert "nvidia/cuda:12.8.1-runtime-ubuntu24.04" in result.message and "pull" in result.message
    assert not (tmp_path / "Dockerfile").exists()  # nothing written: the step only planned
    local = ib.BuildImage(
        tmp_path, "labkit-test/never-built:1", {"BASE_IMAGE": busybox_base}, spec=spec, pull=False
    )
    # the local base is present: it would build
    assert local.unavailable(RunContext(default_runner())) is None
