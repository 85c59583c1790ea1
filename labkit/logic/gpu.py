"""The GPU in chapter 2a, as data and pure rules: peak table, probe output, ``docker run --gpus``.

:mod:`labkit.steps.gpu` runs things (the torch probe in a child process, the GPU container through
the Docker SDK); everything it needs to *build* a command or *judge* an output lives here, so it is
tested on plain strings and dicts:

* :data:`DENSE_BF16_PEAK` / :func:`match_peak`: each card's dense bf16 peak (datasheet figures
  *without* 2:4 sparsity, which datasheets print first and which doubles them);
* :func:`parse_probe_output` / :func:`judge_probe`: the probe's JSON line → a check result;
* :func:`gpu_run_call`: the course's ``docker run --gpus all <image> nvidia-smi`` as the CLI argv
  *and* the SDK ``containers.create`` arguments, from one place;
* :func:`gpu_runtime` / :func:`smi_summary` / :func:`judge_gpu_run`: ``docker info`` and the
  container's ``nvidia-smi`` (parsed by :func:`labkit.logic.host.parse_nvidia_smi`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.checks import CheckResult
from labkit.i18n import tr
from labkit.logic import cuda_images as ci
from labkit.logic.host import parse_nvidia_smi

__all__ = [
    "DENSE_BF16_PEAK",
    "DOCKER_INFO",
    "PROBE_MARK",
    "TOOLKIT_INSTALL",
    "GpuPeak",
    "GpuRunCall",
    "benchmark_summary",
    "gpu_run_call",
    "gpu_runtime",
    "judge_gpu_run",
    "judge_probe",
    "match_peak",
    "parse_probe_output",
    "smi_summary",
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
# The torch probe's output, judged
# ----------------------------------------------------------------------------------------------
#: Prefix of the probe's one JSON line (``labkit/steps/gpu_probe.py`` prints it; a test keeps the two equal).
PROBE_MARK = "LABKIT-PROBE "


def parse_probe_output(stdout: str) -> dict[str, Any]:
    """The probe's JSON from its stdout (last marked line); raises ``ValueError`` if there is none."""
    for line in reversed((stdout or "").splitlines()):
        if line.startswith(PROBE_MARK):
            data = json.loads(line[len(PROBE_MARK) :])
            if not isinstance(data, dict):
                break
            return data
    raise ValueError("no probe output")


def _probe_crashed(check_id: str, evidence: Mapping[str, Any], base: dict[str, Any]) -> CheckResult:
    return CheckResult.errored(
        check_id,
        tr(
            "GPU 检查进程异常退出（状态 {c}），没有给出结果：{e}",
            "the GPU probe process ended abnormally (status {c}) without a result: {e}",
            c=evidence.get("returncode"),
            e=(evidence.get("stderr_tail") or "").strip().splitlines()[-1:] or "-",
        ),
        **base,
        stderr_tail=evidence.get("stderr_tail", ""),
    )


def _probe_error(check_id: str, data: Mapping[str, Any], ev: dict[str, Any]) -> CheckResult | None:
    """The result for a probe that could not benchmark (no torch, no GPU, CUDA error), else None."""
    error = data.get("error")
    if error == "no-torch":
        message = tr("未安装 torch：pip install labkit[gpu]", "torch not installed: pip install labkit[gpu]")
        return CheckResult.skipped(check_id, message, **ev)
    if error == "no-gpu":
        message = tr(
            "没有 GPU：torch.cuda.is_available() 为 False（torch {v}，构建于 CUDA {c}）",
            "no GPU: torch.cuda.is_available() is False (torch {v}, built for CUDA {c})",
            v=data.get("torch"),
            c=data.get("torch_cuda") or tr("无（CPU 版）", "none (CPU build)"),
        )
        return CheckResult.skipped(check_id, message, **ev)
    if error == "cuda-error":
        message = tr("CUDA 出错：{d}", "CUDA error: {d}", d=data.get("detail", ""))
        return CheckResult.errored(check_id, message, **ev)
    return None


