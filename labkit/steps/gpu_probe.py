"""The torch GPU probe: what the course prints, plus a timed bf16 matmul. Runs in a child process.

Self-contained on purpose: only the standard library and torch, no labkit import. So it runs in
any interpreter that has torch, even one without labkit (``python -c "import runpy;
runpy.run_path('<this file>', run_name='__main__')" --size …``), and a broken CUDA install, a
driver mismatch or a segfault ends that process, not the Jupyter kernel. It prints one line,
``LABKIT-PROBE <json>``, which :func:`labkit.logic.gpu.parse_probe_output` reads.

Benchmark: N×N bf16 matrices (halved until they fit in memory), a warm-up, then timed batches
between ``torch.cuda.Event`` pairs; ``2·N³`` floating point operations per matmul.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MARK = "LABKIT-PROBE "


def _torch_facts(out: dict[str, Any]) -> Any:
    """Import torch and record its version and whether CUDA is available; the module or None."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import torch
        except Exception as exc:  # ImportError, or a broken install raising something else
            out["error"] = "no-torch"
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return None
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
        return None
    return torch


def _device_facts(torch: Any, out: dict[str, Any]) -> bool:
    """The course's ``get_device_name(0)`` and the card's properties; False on a CUDA error."""
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
        return False
    return True


def _allocate(torch: Any, size: int) -> tuple[Any, ...] | None:
    """Three N×N bf16 matrices on GPU 0, N halved on out-of-memory (None below 1024)."""
    dev = torch.device("cuda", 0)
    n = int(size)
    while True:
        try:
            a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
            b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
            c = torch.empty(n, n, device=dev, dtype=torch.bfloat16)
            return n, a, b, c
        except torch.cuda.OutOfMemoryError:
            if n <= 1024:
                return None
            n //= 2
            torch.cuda.empty_cache()


def _benchmark(torch: Any, n: int, a: Any, b: Any, c: Any, iters: int, repeats: int, warmup: int) -> dict:
    import time

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
    return {
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


def probe(size: int = 8192, iters: int = 20, repeats: int = 5, warmup: int = 10) -> dict:
    """Collect what the course prints and time a bf16 matmul; returns a JSON-able dict."""
    import platform

    out: dict = {"python": platform.python_version(), "torch": None, "error": None}
    torch = _torch_facts(out)
    if torch is None or not _device_facts(torch, out) or size <= 0:
        return out
    matrices = _allocate(torch, size)
    if matrices is None:
        out["error"] = "cuda-error"
        out["detail"] = "out of GPU memory even for 1024x1024"
        return out
    try:
        out["benchmark"] = _benchmark(torch, *matrices, iters, repeats, warmup)
    except Exception as exc:
        out["error"] = "cuda-error"
        out["detail"] = f"{type(exc).__name__}: {exc}"
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse ``--size/--iters/--repeats/--warmup``, probe, print the marked JSON line; the data."""
    import argparse

    parser = argparse.ArgumentParser(description=probe.__doc__)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    data = probe(args.size, args.iters, args.repeats, args.warmup)
    print(MARK + json.dumps(data), flush=True)
    return data


if __name__ == "__main__":  # pragma: no cover - run as a file by the torch check
    main()
