"""Chapter 2a, the GPU: ``docker run --gpus all`` and the course's torch check, plus a benchmark.

:class:`GpuRunPlan` (``ch2.docker.gpu``) is the course's ``docker run --gpus all …`` (2.4.4). Through
the SDK the flag is ``device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])]``. It runs
only where the engine can hand out NVIDIA GPUs: a runtime named ``nvidia`` in ``docker info``, CDI
spec directories (engine ≥ 25), or the NVIDIA container toolkit's hook on PATH (what ``--gpus``
uses on engines without a registered runtime). Elsewhere it is *skipped*, and the plan carries the
toolkit installation steps of the course (2.4.3) as text.

:class:`TorchGpuCheck` (``ch2.gpu.torch``) is the course's check (``torch.__version__``,
``torch.cuda.is_available()``, ``torch.cuda.get_device_name(0)``) plus a short bf16 matmul
benchmark: N×N (default 8192) bf16 matrices, a warm-up, then timed batches between
``torch.cuda.Event`` pairs; ``2·N³`` floating point operations per matmul. The achieved TFLOPS are
compared with the card's dense bf16 peak from :data:`DENSE_BF16_PEAK` (datasheet numbers *without*
2:4 sparsity, which the datasheets print first and which doubles them).

The probe runs in a **separate process** (``python -c`` with the probe's source, so it works in any
interpreter that has torch, or ``python -m labkit.steps.gpu``): a broken CUDA install, a driver
mismatch or a segfault in a kernel library then ends that process, not the Jupyter kernel. Its one
line of JSON is parsed here. Without torch the result is *skipped* ("torch not installed: pip
install labkit[gpu]"); with torch but no GPU it is *skipped* ("no GPU: torch.cuda.is_available() is
False") with the torch version as evidence; never a crash.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic import cuda_images as ci
from labkit.logic.docker_names import labkit_labels, validate_reference
from labkit.steps.base import Plan, RunContext, Step

__all__ = [
    "DENSE_BF16_PEAK",
    "TOOLKIT_INSTALL",
    "GpuPeak",
    "GpuRunPlan",
    "TorchGpuCheck",
    "gpu_runtime",
    "match_peak",
    "parse_nvidia_smi",
    "parse_probe_output",
    "probe",
]


# ----------------------------------------------------------------------------------------------
# Peak table
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuPeak:
    """Dense bf16 tensor-core peak of one card, matched on ``torch.cuda.get_device_name()``."""

    pattern: str  # regular expression, searched case-insensitively in the device name
    name: str
    tflops: float
    data_centre: bool
    source: str


#: Dense (no sparsity) bf16 peaks with fp32 accumulation, most specific pattern first. Variants not
#: listed (H100 NVL, H200 NVL, A10G, …) get no ratio rather than a wrong one.
DENSE_BF16_PEAK: tuple[GpuPeak, ...] = (
    GpuPeak(r"\bH100\b.*\bNVL\b", "H100 NVL", 0.0, True, "not in labkit's table"),
    GpuPeak(r"\bH200\b.*\bNVL\b", "H200 NVL", 0.0, True, "not in labkit's table"),
    GpuPeak(r"\bH100\b.*\bPCIe\b", "H100 PCIe", 756.0, True, "H100 datasheet: 1,513 TFLOPS with sparsity"),
    GpuPeak(r"\bH100\b", "H100 SXM", 989.4, True, "H100 datasheet: 1,979 TFLOPS with sparsity"),
    GpuPeak(r"\bH200\b", "H200 SXM", 989.4, True, "same GH100 silicon and clocks as H100 SXM"),
    GpuPeak(r"\bGH200\b", "GH200", 989.4, True, "Hopper GPU of GH200, as H100 SXM"),
    GpuPeak(r"\bB200\b", "B200", 2250.0, True, "HGX B200: 4.5 PFLOPS FP16/BF16 with sparsity"),
    GpuPeak(r"\bA100\b", "A100", 312.0, True, "A100 datasheet: 624 TFLOPS with sparsity"),
    GpuPeak(r"\bL40S\b", "L40S", 362.05, True, "L40S datasheet: 733 TFLOPS with sparsity"),
    GpuPeak(r"\bL40\b", "L40", 181.05, True, "L40 datasheet: 362.1 TFLOPS with sparsity"),
    GpuPeak(r"\bL4\b", "L4", 121.0, True, "L4 datasheet: 242 TFLOPS with sparsity"),
    GpuPeak(r"\bA10\b", "A10", 125.0, True, "A10 datasheet: 250 TFLOPS with sparsity"),
    GpuPeak(r"RTX 4090\b", "GeForce RTX 4090", 165.2, False, "Ada whitepaper: FP32-accumulate rate"),
)


def match_peak(device_name: str) -> GpuPeak | None:
    """The table entry for a device name (``"NVIDIA H100 80GB HBM3"`` → H100 SXM), if any."""
    for peak in DENSE_BF16_PEAK:
        if re.search(peak.pattern, device_name or "", re.I):
            return peak if peak.tflops > 0 else None
    return None


# ----------------------------------------------------------------------------------------------
# The probe (runs in a child process; only the standard library and torch)
# ----------------------------------------------------------------------------------------------
def probe(size: int = 8192, iters: int = 20, repeats: int = 5, warmup: int = 10) -> dict:
    """Collect what the course prints and time a bf16 matmul; returns a JSON-able dict.

    Self-contained on purpose (its source is sent to ``python -c``): imports inside, no labkit.
    """
    import platform
    import time
    import warnings

    out: dict = {"python": platform.python_version(), "torch": None, "error": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import torch
        except Exception as exc:  # ImportError, or a broken install raising something else
            out["error"] = "no-torch"
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
        try:
            available = bool(torch.cuda.is_available())
        except Exception as exc:
            available = False
            out["detail"] = f"{type(exc).__name__}: {exc}"
        out["cuda_available"] = available
        out["warnings"] = [str(w.message)[:300] for w in caught]
    if not available:
        out["error"] = "no-gpu"
        return out
    try:
        out["device_count"] = torch.cuda.device_count()
        out["device"] = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        out["capability"] = list(torch.cuda.get_device_capability(0))
        out["memory_gib"] = round(props.total_memory / 2**30, 1)
        out["sm_count"] = props.multi_processor_count
        out["bf16_supported"] = bool(torch.cuda.is_bf16_supported())
        driver_version = getattr(getattr(torch, "_C", None), "_cuda_getDriverVersion", None)
        out["driver_cuda"] = driver_version() if driver_version else None  # e.g. 12080 = CUDA 12.8
    except Exception as exc:
        out["error"] = "cuda-error"
        out["detail"] = f"{type(exc).__name__}: {exc}"
        return out
    if size <= 0:
        return out
    dev = torch.device("cuda", 0)
    n = int(size)
    while True:
        try:
            a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
            b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
            c = torch.empty(n, n, device=dev, dtype=torch.bfloat16)
            break
        except torch.cuda.OutOfMemoryError:
            if n <= 1024:
                out["error"] = "cuda-error"
                out["detail"] = "out of GPU memory even for 1024x1024"
                return out
            n //= 2
            torch.cuda.empty_cache()
    try:
        for _ in range(max(1, warmup)):
            torch.mm(a, b, out=c)
        torch.cuda.synchronize()
        per_matmul_ms = []
        wall0 = time.perf_counter()
        for _ in range(max(1, repeats)):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(max(1, iters)):
                torch.mm(a, b, out=c)
            end.record()
            end.synchronize()
            per_matmul_ms.append(start.elapsed_time(end) / max(1, iters))
        wall = time.perf_counter() - wall0
        flops = 2.0 * n**3
        best = min(per_matmul_ms)
        out["benchmark"] = {
            "n": n,
            "dtype": "bfloat16",
            "iters": iters,
            "repeats": repeats,
            "warmup": warmup,
            "ms_per_matmul": [round(t, 4) for t in per_matmul_ms],
            "tflops_best": round(flops / (best * 1e-3) / 1e12, 2),
            "tflops_mean": round(flops / (sum(per_matmul_ms) / len(per_matmul_ms) * 1e-3) / 1e12, 2),
            "wall_s": round(wall, 3),
            "finite": bool(torch.isfinite(c[:8, :8].float()).all().item()),
        }
    except Exception as exc:
        out["error"] = "cuda-error"
        out["detail"] = f"{type(exc).__name__}: {exc}"
    return out


def _probe_code(size: int, iters: int, repeats: int, warmup: int) -> str:
    """Source for ``python -c``: the probe function, then one JSON line on stdout."""
    src = textwrap.dedent(inspect.getsource(probe))
    call = f"probe(size={int(size)}, iters={int(iters)}, repeats={int(repeats)}, warmup={int(warmup)})"
    return f"{src}\nimport json\nprint('LABKIT-PROBE ' + json.dumps({call}))\n"


_MARK = "LABKIT-PROBE "


def parse_probe_output(stdout: str) -> dict[str, Any]:
    """The probe's JSON from its stdout (last marked line); raises ``ValueError`` if there is none."""
    for line in reversed((stdout or "").splitlines()):
        if line.startswith(_MARK):
            data = json.loads(line[len(_MARK) :])
            if not isinstance(data, dict):
                break
            return data
    raise ValueError("no probe output")