def _benchmark_message(data: Mapping[str, Any], peak: GpuPeak | None, ratio: float | None) -> str:
    bench = data.get("benchmark") or {}
    tflops = bench.get("tflops_best")
    parts = [
        tr("PyTorch {v}，GPU：{d}", "PyTorch {v}, GPU: {d}", v=data.get("torch"), d=data.get("device", ""))
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
    return "; ".join(parts)


def judge_probe(check_id: str, evidence: Mapping[str, Any], min_ratio: float | None = None) -> CheckResult:
    """The torch check's verdict on what the probe process returned (``evidence["probe"]``)."""
    data = evidence.get("probe")
    base = {"interpreter": evidence.get("interpreter"), "returncode": evidence.get("returncode")}
    if not data:
        return _probe_crashed(check_id, evidence, base)
    ev = {**base, **{k: v for k, v in data.items() if k != "benchmark"}}
    failed = _probe_error(check_id, data, ev)
    if failed is not None:
        return failed
    bench = data.get("benchmark") or {}
    peak = match_peak(str(data.get("device", "")))
    tflops = bench.get("tflops_best")
    ratio = round(tflops / peak.tflops, 3) if (peak and tflops) else None
    ev["benchmark"] = bench
    ev["peak"] = (
        {"name": peak.name, "tflops": peak.tflops, "source": peak.source, "data_centre": peak.data_centre}
        if peak
        else None
    )
    ev["ratio"] = ratio
    if bench and not bench.get("finite", True):
        return CheckResult.failed(check_id, tr("矩阵乘结果含 NaN/Inf", "the matmul produced NaN/Inf"), **ev)
    message = _benchmark_message(data, peak, ratio)
    if min_ratio is not None and ratio is not None and ratio < min_ratio:
        below = tr("；低于目标 {m:.0%}", "; below the target {m:.0%}", m=min_ratio)
        return CheckResult.failed(check_id, message + below, **ev)
    return CheckResult.passed(check_id, message, **ev)


def benchmark_summary(data: Mapping[str, Any]) -> str:
    """One line for ``python -m labkit.steps.gpu`` (English: a terminal tool for instructors)."""
    bench = data.get("benchmark") or {}
    if not bench.get("tflops_best"):
        return f"no benchmark: {data.get('error')} (torch {data.get('torch')})"
    peak = match_peak(str(data.get("device", "")))
    ratio = f", {bench['tflops_best'] / peak.tflops:.0%} of {peak.name} peak" if peak else ""
    return f"{data.get('device')}: {bench['tflops_best']} TFLOPS bf16 (n={bench['n']}){ratio}"


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

#: ``docker info``, the read-only probe that says whether the engine can hand out GPUs.
DOCKER_INFO: tuple[str, ...] = ("docker", "info")


@dataclass(frozen=True)
class GpuRunCall:
    """One GPU container run: the ``docker run`` argv shown and recorded, and the SDK call made."""

    image: str
    command: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        """``docker run --rm --gpus all --label k=v … <image> <command>`` (what the SDK call does)."""
        flags = [x for k, v in self.labels.items() for x in ("--label", f"{k}={v}")]
        return ["docker", "run", "--rm", "--gpus", "all", *flags, self.image, *self.command]

    def create_kwargs(self) -> dict[str, Any]:
        """Arguments of ``client.containers.create``; ``device_request`` becomes a ``DeviceRequest``.

        ``--gpus all`` is ``DeviceRequest(count=-1, capabilities=[["gpu"]])``; the caller removes the
        container afterwards (``--rm``)."""
        return {
            "image": self.image,
            "command": list(self.command),
            "labels": dict(self.labels),
            "device_request": {"count": -1, "capabilities": [["gpu"]]},
        }


def gpu_run_call(image: str, command: Sequence[str], labels: Mapping[str, str]) -> GpuRunCall:
    """The one builder of the GPU container run, used by ``plan`` and by ``run``."""
    return GpuRunCall(image, tuple(command), dict(labels))


def gpu_runtime(info: Mapping[str, Any], *, hook_on_path: bool = False) -> str | None:
    """How this engine can hand out NVIDIA GPUs (``None``: it cannot), from ``docker info`` data.

    A runtime named ``nvidia``, CDI spec directories (engine ≥ 25), or the NVIDIA container
    toolkit's hook on PATH (what ``--gpus`` uses on engines without a registered runtime)."""
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes:
        return "runtime:nvidia"
    if info.get("CDISpecDirs"):
        return "cdi:" + ",".join(info["CDISpecDirs"])
    if hook_on_path:
        return "hook:nvidia-container-runtime-hook"
    return None


_SMI_CUDA = re.compile(r"CUDA Version:\s*([\d.]+)")


def smi_summary(text: str) -> dict[str, Any]:
    """``nvidia-smi``'s table → ``{"driver", "cuda", "gpus": [names]}`` (the GPU run's evidence)."""
    gpus = parse_nvidia_smi(text)
    cuda = _SMI_CUDA.search(text or "")
    return {
        "driver": gpus[0].driver_version if gpus else None,
        "cuda": cuda.group(1) if cuda else None,
        "gpus": [g.name for g in gpus],
    }


def judge_gpu_run(check_id: str, evidence: Mapping[str, Any], command: Sequence[str]) -> CheckResult:
    """The GPU container's verdict: it exited 0, ``nvidia-smi`` listed GPUs, and the driver runs the
    default pair's CUDA (recorded, not judged: an old driver is the host's, not the student's, fault)."""
    ev = dict(evidence)
    if ev.get("exit_code") != 0:
        message = tr("GPU 容器退出码 {c}", "the GPU container exited with {c}", c=ev.get("exit_code"))
        return CheckResult.failed(check_id, message, **ev)
    gpus = ev.get("gpus") or []
    if list(command[:1]) == ["nvidia-smi"] and not gpus:
        message = tr("容器里的 nvidia-smi 没有列出 GPU", "nvidia-smi in the container listed no GPU")
        return CheckResult.failed(check_id, message, **ev)
    driver = ev.get("driver")
    if driver:
        verdict = ci.driver_supports(driver, ci.matched_pair().index)
        ev["driver_vs_default_pair"] = {"mode": verdict.mode, "message": verdict.message}
    message = tr(
        "容器里看到 {n} 块 GPU：{g}（驱动 {d}）",
        "the container sees {n} GPU(s): {g} (driver {d})",
        n=len(gpus),
        g=", ".join(gpus) or "-",
        d=driver or "?",
    )
    return CheckResult.passed(check_id, message, **ev)
