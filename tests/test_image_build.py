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
from planmatch import execute_and_match

from labkit.errors import ConsentRequired, InvalidField
from labkit.logic import dockerfile as dfl
from labkit.logic import image_build as lib
from labkit.logic.docker_names import LABEL_CREATED, LABEL_OBJECT, LABEL_STEP, LOCAL_BASES
from labkit.steps.base import RunContext
from labkit.steps.docker import build as ib
from labkit.steps.docker import build_context as bc
from labkit.steps.docker import builders
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
    assert result.status == "error"
    assert result.evidence["field"] == "dockerfile"
    assert str(ctx / "Dockerfile") in result.message
    assert "Dockerfile.txt" in result.message
    assert "spec=ImageSpec()" in result.message


def test_a_base_without_apt_is_refused_with_the_debian_local_base_as_the_way(tmp_path):
    """The offline hint used to lead to labkit/busybox:local, whose build stops at 'apt-get: not
    found': a base that cannot run the generated Dockerfile is refused before the engine is asked."""
    debian = LOCAL_BASES["debian"]
    spec = dfl.ImageSpec(base_image=LOCAL_BASES["busybox"])
    result = ib.BuildImage(tmp_path, "labkit-test/x:1", spec=spec).execute("plan")
    assert result.status == "error"
    assert result.evidence["field"] == "base_image"
    assert "apt-get" in result.message and debian in result.evidence["fix"]
    as_arg = ib.BuildImage(tmp_path, "labkit-test/x:1", {"BASE_IMAGE": "alpine:3.20"}, spec=dfl.ImageSpec())
    arg_result = as_arg.execute("plan")
    assert (arg_result.status, arg_result.evidence["field"]) == ("error", "BASE_IMAGE")
    for fits in (debian, "nvidia/cuda:12.8.1-runtime-ubuntu24.04", "debian:12"):
        step = ib.BuildImage(tmp_path, "labkit-test/x:1", spec=dfl.ImageSpec(base_image=fits))
        assert step.plan().files  # planned: the base can run apt-get
    no_apt = _context(tmp_path, "FROM labkit/busybox:local\nRUN echo hi > /hi\nUSER 1000\n")
    assert ib.BuildImage(no_apt, "labkit-test/x:1").plan().commands  # no apt-get: busybox is fine


def test_check_base_fits_reads_the_base_and_the_dockerfile():
    text = dfl.build_dockerfile()
    with pytest.raises(InvalidField) as refused:
        lib.check_base_fits("labkit/busybox:local", text)
    assert refused.value.field == "base_image"
    for base in ("busybox", "docker.io/library/busybox:1.36", "alpine@sha256:" + "0" * 64):
        with pytest.raises(InvalidField):
            lib.check_base_fits(base, text)
    for base in (None, LOCAL_BASES["debian"], "ubuntu:24.04", "myalpine-tools:1"):
        lib.check_base_fits(base, text)
    lib.check_base_fits("busybox", "FROM busybox\nRUN echo apt-get is just a word here\n")


def test_invalid_image_name_and_context(tmp_path):
    ctx = _context(tmp_path)
    result = ib.BuildImage(ctx, "PyTorch-CUDA:latest").execute("plan")
    assert result.status == "error"
    assert result.evidence["field"] == "tag"
    assert "lowercase" in result.message
    result = ib.BuildImage(tmp_path / "nope", "labkit-test/x:1").execute("plan")
    assert result.status == "error"
    assert result.evidence["field"] == "context_dir"


def test_undeclared_build_args_are_refused(tmp_path):
    ctx = _context(tmp_path, dfl.build_dockerfile())
    result = ib.BuildImage(ctx, "labkit-test/x:1", {"BASE_IMAG": "labkit/debian:bookworm-local"}).execute(
        "plan"
    )
    assert result.status == "error"
    assert result.evidence["field"] == "build_args"
    assert "BASE_IMAG" in result.message
    assert "BASE_IMAGE" in result.message


