"""Chapter 2a, the GPU: the course's torch check with a benchmark, and ``docker run --gpus all``.

:class:`TorchGpuCheck` (``ch2.gpu.torch``) runs the probe (:mod:`labkit.steps.gpu_probe`:
``torch.__version__``, ``torch.cuda.is_available()``, ``get_device_name(0)`` and a bf16 matmul)
in a **child process**, so a broken CUDA ends that process and not the Jupyter kernel.

:class:`GpuRunPlan` (``ch2.docker.gpu``) is the course's ``docker run --gpus all <image>
nvidia-smi`` (2.4.4), through the SDK. It runs only where ``docker info`` shows the engine can hand
out NVIDIA GPUs; elsewhere it is *skipped* and the plan carries the toolkit install steps (2.4.3).

The commands come from one builder each (:func:`torch_probe_argv`,
:func:`labkit.logic.gpu.gpu_run_call`), used by ``plan`` and ``run``; the verdicts are pure, in
:mod:`labkit.logic.gpu`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic import cuda_images as ci
from labkit.logic import gpu as lg
from labkit.logic.docker_names import labkit_labels, validate_reference
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.docker.owned import remember_created

__all__ = ["PROBE_FILE", "GpuRunPlan", "TorchGpuCheck", "torch_probe_argv"]

#: The probe, run as a file by interpreters other than labkit's own.
PROBE_FILE = Path(__file__).with_name("gpu_probe.py")


# ----------------------------------------------------------------------------------------------
# The torch check
# ----------------------------------------------------------------------------------------------
def torch_probe_argv(python: str, size: int, iters: int, repeats: int, warmup: int) -> list[str]:
    """The probe's command: ``python -m labkit.steps.gpu`` in labkit's own interpreter; elsewhere (a
    venv that has torch but not labkit, say) the probe file through ``runpy`` (no labkit import).

    ``runpy.run_path`` rather than ``python <file>``: a script's directory goes first on
    ``sys.path``, and labkit's step modules there would shadow top-level modules."""
    opts = ["--size", str(size), "--iters", str(iters), "--repeats", str(repeats), "--warmup", str(warmup)]
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return [python, "-m", "labkit.steps.gpu", *opts]
    code = f"import runpy; runpy.run_path({str(PROBE_FILE)!r}, run_name='__main__')"
    return [python, "-c", code, *opts]


_LIMITS = (("size", 0, 65536), ("iters", 1, 10000), ("repeats", 1, 1000), ("warmup", 0, 1000))


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

    def _argv(self) -> list[str]:
        """Validate the fields; the probe's argv (the same in ``plan`` and ``run``)."""
        for name, low, high in _LIMITS:
            value = getattr(self, name)
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
        return torch_probe_argv(self.python, self.size, self.iters, self.repeats, self.warmup)

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "在独立进程里检查 PyTorch 能否用 GPU，并测 bf16 矩阵乘的实际算力",
                "check in a separate process that PyTorch sees the GPU, and measure bf16 matmul throughput",
            ),
            commands=[self._argv()],
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
        done = ctx.run(self._argv(), timeout=self.timeout, check=False, on_line=None)
        ev: dict[str, Any] = {"interpreter": self.python, "returncode": done.returncode}
        try:
            ev["probe"] = lg.parse_probe_output(done.stdout)
        except ValueError:
            ev["probe"] = None
            ev["stdout_tail"] = done.stdout[-2000:]
            ev["stderr_tail"] = done.stderr[-2000:]
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        return lg.judge_probe(self.check_id, evidence, self.min_ratio)


# ----------------------------------------------------------------------------------------------
# docker run --gpus all
# ----------------------------------------------------------------------------------------------
def _read_gpu_runtime(ctx: RunContext) -> tuple[str | None, dict[str, Any]]:
    """``docker info`` (recorded as a probe) → how the engine hands out GPUs, and the info."""
    ctx.record(lg.DOCKER_INFO)
    with ctx.engine(tr("读取 docker info", "read docker info"), argv=list(lg.DOCKER_INFO)) as client:
        info = client.info()
    hook = shutil.which("nvidia-container-runtime-hook") is not None
    return lg.gpu_runtime(info, hook_on_path=hook), info


