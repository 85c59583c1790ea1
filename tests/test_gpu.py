"""The GPU steps: on this CPU machine they are skipped with a clear reason, never a crash.

The probe's JSON handling is tested with canned probe outputs (FunctionRunner); the probe itself runs
for real in a child process: in labkit's venv (no torch: "torch not installed") and, when a Python
with torch is available (``LABKIT_TEST_TORCH_PYTHON``, or torch importable here), there too
("no GPU" with the torch version). On a GPU machine the same test reports the benchmark.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from planmatch import execute_and_match

from labkit.logic import gpu as lg
from labkit.logic.host import GpuInfo, parse_nvidia_smi
from labkit.steps import gpu, gpu_probe
from labkit.steps.runner import Completed, FunctionRunner

SMI = """\
Tue Jul 29 18:29:16 2025
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 550.127.05             Driver Version: 550.127.05     CUDA Version: 12.4     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |
|                                         |                        |               MIG M. |
|=========================================+========================+======================|
|   0  NVIDIA A10G                    On  |   00000000:00:1E.0 Off |                    0 |
|  0%   30C    P8             10W /  300W |       1MiB /  23028MiB |      0%      Default |
+-----------------------------------------+------------------------+----------------------+
|   1  NVIDIA H100 80GB HBM3          Off |   00000000:00:1F.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
"""


@pytest.fixture(autouse=True)
def _english(monkeypatch):
    monkeypatch.setenv("LABKIT_LANG", "en")


# -- the peak table ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("device", "name"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H200", "H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A10", "A10"),
        ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"),
    ],
)
def test_match_peak(device, name):
    peak = lg.match_peak(device)
    assert peak is not None
    assert peak.name == name
    assert peak.tflops > 0


@pytest.mark.parametrize("device", ["NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA A10G", "Tesla T4", ""])
def test_unknown_variants_get_no_peak_rather_than_a_wrong_one(device):
    assert lg.match_peak(device) is None


def test_h100_peak_is_the_dense_figure():
    h100 = lg.match_peak("NVIDIA H100 80GB HBM3")
    assert h100 is not None
    assert h100.tflops < 1000  # 1,979 is the sparse figure


_SPARSE = re.compile(r"([\d,.]+) ([TP])FLOPS[^;]*with sparsity")


@pytest.mark.parametrize(
    "peak", [p for p in lg.DENSE_BF16_PEAK if "with sparsity" in p.source], ids=lambda p: p.name
)
def test_each_dense_peak_is_half_the_sparse_figure_its_source_quotes(peak):
    m = _SPARSE.search(peak.source)
    assert m is not None, peak.source
    sparse = float(m.group(1).replace(",", "")) * (1000 if m.group(2) == "P" else 1)
    # L40S: the datasheet prints 362.05 | 733, not exactly 2x; a sparse figure would give 1.0
    assert sparse / peak.tflops == pytest.approx(2.0, rel=0.03)


def test_every_peak_names_its_source():
    assert [p.name for p in lg.DENSE_BF16_PEAK if not p.source.strip()] == []


# -- parsing ---------------------------------------------------------------------------------------
def test_smi_summary_of_the_table():
    assert lg.smi_summary(SMI) == {
        "driver": "550.127.05",
        "cuda": "12.4",
        "gpus": ["NVIDIA A10G", "NVIDIA H100 80GB HBM3"],
    }
    assert lg.smi_summary("") == {"driver": None, "cuda": None, "gpus": []}


def test_the_one_nvidia_smi_parser_reads_the_table_too():
    """``labkit doctor`` reads the CSV query form, the GPU container the table: one parser."""
    assert parse_nvidia_smi(SMI) == (
        GpuInfo("NVIDIA A10G", "550.127.05", "23028 MiB"),
        GpuInfo("NVIDIA H100 80GB HBM3", "550.127.05", ""),  # no memory row below it in SMI
    )


def test_parse_probe_output_takes_the_marked_line():
    data = {"torch": "2.9.1", "error": None}
    text = "some warning\nLABKIT-PROBE " + json.dumps(data) + "\ntrailing\n"
    assert lg.parse_probe_output(text) == data
    with pytest.raises(ValueError):
        lg.parse_probe_output("Segmentation fault\n")


def test_the_probe_prints_the_mark_the_parser_reads():
    assert gpu_probe.MARK == lg.PROBE_MARK


@pytest.mark.parametrize(
    ("info", "how"),
    [
        ({"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}, "runtime:nvidia"),
        (
            {"Runtimes": {"runc": {}}, "CDISpecDirs": ["/etc/cdi", "/var/run/cdi"]},
            "cdi:/etc/cdi,/var/run/cdi",
        ),
        ({"Runtimes": {"runc": {}}}, None),
    ],
)
def test_gpu_runtime(info, how):
    assert lg.gpu_runtime(info) == how


def test_gpu_runtime_via_the_toolkit_hook():
    how = lg.gpu_runtime({"Runtimes": {"runc": {}}}, hook_on_path=True)
    assert how == "hook:nvidia-container-runtime-hook"


def _foreign_probe(size: int, *, python_flags: tuple[str, ...] = ("-S",), **kw) -> list[str]:
    """The argv labkit builds for another interpreter, run with this one (``-S``: no site-packages,
    so neither labkit nor anything else installed is importable)."""
    argv = gpu.torch_probe_argv(
        "/elsewhere/bin/python3", size, kw.get("iters", 1), kw.get("repeats", 1), kw.get("warmup", 0)
    )
    assert argv[1] == "-c"
    return [sys.executable, *python_flags, *argv[1:]]


def test_probe_file_runs_without_labkit():
    """The foreign-interpreter form must work in a Python that has torch but not labkit."""
    done = subprocess.run(_foreign_probe(64), capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    data = lg.parse_probe_output(done.stdout)
    assert data["error"] == "no-torch"
    assert data["python"] == ".".join(map(str, sys.version_info[:3]))


# -- the torch check against canned probe outputs ----------------------------------------------------
def _runner(payload: dict | None, rc: int = 0, stderr: str = "") -> FunctionRunner:
    def handler(argv):
        out = "LABKIT-PROBE " + json.dumps(payload) + "\n" if payload is not None else ""
        return Completed(argv, rc, out, stderr)

    return FunctionRunner(handler)


def test_no_torch_is_skipped_with_the_install_hint():
    result = gpu.TorchGpuCheck().execute("live", runner=_runner({"error": "no-torch", "torch": None}))
    assert result.status == "skipped"
    assert result.mode == "run"
    assert "torch not installed: pip install labkit[gpu]" in result.message


def test_no_gpu_is_skipped_with_the_torch_version():
    payload = {"error": "no-gpu", "torch": "2.13.0+cpu", "torch_cuda": None, "cuda_available": False}
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(payload))
    assert result.status == "skipped"
    assert "no GPU: torch.cuda.is_available() is False" in result.message
    assert result.evidence["torch"] == "2.13.0+cpu"
    assert "2.13.0+cpu" in result.message


def test_a_crashed_probe_is_an_error_not_a_crash():
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(None, rc=-11, stderr="Segmentation fault"))
    assert result.status == "error"
    assert "-11" in result.message
    assert "Segmentation fault" in result.evidence["stderr_tail"]


def test_cuda_error_is_reported():
    payload = {
        "error": "cuda-error",
        "torch": "2.9.1",
        "detail": "RuntimeError: CUDA driver version is insufficient",
    }
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(payload))
    assert result.status == "error"
    assert "insufficient" in result.message


def _bench_payload(device: str, ms: list[float], n: int = 8192, finite: bool = True) -> dict:
    flops = 2.0 * n**3
    return {
        "error": None,
        "torch": "2.9.1+cu128",
        "torch_cuda": "12.8",
        "cuda_available": True,
        "device": device,
        "benchmark": {
            "n": n,
            "ms_per_matmul": ms,
            "tflops_best": round(flops / (min(ms) * 1e-3) / 1e12, 2),
            "finite": finite,
        },
    }


def test_benchmark_reports_tflops_and_percent_of_peak():
    payload = _bench_payload("NVIDIA H100 80GB HBM3", [1.71, 1.65, 1.68])
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(payload))
    assert result.status == "pass"
    tflops = payload["benchmark"]["tflops_best"]
    assert result.evidence["ratio"] == round(tflops / 989.4, 3)
    assert f"{tflops} TFLOPS" in result.message
    assert "H100 SXM" in result.message
    assert f"{result.evidence['ratio']:.0%} of the H100 SXM dense peak" in result.message


def test_min_ratio_turns_a_slow_card_into_a_fail():
    payload = _bench_payload("NVIDIA H100 80GB HBM3", [4.0])
    result = gpu.TorchGpuCheck(min_ratio=0.6).execute("live", runner=_runner(payload))
    assert result.status == "fail"
    assert "below the target 60%" in result.message


def test_unknown_card_passes_without_a_ratio():
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(_bench_payload("NVIDIA A10G", [20.0])))
    assert result.status == "pass"
    assert result.evidence["ratio"] is None
    assert "not in the peak table" in result.message


def test_a_nan_matmul_fails():
    payload = _bench_payload("NVIDIA L4", [10.0], finite=False)
    result = gpu.TorchGpuCheck().execute("live", runner=_runner(payload))
    assert result.status == "fail"
    assert "NaN" in result.message


def test_bad_sizes_are_refused():
    result = gpu.TorchGpuCheck(size=-1).execute("plan")
    assert result.status == "error"
    assert result.evidence["field"] == "size"


def test_plan_names_the_course_check():
    result = gpu.TorchGpuCheck().execute("plan")
    plan = result.evidence["plan"]
    assert plan["commands"][0][1:3] == ["-m", "labkit.steps.gpu"]
    assert any("torch.cuda.is_available()" in n for n in plan["notes"])


@pytest.mark.parametrize("python", [None, "/elsewhere/bin/python3"], ids=["labkit", "foreign"])
def test_the_torch_probe_runs_exactly_the_planned_argv(python):
    """Plan = execution, with a FunctionRunner standing in for the child process: the probe itself
    needs torch and a GPU, which this CPU machine lacks (its real runs are the tests below)."""
    payload = {"error": "no-gpu", "torch": "2.9.1+cpu", "torch_cuda": None}
    step = gpu.TorchGpuCheck(python=python, size=64)
    result, ran = execute_and_match(step, runner=_runner(payload))
    assert result.status == "skipped"
    assert ran == [gpu.torch_probe_argv(step.python, 64, 20, 5, 10)]


def test_a_foreign_interpreter_runs_the_probe_file_not_labkit():
    argv = gpu.torch_probe_argv("/elsewhere/bin/python3", 64, 1, 1, 0)
    assert argv[:2] == ["/elsewhere/bin/python3", "-c"]
    assert repr(str(gpu.PROBE_FILE)) in argv[2]
    assert argv[3:5] == ["--size", "64"]


# -- docker run --gpus all against a stand-in engine -------------------------------------------------
class _FakeContainer:
    id = "c0ffee"

    def __init__(self, log: str) -> None:
        self.log = log
        self.removed = False

    def start(self) -> None:
        pass

    def wait(self, timeout=None) -> dict:
        return {"StatusCode": 0}

    def logs(self, stdout=True, stderr=True) -> bytes:
        return self.log.encode()

    def remove(self, force=False) -> None:
        self.removed = True


class _FakeEngine:
    """A Docker connector (``ctx.docker``) whose engine has an NVIDIA runtime and prints ``SMI``."""

    def __init__(self) -> None:
        self.created: list[dict] = []
        self.container = _FakeContainer(SMI)
        engine = self

        class Client:
            def info(self) -> dict:
                return {"Runtimes": {"runc": {}, "nvidia": {}}}

            class images:
                @staticmethod
                def get(ref):
                    return ref

            class containers:
                @staticmethod
                def create(**kwargs):
                    engine.created.append(kwargs)
                    return engine.container

        self.client = Client()

    def unavailable(self, *, timeout: float = 5) -> None:
        return None

    @contextlib.contextmanager
    def session(self, action, **kw):
        yield self.client


def test_the_gpu_container_runs_exactly_the_planned_command():
    """Plan = execution for ``docker run --gpus all``: this machine's engine has no NVIDIA runtime,
    so a stand-in connector plays the engine; the SDK call must be the planned CLI line."""
    engine = _FakeEngine()
    step = gpu.GpuRunPlan()
    result, ran = execute_and_match(step, docker=engine)
    assert result.status == "pass", result
    call = lg.gpu_run_call(step.image, ["nvidia-smi"], step.labels)
    assert call.argv in ran
    assert step.plan().commands == [call.argv]
    created = engine.created[0]
    assert created["labels"] == step.labels
    assert [f"{k}={v}" for k, v in created["labels"].items()] == call.argv[6:-2:2]
    assert created["device_requests"][0]["Count"] == -1
    assert created["device_requests"][0]["Capabilities"] == [["gpu"]]
    assert engine.container.removed
    assert result.evidence["gpus"] == ["NVIDIA A10G", "NVIDIA H100 80GB HBM3"]
    assert result.evidence["runtime"] == "runtime:nvidia"


# -- for real: child processes ------------------------------------------------------------------------
def test_probe_in_labkits_venv_without_torch_is_skipped():
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed in this interpreter (the no-torch case needs it absent)")
    step = gpu.TorchGpuCheck(size=256)
    result, ran = execute_and_match(step)
    assert result.status == "skipped", result
    assert result.message == "torch not installed: pip install labkit[gpu]"
    assert result.evidence["returncode"] == 0
    assert "No module named 'torch'" in result.evidence["detail"]
    assert ran[0][1:3] == ["-m", "labkit.steps.gpu"]


def _torch_python() -> str | None:
    explicit = os.environ.get("LABKIT_TEST_TORCH_PYTHON")
    if explicit:
        return explicit
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    return None


def test_probe_with_torch_reports_no_gpu_or_the_benchmark():
    python = _torch_python()
    if python is None:
        pytest.skip(
            "no Python with torch here: set LABKIT_TEST_TORCH_PYTHON (torch stays out of labkit's venv)"
        )
    probe = subprocess.run(
        [python, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        check=True,
    )
    has_gpu = probe.stdout.strip().endswith("True")
    result, _ran = execute_and_match(gpu.TorchGpuCheck(python=python, size=1024 if not has_gpu else 8192))
    assert result.evidence["torch"], result
    if has_gpu:
        assert result.status == "pass", result
        assert result.evidence["benchmark"]["tflops_best"] > 0
    else:
        assert result.status == "skipped", result
        assert result.message.startswith("no GPU: torch.cuda.is_available() is False")
        assert result.evidence["torch"] in result.message


@pytest.mark.docker
def test_docker_gpu_run_is_skipped_with_the_toolkit_steps_without_an_nvidia_runtime():
    from labkit.steps.docker.engine import DockerEngine

    with DockerEngine().session("docker info") as client:
        info = client.info()
    if lg.gpu_runtime(info) is not None:
        pytest.skip("this engine has an NVIDIA runtime")
    result = gpu.GpuRunPlan().execute("auto")
    assert result.status == "skipped"
    assert result.mode == "plan"
    assert "no NVIDIA runtime" in result.message
    plan = result.evidence["plan"]
    assert plan["commands"][0][:5] == ["docker", "run", "--rm", "--gpus", "all"]
    assert plan["probes"] == [["docker", "info"]]
    assert "sudo apt-get install -y nvidia-container-toolkit" in plan["notes"]
    live = gpu.GpuRunPlan().execute("live")
    assert live.status == "error"
    assert "no NVIDIA runtime" in live.message


# -- the benchmark code path, against a stand-in torch (no GPU here) ---------------------------------
FAKE_TORCH = '''
"""A stand-in for the parts of torch the probe uses: a 'GPU' whose matmul takes MS_PER_MM ms."""
import types

__version__ = "9.9.9+fake"
with open(__file__ + ".ms") as fh:
    MS_PER_MM = float(fh.read())
with open(__file__ + ".maxn") as fh:
    MAX_N = int(fh.read())
bfloat16 = "bfloat16"
version = types.SimpleNamespace(cuda="12.8")
_calls = [0]


class _T:
    def __init__(self, n):
        self.n = n

    def __getitem__(self, key):
        return self

    def float(self):
        return self

    def all(self):
        return self

    def item(self):
        return True


class _Event:
    def __init__(self, enable_timing=False):
        self.count = None

    def record(self):
        self.count = _calls[0]

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.count - self.count) * MS_PER_MM


class _OOM(RuntimeError):
    pass


def _props(i):
    return types.SimpleNamespace(total_memory=80 * 2**30, multi_processor_count=132)


cuda = types.SimpleNamespace(
    is_available=lambda: True,
    device_count=lambda: 1,
    get_device_name=lambda i: "NVIDIA H100 80GB HBM3",
    get_device_properties=_props,
    get_device_capability=lambda i: (9, 0),
    is_bf16_supported=lambda: True,
    synchronize=lambda: None,
    empty_cache=lambda: None,
    Event=_Event,
    OutOfMemoryError=_OOM,
)


def device(kind, index):
    return (kind, index)


def randn(n, m, device=None, dtype=None):
    if n > MAX_N:
        raise _OOM("fake out of memory")
    return _T(n)


empty = randn


def mm(a, b, out=None):
    _calls[0] += 1
    return out


def isfinite(x):
    return x
'''


@pytest.mark.parametrize(("size", "max_n"), [(4096, 8192), (8192, 2048)])
def test_benchmark_path_with_a_stand_in_torch(tmp_path, size, max_n):
    """Runs the probe's GPU branch for real (child process) against a fake torch with known timing."""
    fake = tmp_path / "torch.py"
    fake.write_text(FAKE_TORCH)
    ms = 2.5
    (tmp_path / "torch.py.ms").write_text(str(ms))
    (tmp_path / "torch.py.maxn").write_text(str(max_n))
    argv = _foreign_probe(size, iters=4, repeats=3, warmup=2)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    data = lg.parse_probe_output(done.stdout)
    n = min(size, max_n)  # out of memory → the probe halves N until it fits
    bench = data["benchmark"]
    assert data["error"] is None
    assert data["device"] == "NVIDIA H100 80GB HBM3"
    assert data["capability"] == [9, 0]
    assert bench["n"] == n
    assert bench["ms_per_matmul"] == [ms] * 3
    assert bench["tflops_best"] == round(2 * n**3 / (ms * 1e-3) / 1e12, 2)
    runner = FunctionRunner(lambda argv: Completed(argv, 0, done.stdout, ""))
    result = gpu.TorchGpuCheck(size=size).execute("live", runner=runner)
    assert result.status == "pass"
    assert result.evidence["ratio"] == round(bench["tflops_best"] / 989.4, 3)