def test_context_size_honours_dockerignore(tmp_path):
    ctx = _context(tmp_path)
    (ctx / "data").mkdir()
    (ctx / "data" / "big.bin").write_bytes(b"x" * 5000)
    (ctx / "keep.txt").write_bytes(b"y" * 10)
    size = bc.context_size(ctx)
    assert size["files"] == 3
    assert size["bytes"] == 5010 + len("FROM debian:12\nUSER 1000\n")
    assert size["largest"][0] == ("data/big.bin", 5000)
    (ctx / ".dockerignore").write_text("# comment\ndata\n")
    size = bc.context_size(ctx)
    assert size["dockerignore"]
    assert ("data/big.bin", 5000) not in size["largest"]
    assert size["bytes"] < 5000


class _NoEngine:
    """A Docker connector that says the engine is up but fails the test if anything is sent."""

    def unavailable(self, *, timeout: float = 5) -> None:
        return None

    def session(self, action, **kw):
        raise AssertionError(f"nothing may reach the engine: {action}")


def _no_process() -> FunctionRunner:
    def handler(argv):
        raise AssertionError(f"nothing may run: {argv}")

    return FunctionRunner(handler)


def test_a_huge_context_needs_consent_before_anything_is_sent(tmp_path):
    ctx = _context(tmp_path)
    with open(ctx / "disk.img", "wb") as fh:  # sparse: 2 GiB that take no space
        fh.truncate(2 * 2**30)
    result = ib.BuildImage(ctx, "labkit-test/x:1").execute("live", runner=_no_process(), docker=_NoEngine())
    assert result.status == "error"
    assert result.evidence["error"] == "ConsentRequired"
    assert "disk.img" in result.message
    assert "allow_large=True" in result.message
    assert "commands" not in result.evidence  # nothing ran, nothing reached the engine


def test_the_context_size_rule():
    size = {"bytes": 2 * 2**30, "files": 2, "largest": [("disk.img", 2 * 2**30)]}
    with pytest.raises(ConsentRequired):
        lib.check_context_size(size, "/ctx")
    warning = lib.check_context_size(size, "/ctx", allow_large=True)
    assert warning is not None
    assert warning.startswith("warning: sending a 2 GiB build context (2 files)")
    assert lib.check_context_size({**size, "bytes": 10}, "/ctx") is None


def test_plan_is_cheap_it_never_measures_the_context(tmp_path, monkeypatch):
    """Panels re-plan on every keystroke: no directory walk in plan (a 2 GiB file is no problem)."""
    ctx = _context(tmp_path)
    with open(ctx / "disk.img", "wb") as fh:
        fh.truncate(2 * 2**30)

    def walk(*a, **kw):
        raise AssertionError("plan() walked the build context")

    monkeypatch.setattr(ib, "context_size", walk)
    result = ib.BuildImage(ctx, "labkit-test/x:1").execute("plan")
    assert result.status == "skipped"
    assert result.mode == "plan"
    assert any("allow_large=True" in n for n in result.evidence["plan"]["notes"])


def test_generated_dockerfile_does_not_replace_a_different_file_without_consent(tmp_path):
    ctx = _context(tmp_path, "FROM debian:12\n")
    result = ib.BuildImage(ctx, "labkit-test/x:1", spec=dfl.ImageSpec()).execute("plan")
    assert result.status == "error"
    assert result.evidence["error"] == "ConsentRequired"
    ok = ib.BuildImage(ctx, "labkit-test/x:1", spec=dfl.ImageSpec(), overwrite=True).execute("plan")
    assert ok.status == "skipped"
    assert ok.mode == "plan"


def test_plan_shows_the_dockerfile_the_command_and_the_lint(tmp_path):
    ctx = _context(tmp_path, _seed_dockerfile())
    result = ib.BuildImage(ctx, "pytorch-cuda:latest").execute("plan")
    plan = result.evidence["plan"]
    assert plan["files"][str(ctx / "Dockerfile")] == _seed_dockerfile()
    cmd = plan["commands"][0]
    assert cmd[:2] == ["env", "DOCKER_BUILDKIT=1"]
    assert Path(cmd[2]).name == "docker"
    assert cmd[3:5] == ["build", "--progress=plain"]
    assert cmd[-1] == str(ctx)
    assert f"{LABEL_CREATED}=true" in cmd
    assert "pytorch-cuda:latest" in cmd
    notes = "\n".join(plan["notes"])
    for code in ("apt-no-recommends", "pip-cache", "cuda-mismatch", "pip-nightly"):
        assert code in notes