# ----------------------------------------------------------------------------------------------
# The torch check
# ----------------------------------------------------------------------------------------------
class TorchGpuCheck(Step):
    """The course's torch GPU check plus a bf16 matmul benchmark, in a child process."""

    check_id = "ch2.gpu.torch"
    timeout = 300.0

    def __init__(
        self,
        *,
        python: str | None = None,
        size: int = 8192,
        iters: int = 20,
        repeats: int = 5,
        warmup: int = 10,
        min_ratio: float | None = None,
    ) -> None:
        self.python = python or sys.executable
        self.size = size
        self.iters = iters
        self.repeats = repeats
        self.warmup = warmup
        self.min_ratio = min_ratio

    def _validate(self) -> None:
        for name, value, low, high in (
            ("size", self.size, 0, 65536),
            ("iters", self.iters, 1, 10000),
            ("repeats", self.repeats, 1, 1000),
            ("warmup", self.warmup, 0, 1000),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InvalidField(
                    name,
                    value,
                    tr("不在 {a}..{b} 之间", "is not within {a}..{b}", a=low, b=high),
                    tr("用整数", "use an integer"),
                )
        if self.min_ratio is not None and not 0 < self.min_ratio <= 1:
            raise InvalidField(
                "min_ratio", self.min_ratio, tr("不在 (0, 1] 之间", "is not within (0, 1]"), ""
            )

    def _opts(self) -> list[str]:
        return [
            *("--size", str(self.size), "--iters", str(self.iters)),
            *("--repeats", str(self.repeats), "--warmup", str(self.warmup)),
        ]

    def _argv(self) -> list[str]:
        """``python -m labkit.steps.gpu`` in labkit's own interpreter; elsewhere (a venv that has
        torch but not labkit, say) the probe's source through ``python -c``."""
        if os.path.realpath(self.python) == os.path.realpath(sys.executable):
            return [self.python, "-m", "labkit.steps.gpu", *self._opts()]
        return [self.python, "-c", _probe_code(self.size, self.iters, self.repeats, self.warmup)]

    def plan(self) -> Plan:
        self._validate()
        return Plan(
            step=self.check_id,
            reason=tr(
                "在独立进程里检查 PyTorch 能否用 GPU，并测 bf16 矩阵乘的实际算力",
                "check in a separate process that PyTorch sees the GPU, and measure bf16 matmul throughput",
            ),
            commands=[[self.python, "-m", "labkit.steps.gpu", *self._opts()]],
            notes=[
                tr(
                    "课程 2.4.4 的检查：torch.__version__、torch.cuda.is_available()、"
                    "torch.cuda.get_device_name(0)",
                    "the course's 2.4.4 check: torch.__version__, torch.cuda.is_available(), "
                    "torch.cuda.get_device_name(0)",
                ),
                tr(
                    "基准：{n}×{n} bf16 矩阵，预热 {w} 次，{r} 组×{i} 次，用 torch.cuda.Event 计时；"
                    "每次乘法 2·N³ 次浮点运算；与该卡的稠密 bf16 峰值（不含稀疏）比较",
                    "benchmark: {n}×{n} bf16 matrices, {w} warm-up runs, {r} batches of {i}, timed with "
                    "torch.cuda.Event; 2·N³ flops per matmul; compared with the card's dense bf16 peak "
                    "(no sparsity)",
                    n=self.size,
                    w=self.warmup,
                    r=self.repeats,
                    i=self.iters,
                ),
                tr(
                    "在子进程里运行：CUDA 出问题时只结束子进程，不会让 Jupyter 内核崩溃",
                    "runs in a child process: a broken CUDA ends that process, not the Jupyter kernel",
                ),
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        self._validate()
        argv = self._argv()
        # Record a readable command: the -c form would put the probe's whole source in the evidence.
        ctx.commands.append(argv if argv[1] == "-m" else [argv[0], "-c", "<labkit.steps.gpu.probe>"])
        done = ctx.runner.run(argv, timeout=self.timeout, cancel=ctx.cancel, check=False)
        ev: dict[str, Any] = {"interpreter": self.python, "returncode": done.returncode}
        try:
            ev["probe"] = parse_probe_output(done.stdout)
        except ValueError:
            ev["probe"] = None
            ev["stdout_tail"] = done.stdout[-2000:]
            ev["stderr_tail"] = done.stderr[-2000:]
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        data = evidence.get("probe")
        base = {"interpreter": evidence.get("interpreter"), "returncode": evidence.get("returncode")}
        if not data:
            return CheckResult.errored(
                self.check_id,
                tr(
                    "GPU 检查进程异常退出（状态 {c}），没有给出结果：{e}",
                    "the GPU probe process ended abnormally (status {c}) without a result: {e}",
                    c=evidence.get("returncode"),
                    e=(evidence.get("stderr_tail") or "").strip().splitlines()[-1:] or "-",
                ),
                **base,
                stderr_tail=evidence.get("stderr_tail", ""),
            )
        ev = {**base, **{k: v for k, v in data.items() if k != "benchmark"}}
        error = data.get("error")
        if error == "no-torch":
            return CheckResult.skipped(
                self.check_id,
                tr(
                    "未安装 torch：pip install labkit[gpu]",
                    "torch not installed: pip install labkit[gpu]",
                ),
                **ev,
            )
        if error == "no-gpu":
            return CheckResult.skipped(
                self.check_id,
                tr(
                    "没有 GPU：torch.cuda.is_available() 为 False（torch {v}，构建于 CUDA {c}）",
                    "no GPU: torch.cuda.is_available() is False (torch {v}, built for CUDA {c})",
                    v=data.get("torch"),
                    c=data.get("torch_cuda") or tr("无（CPU 版）", "none (CPU build)"),
                ),
                **ev,
            )
        if error == "cuda-error":
            return CheckResult.errored(
                self.check_id,
                tr("CUDA 出错：{d}", "CUDA error: {d}", d=data.get("detail", "")),
                **ev,
            )
        bench = data.get("benchmark") or {}
        device = str(data.get("device", ""))
        peak = match_peak(device)
        ev["benchmark"] = bench
        ev["peak"] = (
            {"name": peak.name, "tflops": peak.tflops, "source": peak.source, "data_centre": peak.data_centre}
            if peak
            else None
        )
        tflops = bench.get("tflops_best")
        ratio = round(tflops / peak.tflops, 3) if (peak and tflops) else None
        ev["ratio"] = ratio
        if bench and not bench.get("finite", True):
            return CheckResult.failed(
                self.check_id, tr("矩阵乘结果含 NaN/Inf", "the matmul produced NaN/Inf"), **ev
            )
        parts = [
            tr("PyTorch {v}，GPU：{d}", "PyTorch {v}, GPU: {d}", v=data.get("torch"), d=device),
        ]
        if tflops:
            parts.append(
                tr("bf16 {n}×{n} 矩阵乘 {t} TFLOPS", "bf16 {n}×{n} matmul {t} TFLOPS", n=bench["n"], t=tflops)
            )
        if ratio is not None and peak is not None:
            parts.append(
                tr(
                    "为 {p} 稠密峰值 {k} TFLOPS 的 {r:.0%}",
                    "{r:.0%} of the {p} dense peak {k} TFLOPS",
                    p=peak.name,
                    k=peak.tflops,
                    r=ratio,
                )
            )
        elif tflops:
            parts.append(tr("（此卡不在峰值表中）", "(card not in the peak table)"))
        message = "; ".join(parts)
        if self.min_ratio is not None and ratio is not None and ratio < self.min_ratio:
            return CheckResult.failed(
                self.check_id,
                message + tr("；低于目标 {m:.0%}", "; below the target {m:.0%}", m=self.min_ratio),
                **ev,
            )
        return CheckResult.passed(self.check_id, message, **ev)


# ----------------------------------------------------------------------------------------------
# docker run --gpus all
# ----------------------------------------------------------------------------------------------
#: The course's 2.4.3 installation of the NVIDIA container toolkit, shown as text (never run).
TOOLKIT_INSTALL: tuple[str, ...] = (
    "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | sudo gpg --dearmor -o "
    "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
    "curl -s -L https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | "
    "sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
    "https://#g' | sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list",
    "sudo apt-get update",
    "sudo apt-get install -y nvidia-container-toolkit",
    "sudo nvidia-ctk runtime configure --runtime=docker",
    "sudo systemctl restart docker",
)


def gpu_runtime(info: dict[str, Any], *, hook_on_path: bool = False) -> str | None:
    """How this engine can hand out NVIDIA GPUs (``None``: it cannot), from ``docker info`` data."""
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes:
        return "runtime:nvidia"
    if info.get("CDISpecDirs"):
        return "cdi:" + ",".join(info["CDISpecDirs"])
    if hook_on_path:
        return "hook:nvidia-container-runtime-hook"
    return None


_SMI_HEADER = re.compile(r"Driver Version:\s*([\d.]+)\s+CUDA Version:\s*([\d.]+)")
_SMI_GPU = re.compile(r"^\|\s+(\d+)\s+(.+?)\s{2,}(?:On|Off)\s+\|", re.M)


def parse_nvidia_smi(text: str) -> dict[str, Any]:
    """Driver version, the CUDA version the driver supports, and GPU names from ``nvidia-smi``."""
    out: dict[str, Any] = {"driver": None, "cuda": None, "gpus": []}
    m = _SMI_HEADER.search(text or "")
    if m:
        out["driver"], out["cuda"] = m.group(1), m.group(2)
    out["gpus"] = [g.group(2).strip() for g in _SMI_GPU.finditer(text or "")]
    return out


class GpuRunPlan(Step):
    """The course's ``docker run --gpus all <image> nvidia-smi``, where the engine has NVIDIA GPUs."""

    check_id = "ch2.docker.gpu"
    timeout = 300.0

    def __init__(self, image: str | None = None, command: Sequence[str] = ("nvidia-smi",)) -> None:
        self.image = image or ci.matched_pair().image.tag
        self.command = list(command)

    def plan(self) -> Plan:
        validate_reference(self.image, "image")
        if not self.command:
            raise InvalidField(
                "command", self.command, tr("为空", "is empty"), tr("例如 nvidia-smi", "e.g. nvidia-smi")
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "在容器里使用宿主机的全部 GPU（课程 2.4.4）",
                "use all of the host's GPUs inside a container (course 2.4.4)",
            ),
            commands=[["docker", "run", "--rm", "--gpus", "all", self.image, *self.command]],
            notes=[
                tr(
                    "SDK 写法：device_requests=[docker.types.DeviceRequest(count=-1, "
                    "capabilities=[['gpu']])]",
                    "through the SDK: device_requests=[docker.types.DeviceRequest(count=-1, "
                    "capabilities=[['gpu']])]",
                ),
                tr(
                    "需要宿主机装好 NVIDIA 驱动和 NVIDIA Container Toolkit（课程 2.4.3）：",
                    "needs the NVIDIA driver and the NVIDIA Container Toolkit on the host (course 2.4.3):",
                ),
                *TOOLKIT_INSTALL,
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        reason = ctx.docker_unavailable()
        if reason:
            return reason
        import shutil

        with ctx.engine(tr("读取 docker info", "read docker info"), argv=["docker", "info"]) as client:
            info = client.info()
        how = gpu_runtime(info, hook_on_path=shutil.which("nvidia-container-runtime-hook") is not None)
        if how is None:
            return tr(
                "Docker 引擎没有 NVIDIA 运行时（docker info 的 Runtimes：{r}）：这台机器不能用 --gpus；"
                "安装步骤见计划（课程 2.4.3）",
                "the Docker engine has no NVIDIA runtime (docker info Runtimes: {r}): --gpus cannot work "
                "here; the install steps are in the plan (course 2.4.3)",
                r=", ".join(info.get("Runtimes") or {}) or "-",
            )
        self._how = how
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        import docker.errors
        import docker.types

        argv = ["docker", "run", "--rm", "--gpus", "all", self.image, *self.command]
        labels = labkit_labels(self.check_id, kind="container")
        with ctx.engine(
            tr("运行 GPU 容器", "run a GPU container"), argv=argv, timeout=self.timeout
        ) as client:
            try:
                client.images.get(self.image)
            except docker.errors.ImageNotFound:
                ctx.say(tr("拉取 {i}", "pulling {i}", i=self.image))
                client.images.pull(self.image)
            container = client.containers.create(
                self.image,
                self.command,
                labels=labels,
                device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])],
            )
            try:
                container.start()
                status = container.wait(timeout=self.timeout)
                out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            finally:
                container.remove(force=True)
        for line in out.splitlines():
            ctx.say(line)
        return {
            "image": self.image,
            "exit_code": status.get("StatusCode"),
            "output": out[-4000:],
            "runtime": getattr(self, "_how", None),
            **parse_nvidia_smi(out),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if evidence.get("exit_code") != 0:
            return CheckResult.failed(
                self.check_id,
                tr("GPU 容器退出码 {c}", "the GPU container exited with {c}", c=evidence.get("exit_code")),
                **evidence,
            )
        if self.command[:1] == ["nvidia-smi"] and not evidence.get("gpus"):
            return CheckResult.failed(
                self.check_id,
                tr("容器里的 nvidia-smi 没有列出 GPU", "nvidia-smi in the container listed no GPU"),
                **evidence,
            )
        driver = evidence.get("driver")
        ev = dict(evidence)
        if driver:
            pair = ci.matched_pair()
            verdict = ci.driver_supports(driver, pair.index)
            ev["driver_vs_default_pair"] = {"mode": verdict.mode, "message": verdict.message}
        return CheckResult.passed(
            self.check_id,
            tr(
                "容器里看到 {n} 块 GPU：{g}（驱动 {d}）",
                "the container sees {n} GPU(s): {g} (driver {d})",
                n=len(evidence.get("gpus") or []),
                g=", ".join(evidence.get("gpus") or []) or "-",
                d=driver or "?",
            ),
            **ev,
        )


# ----------------------------------------------------------------------------------------------
# python -m labkit.steps.gpu
# ----------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Print the probe's result (JSON) and a one-line summary; exit 0 unless the probe crashed."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m labkit.steps.gpu", description=probe.__doc__)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    data = probe(args.size, args.iters, args.repeats, args.warmup)
    print(_MARK + json.dumps(data))
    bench = data.get("benchmark") or {}
    peak = match_peak(str(data.get("device", "")))
    if bench.get("tflops_best"):
        ratio = f", {bench['tflops_best'] / peak.tflops:.0%} of {peak.name} peak" if peak else ""
        print(f"{data.get('device')}: {bench['tflops_best']} TFLOPS bf16 (n={bench['n']}){ratio}")
    else:
        print(f"no benchmark: {data.get('error')} (torch {data.get('torch')})")
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through the runner in tests
    raise SystemExit(main())