class GpuRunPlan(Step):
    """The course's ``docker run --gpus all <image> nvidia-smi``, where the engine has NVIDIA GPUs."""

    check_id = "ch2.docker.gpu"
    timeout = 300.0

    def __init__(self, image: str | None = None, command: Sequence[str] = ("nvidia-smi",)) -> None:
        self.image = image or ci.matched_pair().image.tag
        self.command = list(command)
        # Made once per step, so the plan shows the very labels the container gets.
        self.labels = labkit_labels(self.check_id, kind="container")

    def call(self) -> lg.GpuRunCall:
        """Validate the fields; the container run (argv and SDK arguments) from the one builder."""
        validate_reference(self.image, "image")
        if not self.command:
            raise InvalidField(
                "command", self.command, tr("为空", "is empty"), tr("例如 nvidia-smi", "e.g. nvidia-smi")
            )
        return lg.gpu_run_call(self.image, self.command, self.labels)

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "在容器里使用宿主机的全部 GPU（课程 2.4.4）",
                "use all of the host's GPUs inside a container (course 2.4.4)",
            ),
            commands=[self.call().argv],
            probes=[list(lg.DOCKER_INFO)],
            notes=[
                tr(
                    "SDK 写法：device_requests=[docker.types.DeviceRequest(count=-1, "
                    "capabilities=[['gpu']])]；镜像不在本机时先拉取（和 docker run 一样）",
                    "through the SDK: device_requests=[docker.types.DeviceRequest(count=-1, "
                    "capabilities=[['gpu']])]; a missing image is pulled first (as docker run does)",
                ),
                tr(
                    "需要宿主机装好 NVIDIA 驱动和 NVIDIA Container Toolkit（课程 2.4.3）：",
                    "needs the NVIDIA driver and the NVIDIA Container Toolkit on the host (course 2.4.3):",
                ),
                *lg.TOOLKIT_INSTALL,
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        reason = ctx.docker_unavailable()
        if reason:
            return reason
        how, info = _read_gpu_runtime(ctx)
        if how is None:
            return tr(
                "Docker 引擎没有 NVIDIA 运行时（docker info 的 Runtimes：{r}）：这台机器不能用 --gpus；"
                "安装步骤见计划（课程 2.4.3）",
                "the Docker engine has no NVIDIA runtime (docker info Runtimes: {r}): --gpus cannot work "
                "here; the install steps are in the plan (course 2.4.3)",
                r=", ".join(info.get("Runtimes") or {}) or "-",
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        how, _info = _read_gpu_runtime(ctx)
        call = self.call()
        out, exit_code = _run_gpu_container(ctx, call, self.timeout)
        for line in out.splitlines():
            ctx.say(line)
        return {
            "image": self.image,
            "exit_code": exit_code,
            "output": out[-4000:],
            "runtime": how,
            **lg.smi_summary(out),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        return lg.judge_gpu_run(self.check_id, evidence, self.command)


def _run_gpu_container(ctx: RunContext, call: lg.GpuRunCall, timeout: float) -> tuple[str, Any]:
    """Pull if missing, create, start, wait, read the logs, remove: ``docker run --rm`` via the SDK."""
    import docker.errors
    import docker.types

    kwargs = call.create_kwargs()
    request = docker.types.DeviceRequest(**kwargs.pop("device_request"))
    ctx.record(call.argv)
    with ctx.engine(tr("运行 GPU 容器", "run a GPU container"), argv=call.argv, timeout=timeout) as client:
        try:
            client.images.get(call.image)
        except docker.errors.ImageNotFound:
            ctx.say(tr("拉取 {i}", "pulling {i}", i=call.image))
            client.images.pull(call.image)
        container = client.containers.create(**kwargs, device_requests=[request])
        remember_created(container.id, kwargs.get("labels") or {})
        try:
            container.start()
            status = container.wait(timeout=timeout)
            out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        finally:
            container.remove(force=True)
    return out, status.get("StatusCode")


# ----------------------------------------------------------------------------------------------
# python -m labkit.steps.gpu
# ----------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Print the probe's result (JSON) and a one-line summary; exit 0 unless the probe crashed."""
    from labkit.steps import gpu_probe

    data = gpu_probe.main(argv)
    print(lg.benchmark_summary(data))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through the runner in tests
    raise SystemExit(main())