def test_plan_lists_every_route_auto_may_take(tmp_path, monkeypatch):
    """The builder is chosen at run time: the plan shows the first route as the command and the
    others (BuildKit through the other CLIs, the SDK classic builder) (alternatives) and their probes."""
    a, b = _fake_cli(tmp_path / "a"), _fake_cli(tmp_path / "b")
    monkeypatch.setattr(ib, "docker_clis", lambda: [str(a), str(b)])
    step = ib.BuildImage(_context(tmp_path), "labkit-test/x:1")
    plan = step.plan()
    call = step.call()
    assert plan.commands == [call.buildkit_argv(str(a))]
    assert call.buildkit_argv(str(b)) in plan.alternatives
    assert call.classic_argv() in plan.alternatives
    assert [str(b), "buildx", "version"] in plan.probes
    assert ["docker", "image", "inspect", "labkit-test/x:1"] in plan.probes


def test_plan_of_the_sdk_route_is_exactly_the_classic_build(tmp_path):
    step = ib.BuildImage(_context(tmp_path), "labkit-test/x:1", {}, buildkit="sdk")
    plan = step.plan()
    assert plan.commands == [step.call().classic_argv()]
    assert plan.probes == [["docker", "image", "inspect", "labkit-test/x:1"]]


# -- one builder for both routes -------------------------------------------------------------------
def test_both_routes_are_built_from_the_same_fields():
    call = lib.BuildCall("/ctx", "/ctx/Dockerfile", "a/b:1", {"X": "1"}, {"org.labkit.created": "true"}, True)
    tail = ["-f", "/ctx/Dockerfile", "-t", "a/b:1", "--no-cache", "--build-arg", "X=1"]
    tail += ["--label", "org.labkit.created=true", "/ctx"]
    assert call.buildkit_argv("/usr/bin/docker")[5:] == tail
    assert call.classic_argv()[5:] == tail
    kwargs = call.sdk_kwargs()
    assert kwargs["dockerfile"] == "Dockerfile"
    assert kwargs["buildargs"] == {"X": "1"}
    assert kwargs["labels"] == {"org.labkit.created": "true"}
    assert kwargs["nocache"] is True
    assert kwargs["forcerm"] is True


def test_image_id_from_the_buildkit_log():
    digest = "sha256:" + "ab" * 32
    log = ["#8 exporting layers done", f"#8 writing image {digest} done", "#8 naming to docker.io/x"]
    assert lib.image_id_from_log(log) == digest
    assert lib.image_id_from_log(["#8 exporting manifest sha256:12 done"]) is None


@pytest.mark.parametrize(
    ("buildx_rc", "version", "ok"),
    [(0, None, True), (1, "20.10.24+dfsg1", True), (1, "28.2.2", False), (1, "", False)],
)
def test_buildkit_verdict(buildx_rc, version, ok):
    assert lib.buildkit_verdict("/usr/bin/docker", buildx_rc, version)[0] is ok


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
def test_buildkit_cli_choice(tmp_path, buildx_rc, version, picked):
    cli = _fake_cli(tmp_path / "bin")

    def handler(argv):
        if argv[1:] == ["buildx", "version"]:
            return (buildx_rc, "github.com/docker/buildx v0.20\n" if buildx_rc == 0 else "", "")
        return (0, version + "\n", "")

    runner = FunctionRunner(handler)
    ctx = RunContext(runner=runner)
    chosen, why = builders.buildkit_cli(ctx, [str(cli)])
    assert (chosen == str(cli)) is picked
    assert why
    assert runner.history[0] == [str(cli), "buildx", "version"]
    assert ctx.commands == runner.history  # the probes are recorded (the plan lists them)


def test_docker_clis_lists_each_executable_once(tmp_path, monkeypatch):
    a = _fake_cli(tmp_path / "a")
    link_dir = tmp_path / "b"
    link_dir.mkdir()
    (link_dir / "docker").symlink_to(a)
    monkeypatch.setenv("PATH", os.pathsep.join([str(a.parent), str(link_dir)]))
    clis = builders.docker_clis()
    assert clis[0] == str(a)
    assert str(link_dir / "docker") not in clis


def test_host_extra_ca_files(tmp_path):
    (tmp_path / "a.crt").write_text("x")
    (tmp_path / "b.pem").write_text("x")
    assert bc.host_extra_ca_files(str(tmp_path)) == [tmp_path / "a.crt"]
    assert bc.host_extra_ca_files(str(tmp_path / "none")) == []


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
    spec = dfl.ImageSpec(extra_ca_certs=bool(bc.host_extra_ca_files()), labels={"org.example.note": note})
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
    assert ev["recorded_version"] == "1.16.0"
    assert ev["recorded_dist"] == "six"
    assert ev["builder"] in ("buildkit-cli", "sdk-classic")
    assert ev["lint"] == []
    assert ev["layers"] >= 4
    assert ev["size"] > 0
    image = docker_client.images.get(tag)
    assert image.id == ev["image_id"]
    labels = image.labels
    assert labels["org.example.note"] == note  # quoting survived a real build
    assert labels[LABEL_STEP] == "ch2.docker.build"
    assert labels[LABEL_OBJECT].startswith("image:")
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
    step = ib.BuildImage(ctx, tag, {"NOTE": uniq}, buildkit="sdk")
    # plan = execution: the SDK call is recorded as its CLI form, which is the planned command
    result, ran = execute_and_match(step, on_line=lambda s, line: lines.append(line))
    if result.evidence.get("image_id"):
        tracker.image(result.evidence["image_id"])
    assert result.status == "pass", result
    assert ran[0] == step.call().classic_argv()
    assert list(step.version_call().argv) in ran  # the labelled container that read the record
    assert result.evidence["builder"] == "sdk-classic"
    assert result.evidence["recorded_version"] == f"0.0.{len(uniq)}"
    assert any(f"building {uniq}" in line for line in lines)
    assert docker_client.images.get(tag).labels[LABEL_CREATED] == "true"


@pytest.mark.docker
def test_buildkit_route_runs_exactly_the_planned_command(
    docker_client, busybox_base, tracker, tmp_path, uniq, monkeypatch
):
    """Plan = execution on the BuildKit route. With one docker CLI on PATH (Debian's) the plan's
    command is the build that runs; the CLI's probes are planned too."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    clis = builders.docker_clis()
    cli, why = builders.buildkit_cli(RunContext(default_runner()), clis[:1])
    if cli is None:
        pytest.skip(f"no BuildKit-capable docker CLI in /usr/bin: {why}")
    ctx = _context(tmp_path, f"FROM {busybox_base}\nRUN echo built-{uniq}\nUSER 1000\n")
    tag = f"labkit-test/{uniq}:buildkit"
    step = ib.BuildImage(ctx, tag, buildkit="buildkit")
    result, ran = execute_and_match(step)
    if result.evidence.get("image_id"):
        tracker.image(result.evidence["image_id"])
    assert result.status == "pass", result
    assert result.evidence["builder"] == "buildkit-cli"
    assert step.call().buildkit_argv(cli) in ran
    assert docker_client.images.get(tag).id == result.evidence["image_id"]


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
    assert "nvidia/cuda:12.8.1-runtime-ubuntu24.04" in result.message
    assert "pull" in result.message
    assert not (tmp_path / "Dockerfile").exists()  # nothing written: the step only planned
    local = ib.BuildImage(
        tmp_path, "labkit-test/never-built:1", {"BASE_IMAGE": busybox_base}, spec=spec, pull=False
    )
    # the local base is present: nothing to download (whether it can run the Dockerfile is the
    # plan's business: test_a_base_without_apt_is_refused_with_the_debian_local_base_as_the_way)
    assert local.unavailable(RunContext(default_runner())) is None
