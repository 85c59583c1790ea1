"""CUDA base images ↔ PyTorch wheel indexes ↔ NVIDIA driver: the compatibility table (pure).

The course (2.4.7) builds ``FROM nvidia/cuda:12.5.0-runtime-ubuntu22.04`` and installs *nightly*
PyTorch from ``https://download.pytorch.org/whl/nightly/cu124``; 2.4.4 installs it with
``conda install pytorch … pytorch-cuda=12.4 -c pytorch-nightly -c nvidia``. Both need correcting:
a pip-installed torch brings its own CUDA, so labkit defaults to *matched* pairs (base image CUDA =
wheel CUDA) and flags the rest (:func:`check_pair`); PyTorch no longer publishes conda packages, so
the conda command becomes the equivalent pip command (:func:`pip_route`). Each table notes its source.

Advice comes as :class:`labkit.findings.Finding` (the one diagnostic type), each with a stable
``code`` (``cuda-mismatch``, ``nightly``, ``conda-route`` …) that tests and graders key on.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from labkit.errors import InvalidField
from labkit.findings import Finding
from labkit.i18n import tr

__all__ = [
    "DEFAULT_DISTRO",
    "DEFAULT_INDEX",
    "DEFAULT_TORCH",
    "IMAGE_TAGS",
    "MINOR_COMPAT_DRIVER",
    "TOOLKIT_DRIVER",
    "TORCH_LATEST",
    "WHEEL_INDEXES",
    "CudaImage",
    "DriverVerdict",
    "Pairing",
    "WheelIndex",
    "check_pair",
    "driver_supports",
    "matched_pair",
    "parse_cuda_tag",
    "parse_wheel_index",
    "pip_route",
    "version_tuple",
]

# ----------------------------------------------------------------------------------------------
# Tables (sources checked when this module was written; extend them with each release)
# ----------------------------------------------------------------------------------------------
#: CUDA toolkit release → minimum Linux x86_64 driver. Source: the CUDA Toolkit release notes, table
#: "CUDA Toolkit and Corresponding Driver Versions" (e.g. 12.4 GA ≥ 550.54.14, 12.8 Update 1 ≥
#: 570.124.06, 13.0 GA ≥ 580.65.06). An image ``nvidia/cuda:12.8.1-…`` carries the 12.8 Update 1 toolkit.
TOOLKIT_DRIVER: dict[str, str] = {
    "11.8.0": "520.61.05",
    "12.0.0": "525.60.13",
    "12.0.1": "525.85.12",
    "12.1.0": "530.30.02",
    "12.1.1": "530.30.02",
    "12.2.0": "535.54.03",
    "12.2.1": "535.86.09",
    "12.2.2": "535.104.05",
    "12.3.0": "545.23.06",
    "12.3.1": "545.23.08",
    "12.4.0": "550.54.14",
    "12.4.1": "550.54.15",
    "12.5.0": "555.42.02",
    "12.5.1": "555.42.06",
    "12.6.0": "560.28.03",
    "12.6.1": "560.35.03",
    "12.6.2": "560.35.03",
    "12.6.3": "560.35.05",
    "12.8.0": "570.26",
    "12.8.1": "570.124.06",
    "12.9.0": "575.51.03",
    "12.9.1": "575.57.08",
    "13.0.0": "580.65.06",
}

#: CUDA major → the oldest driver that still runs any minor of it ("minor version compatibility").
#: Source: the CUDA Toolkit release notes, table "CUDA Toolkit and Minimum Required Driver Version for
#: CUDA Minor Version Compatibility" (11.x ≥ 450.80.02, 12.x ≥ 525.60.13, 13.x ≥ 580).
#: Below the toolkit's own driver (TOOLKIT_DRIVER) only features of the older driver are available
#: and PTX newer than the driver cannot be JIT-compiled; PyTorch wheels ship SASS for the common
#: GPUs, so they usually run.
MINOR_COMPAT_DRIVER: dict[str, str] = {"11": "450.80.02", "12": "525.60.13", "13": "580"}

#: ``nvidia/cuda`` image versions labkit knows to exist, with the Ubuntu releases they are built for.
#: Source: NVIDIA's ``nvidia/cuda`` repository (gitlab.com/nvidia/container-images/cuda). Ubuntu
#: 24.04 images exist from CUDA 12.5.1 on ("CUDA 12.5.1 brings support for Ubuntu 24.04"), so
#: ``12.4.1-…-ubuntu24.04`` does not exist.
IMAGE_TAGS: dict[str, tuple[str, ...]] = {
    "11.8.0": ("ubuntu20.04", "ubuntu22.04"),
    "12.1.1": ("ubuntu20.04", "ubuntu22.04"),
    "12.2.2": ("ubuntu20.04", "ubuntu22.04"),
    "12.4.1": ("ubuntu20.04", "ubuntu22.04"),
    "12.5.0": ("ubuntu20.04", "ubuntu22.04"),  # the course's base; Ubuntu 24.04 arrived with 12.5.1
    "12.5.1": ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04"),
    "12.6.3": ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04"),
    "12.8.1": ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04"),
    "12.9.1": ("ubuntu20.04", "ubuntu22.04", "ubuntu24.04"),
    "13.0.0": ("ubuntu24.04",),
    "13.0.1": ("ubuntu22.04", "ubuntu24.04"),
}

#: Image flavours NVIDIA publishes (cuDNN ones bundle cuDNN; ``devel`` adds nvcc and headers).
FLAVOURS: tuple[str, ...] = ("base", "runtime", "devel", "cudnn-runtime", "cudnn-devel")


@dataclass(frozen=True)
class WheelIndex:
    """A PyTorch wheel index such as ``cu128`` and the torch minors published on it."""

    name: str
    cuda: str  # "12.8"
    torch: tuple[str, ...]  # torch minors, e.g. ("2.7", "2.8")

    @property
    def url(self) -> str:
        return f"https://download.pytorch.org/whl/{self.name}"

    def nightly_url(self) -> str:
        return f"https://download.pytorch.org/whl/nightly/{self.name}"


#: The wheel indexes and the torch minors each ships. Source: pytorch.org "Installing previous
#: versions of PyTorch" (v2.4.x–v2.9.1) and the PyTorch 2.10 release post on dev-discuss ("CUDA 12.6,
#: 12.8 and 13.0"). Only indexes on the published install matrix are listed: ``cu129`` is listed
#: for 2.8 only.
WHEEL_INDEXES: dict[str, WheelIndex] = {
    w.name: w
    for w in (
        WheelIndex("cu118", "11.8", ("2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7")),
        WheelIndex("cu121", "12.1", ("2.1", "2.2", "2.3", "2.4", "2.5")),
        WheelIndex("cu124", "12.4", ("2.4", "2.5", "2.6")),
        WheelIndex("cu126", "12.6", ("2.6", "2.7", "2.8", "2.9", "2.10")),
        WheelIndex("cu128", "12.8", ("2.7", "2.8", "2.9", "2.10")),
        WheelIndex("cu129", "12.9", ("2.8",)),
        WheelIndex("cu130", "13.0", ("2.9", "2.10")),
    )
}

#: The newest patch release of each torch minor (what an unpinned minor resolves to).
TORCH_LATEST: dict[str, str] = {
    "2.1": "2.1.2",
    "2.2": "2.2.2",
    "2.3": "2.3.1",
    "2.4": "2.4.1",
    "2.5": "2.5.1",
    "2.6": "2.6.0",
    "2.7": "2.7.1",
    "2.8": "2.8.0",
    "2.9": "2.9.1",
    "2.10": "2.10.0",
}

#: The default matched pair: torch 2.9.1 from cu128 on ``nvidia/cuda:12.8.1-runtime-ubuntu24.04``.
#: CUDA 12.8 runs on every GPU from Maxwell to Blackwell and on drivers ≥ 525.60.13 (minor version
#: compatibility) — CUDA 13 would demand driver ≥ 580 from every student machine.
DEFAULT_TORCH = "2.9.1"
DEFAULT_INDEX = "cu128"
DEFAULT_DISTRO = "ubuntu24.04"

#: Which image version serves each wheel CUDA (the newest patch labkit knows for that minor).
_IMAGE_FOR_CUDA: dict[str, str] = {
    "11.8": "11.8.0",
    "12.1": "12.1.1",
    "12.4": "12.4.1",
    "12.6": "12.6.3",
    "12.8": "12.8.1",
    "12.9": "12.9.1",
    "13.0": "13.0.1",
}


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------
def version_tuple(version: str) -> tuple[int, ...]:
    """``"570.124.06"`` → ``(570, 124, 6)``; raises ``ValueError`` for anything else."""
    parts = str(version).strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a dotted version: {version!r}")
    return tuple(int(p) for p in parts)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


_TAG = re.compile(
    r"(?P<repo>(?:(?:docker\.io|registry-1\.docker\.io)/)?nvidia/cuda|nvcr\.io/nvidia/cuda)"
    r":(?P<version>\d+\.\d+(?:\.\d+)?)-(?P<flavour>[a-z0-9-]+?)-(?P<distro>(?:ubuntu|rockylinux|ubi|"
    r"oraclelinux|amzn|azl|opensuse|debian|centos)[0-9.]+)\Z"
)


@dataclass(frozen=True)
class CudaImage:
    """A parsed ``nvidia/cuda:<version>-<flavour>-<distro>`` reference."""

    version: str
    flavour: str = "runtime"
    distro: str = DEFAULT_DISTRO
    repository: str = "nvidia/cuda"

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.version}-{self.flavour}-{self.distro}"

    @property
    def cuda(self) -> str:
        """The CUDA minor, e.g. ``"12.8"``."""
        return _minor(self.version)

    @property
    def known(self) -> bool:
        """True when labkit's table says this tag exists."""
        base_flavour = self.flavour.replace("cudnn-", "").replace("cudnn8-", "").replace("cudnn9-", "")
        return (
            self.repository.endswith("nvidia/cuda")
            and self.distro in IMAGE_TAGS.get(self.version, ())
            and base_flavour in ("base", "runtime", "devel")
        )

    def __str__(self) -> str:
        return self.tag


def parse_cuda_tag(tag: str, field: str = "cuda_tag") -> CudaImage:
    """Parse ``nvidia/cuda:12.8.1-runtime-ubuntu24.04`` (``docker.io/``/``nvcr.io/`` prefixes ok)."""
    m = _TAG.match(str(tag or "").strip())
    if not m:
        raise InvalidField(
            field,
            tag,
            tr("不是 nvidia/cuda 镜像标签", "is not an nvidia/cuda image tag"),
            tr(
                "形如 nvidia/cuda:<版本>-<runtime|base|devel>-<系统>，例如 {t}",
                "use nvidia/cuda:<version>-<runtime|base|devel>-<distro>, e.g. {t}",
                t=matched_pair().image.tag,
            ),
        )
    repo = m.group("repo").removeprefix("docker.io/").removeprefix("registry-1.docker.io/")
    return CudaImage(m.group("version"), m.group("flavour"), m.group("distro"), repo)


_INDEX_NAME = re.compile(r"cu(\d)(\d+)\Z")
_INDEX_URL = re.compile(r"https?://download\.pytorch\.org/whl/(?:(nightly|test)/)?(cu\d+|cpu|rocm[\d.]+)/?\Z")


def parse_wheel_index(index: str, field: str = "wheel_index") -> tuple[str, bool]:
    """``"cu124"`` or a download.pytorch.org URL → ``(name, nightly)``; unknown names are refused."""
    text = str(index or "").strip()
    nightly = False
    m = _INDEX_URL.match(text)
    if m:
        nightly = m.group(1) is not None
        text = m.group(2)
    if text in WHEEL_INDEXES:
        return text, nightly
    known = ", ".join(WHEEL_INDEXES)
    raise InvalidField(
        field,
        index,
        tr("不是 labkit 认识的 PyTorch CUDA wheel 索引", "is not a PyTorch CUDA wheel index labkit knows"),
        tr(
            "可选：{k}（或 https://download.pytorch.org/whl/<名字>）",
            "choose one of {k} (or its URL)",
            k=known,
        ),
    )


# ----------------------------------------------------------------------------------------------
# Matched pairs
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pairing:
    """A torch release, the wheel index it comes from, and the matching CUDA base image."""

    torch: str
    index: WheelIndex
    image: CudaImage

    @property
    def packages(self) -> str:
        return f"torch=={self.torch}"

    @property
    def min_driver(self) -> str:
        """The driver the wheel's CUDA needs without relying on minor version compatibility."""
        return TOOLKIT_DRIVER.get(f"{self.index.cuda}.0", MINOR_COMPAT_DRIVER[self.index.cuda.split(".")[0]])


def _torch_minor(torch: str, field: str = "torch") -> str:
    text = str(torch).strip()
    m = re.fullmatch(r"(\d+\.\d+)(?:\.\d+)?", text)
    if not m:
        raise InvalidField(
            field,
            torch,
            tr("不是 torch 版本号", "is not a torch version"),
            tr("写成 2.9.1 或 2.9", "write it like 2.9.1 or 2.9"),
        )
    return m.group(1)


def matched_pair(
    torch: str | None = None,
    index: str | None = None,
    *,
    distro: str | None = None,
    flavour: str = "runtime",
) -> Pairing:
    """The matched (torch, wheel index, base image) for what was asked; defaults to the newest safe one.

    ``torch`` alone picks the newest CUDA 12 index that ships it (CUDA 13 needs driver ≥ 580);
    ``index`` alone picks the newest torch on it. ``distro`` defaults to Ubuntu 24.04 where NVIDIA
    publishes it for that CUDA, else the newest Ubuntu that has the tag. Impossible requests raise
    :class:`InvalidField`.
    """
    if flavour not in FLAVOURS:
        raise InvalidField(
            "flavour",
            flavour,
            tr("不是 nvidia/cuda 的镜像种类", "is not an nvidia/cuda flavour"),
            ", ".join(FLAVOURS),
        )
    if torch is None and index is None:
        torch, index = DEFAULT_TORCH, DEFAULT_INDEX
    wheel: WheelIndex | None = None
    if index is not None:
        wheel = WHEEL_INDEXES[parse_wheel_index(index, "index")[0]]
    if torch is None:
        assert wheel is not None
        minor = wheel.torch[-1]
        torch = TORCH_LATEST[minor]
    minor = _torch_minor(torch)
    if minor not in TORCH_LATEST:
        raise InvalidField(
            "torch",
            torch,
            tr("不在 labkit 的兼容表中", "is not in labkit's compatibility table"),
            tr("可选：{v}", "choose one of {v}", v=", ".join(TORCH_LATEST)),
        )
    if torch == minor:  # "2.9" → the newest patch, so the image is reproducible
        torch = TORCH_LATEST[minor]
    if wheel is None:
        shipping = [w for w in WHEEL_INDEXES.values() if minor in w.torch]
        cuda12 = [w for w in shipping if w.cuda.startswith("12.")]
        wheel = (cuda12 or shipping)[-1]
    elif minor not in wheel.torch:
        others = [w.name for w in WHEEL_INDEXES.values() if minor in w.torch]
        raise InvalidField(
            "torch",
            torch,
            tr("没有发布在 {i} 上", "is not published on {i}", i=wheel.name),
            tr("torch {m} 的索引：{o}", "torch {m} is on: {o}", m=minor, o=", ".join(others) or "-"),
        )
    version = _IMAGE_FOR_CUDA[wheel.cuda]
    if distro is None:
        distro = DEFAULT_DISTRO if DEFAULT_DISTRO in IMAGE_TAGS[version] else IMAGE_TAGS[version][-1]
    if distro not in IMAGE_TAGS[version]:
        raise InvalidField(
            "distro",
            distro,
            tr("没有 CUDA {v} 的镜像", "has no CUDA {v} image", v=version),
            tr("可选：{d}", "choose one of {d}", d=", ".join(IMAGE_TAGS[version])),
        )
    return Pairing(torch, wheel, CudaImage(version, flavour, distro))


def pip_argv(index: WheelIndex, packages: Sequence[str]) -> list[str]:
    """``python3 -m pip install --no-cache-dir --index-url <index> <packages>``: the pip route.

    The one builder of it: :func:`pip_route` returns it and shows it in its fix."""
    return ["python3", "-m", "pip", "install", "--no-cache-dir", "--index-url", index.url, *packages]


# ----------------------------------------------------------------------------------------------
# Checks: one rule per concern, each returning findings
# ----------------------------------------------------------------------------------------------
def _base_field() -> str:
    return tr("基础镜像", "base image")


def _index_field() -> str:
    return tr("wheel 索引", "wheel index")


def _unknown_tag(image: CudaImage, wheel: WheelIndex) -> list[Finding]:
    if image.known:
        return []
    message = tr(
        "{t} 不在 labkit 已知存在的标签表中（Docker Hub 上可能没有）",
        "{t} is not among the tags labkit knows to exist (it may not be on Docker Hub)",
        t=image.tag,
    )
    fix = tr("用匹配的标签：{m}", "use the matched tag: {m}", m=_suggest(wheel, image).tag)
    return [Finding(_base_field(), "warning", message, fix, code="unknown-tag")]


def _cuda_mismatch(image: CudaImage, wheel: WheelIndex) -> list[Finding]:
    """The base image's CUDA differs from the wheel's: wasteful and misleading, though it runs.

    The CUDA of the base image does not matter to a pip-installed torch. A ``cu124`` wheel depends
    on NVIDIA's own pip packages (``nvidia-cuda-runtime-cu12``, ``nvidia-cublas-cu12``,
    ``nvidia-cudnn-cu12`` …): it brings its own CUDA 12.4 runtime and never loads the libraries of a
    ``12.5`` base image. What decides whether it runs is the **host driver** (mounted into the
    container by the NVIDIA container toolkit). A mismatched base therefore wastes gigabytes of
    unused CUDA libraries and misleads: ``nvcc``/``NVIDIA_REQUIRE_CUDA`` say 12.5 while
    ``torch.version.cuda`` says 12.4.
    """
    if image.cuda == wheel.cuda:
        return []
    message = tr(
        "基础镜像是 CUDA {i}，而 {w} 的 torch wheel 自带 CUDA {c} 运行库"
        "（nvidia-*-cu{major} pip 包），根本不用镜像里的 CUDA 库：决定能否运行的是宿主机驱动。"
        "不匹配的基础镜像白占几 GB，"
        "还会误导（nvcc 说 {i}，torch.version.cuda 说 {c}）。",
        "the base image is CUDA {i}, but the {w} torch wheel brings its own CUDA {c} runtime "
        "(the nvidia-*-cu{major} pip packages) and never loads the image's CUDA libraries: the "
        "host driver decides whether it runs. A mismatched base wastes gigabytes and misleads "
        "(nvcc says {i}, torch.version.cuda says {c}).",
        i=image.cuda,
        c=wheel.cuda,
        w=wheel.name,
        major=wheel.cuda.split(".")[0],
    )
    if version_tuple(image.cuda) < version_tuple(wheel.cuda):
        message += tr(
            " 而且镜像的 NVIDIA_REQUIRE_CUDA 只保证驱动够 CUDA {i}，不够 {c}。",
            " Worse, the image's NVIDIA_REQUIRE_CUDA only guarantees a driver for CUDA {i}, not {c}.",
            i=image.cuda,
            c=wheel.cuda,
        )
    fix = tr("用匹配的基础镜像 {m}", "use the matched base image {m}", m=_suggest(wheel, image).tag)
    return [Finding(_base_field(), "warning", message, fix, code="cuda-mismatch")]


def _nightly_index(wheel: WheelIndex, nightly: bool) -> list[Finding]:
    if not nightly:
        return []
    message = tr(
        "nightly（--pre）构建每天都变，今天能装的明天可能就没了，镜像无法复现",
        "nightly (--pre) builds change every day: what installs today may be gone tomorrow, "
        "so the image cannot be rebuilt reproducibly",
    )
    fix = tr(
        "改用正式版：--index-url {u} torch=={t}",
        "use a release: --index-url {u} torch=={t}",
        u=wheel.url,
        t=TORCH_LATEST[wheel.torch[-1]],
    )
    return [Finding(_index_field(), "warning", message, fix, code="nightly")]


def _torch_not_on_index(wheel: WheelIndex, torch: str | None) -> list[Finding]:
    if torch is None or _torch_minor(torch) in wheel.torch:
        return []
    minor = _torch_minor(torch)
    others = [w.name for w in WHEEL_INDEXES.values() if minor in w.torch]
    message = tr("torch {t} 没有发布在 {w} 上", "torch {t} is not published on {w}", t=torch, w=wheel.name)
    fix = tr("可用的索引：{o}", "indexes that have it: {o}", o=", ".join(others) or "-")
    return [Finding("torch", "error", message, fix, code="torch-not-on-index")]


def _devel_image(image: CudaImage) -> list[Finding]:
    if not image.flavour.endswith("devel"):
        return []
    message = tr(
        "devel 镜像带 nvcc 和头文件，体积约为 runtime 的 2-3 倍；只有要编译 CUDA 扩展时才需要",
        "devel images add nvcc and headers (2-3x the size of runtime); you only need them to "
        "compile CUDA extensions",
    )
    fix = tr("用 {m}", "use {m}", m=CudaImage(image.version, "runtime", image.distro).tag)
    return [Finding(_base_field(), "info", message, fix, code="devel-image")]


def check_pair(
    cuda_tag: str,
    wheel_index: str,
    torch: str | None = None,
) -> list[Finding]:
    """Everything wrong with building ``wheel_index`` torch on ``cuda_tag``; empty when matched.

    The course's pair (``nvidia/cuda:12.5.0-runtime-ubuntu22.04`` with ``…/whl/nightly/cu124``)
    gives ``cuda-mismatch`` and ``nightly``.
    """
    image = parse_cuda_tag(cuda_tag)
    name, nightly = parse_wheel_index(wheel_index)
    wheel = WHEEL_INDEXES[name]
    return [
        *_unknown_tag(image, wheel),
        *_cuda_mismatch(image, wheel),
        *_nightly_index(wheel, nightly),
        *_torch_not_on_index(wheel, torch),
        *_devel_image(image),
    ]


def _suggest(wheel: WheelIndex, image: CudaImage) -> CudaImage:
    """The matched image for ``wheel``, keeping the asked distro when a tag exists for it."""
    version = _IMAGE_FOR_CUDA[wheel.cuda]
    distros = IMAGE_TAGS[version]
    distro = image.distro if image.distro in distros else distros[-1]
    flavour = image.flavour if image.flavour in FLAVOURS else "runtime"
    return CudaImage(version, flavour, distro)


@dataclass(frozen=True)
class DriverVerdict:
    """Whether a driver runs a CUDA version: ``full``, ``minor-compat`` (works, fewer features) or ``no``."""

    ok: bool
    mode: Literal["full", "minor-compat", "no"]
    driver: str
    cuda: str
    needed_full: str
    needed_minimum: str
    message: str


def _cuda_version(cuda: str | CudaImage | WheelIndex) -> str:
    """The toolkit version ``"12.8.0"`` that ``cuda`` names (a version, an index, an image)."""
    if isinstance(cuda, CudaImage):
        version = cuda.version
    elif isinstance(cuda, WheelIndex):
        version = cuda.cuda
    elif str(cuda) in WHEEL_INDEXES:
        version = WHEEL_INDEXES[str(cuda)].cuda
    else:
        version = str(cuda).strip()
    try:
        parts = version_tuple(version)
    except ValueError as exc:
        raise InvalidField(
            "cuda", cuda, tr("不是 CUDA 版本", "is not a CUDA version"), tr("例如 12.8", "e.g. 12.8")
        ) from exc
    return f"{version}.0" if len(parts) == 2 else version


def _needed_drivers(version: str, cuda: object) -> tuple[str, str]:
    """(driver for full support, minimum driver under minor version compatibility) for a toolkit."""
    minimum = MINOR_COMPAT_DRIVER.get(version.split(".")[0])
    full = TOOLKIT_DRIVER.get(version)
    if full is None:  # an update labkit's table lacks: fall back to the newest known of that minor
        same = [v for v in TOOLKIT_DRIVER if _minor(v) == _minor(version)]
        full = TOOLKIT_DRIVER[max(same, key=version_tuple)] if same else None
    if minimum is None or full is None:
        raise InvalidField(
            "cuda",
            cuda,
            tr("不在 labkit 的驱动表中", "is not in labkit's driver table"),
            tr("支持 CUDA 11.8 到 13.0", "CUDA 11.8 to 13.0 are known"),
        )
    return full, minimum


def _verdict_message(mode: str, driver: str, version: str, full: str, minimum: str) -> str:
    if mode == "full":
        return tr("驱动 {d} 完全支持 CUDA {c}", "driver {d} fully supports CUDA {c}", d=driver, c=version)
    if mode == "minor-compat":
        return tr(
            "驱动 {d} 低于 CUDA {c} 自带的 {f}，但满足 CUDA {m}.x 的次版本兼容（≥ {n}）：能运行，"
            "但用不了新驱动的功能，也不能 JIT 编译更新的 PTX",
            "driver {d} is older than CUDA {c}'s own {f} but meets CUDA {m}.x minor version "
            "compatibility (≥ {n}): it runs, without the newer driver's features and without JIT of "
            "newer PTX",
            d=driver,
            c=version,
            f=full,
            m=version.split(".")[0],
            n=minimum,
        )
    return tr(
        "驱动 {d} 太旧：CUDA {c} 至少需要 {n}（完整支持需要 {f}）；请升级宿主机的 NVIDIA 驱动",
        "driver {d} is too old: CUDA {c} needs at least {n} ({f} for full support); upgrade the "
        "host's NVIDIA driver",
        d=driver,
        c=version,
        n=minimum,
        f=full,
    )


def driver_supports(driver_version: str, cuda: str | CudaImage | WheelIndex) -> DriverVerdict:
    """Can a host with NVIDIA driver ``driver_version`` run CUDA ``cuda``?

    ``cuda`` is ``"12.8"``, ``"12.8.1"``, a wheel index name ``"cu128"``, or a parsed image / index.
    ``full`` when the driver is at least the toolkit's own driver; ``minor-compat`` when it is only at
    least the major's minimum (CUDA minor version compatibility: runs, but without features of the
    newer driver and without JIT of newer PTX); ``no`` otherwise.
    """
    try:
        drv = version_tuple(driver_version)
    except ValueError as exc:
        raise InvalidField(
            "driver_version",
            driver_version,
            tr("不是驱动版本号", "is not a driver version"),
            tr("用 nvidia-smi 查看，例如 550.54.15", "read it from nvidia-smi, e.g. 550.54.15"),
        ) from exc
    version = _cuda_version(cuda)
    full, minimum = _needed_drivers(version, cuda)
    mode: Literal["full", "minor-compat", "no"] = (
        "full" if drv >= version_tuple(full) else "minor-compat" if drv >= version_tuple(minimum) else "no"
    )
    message = _verdict_message(mode, str(driver_version), version, full, minimum)
    return DriverVerdict(mode != "no", mode, str(driver_version), version, full, minimum, message)


# ----------------------------------------------------------------------------------------------
# The conda route → the pip route
# ----------------------------------------------------------------------------------------------
# PyTorch no longer publishes conda packages. The official ``pytorch`` / ``pytorch-nightly``
# Anaconda channels were deprecated in pytorch/pytorch#138506 ("[Announcement] Deprecating
# PyTorch's official Anaconda channel", Oct 2024): 2.5 was the last release published there, and
# from 2.6 the install matrix on pytorch.org lists pip wheels only (its previous-versions page has
# ``conda install … -c pytorch -c nvidia`` lines up to v2.5.1 and none from v2.6.0). labkit turns
# the conda command into the equivalent pip command (:func:`pip_route`).
_CONDA_TORCH = {"pytorch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio"}


def _conda_words(command: str) -> list[str]:
    """The words of a ``conda install`` command; refuses anything else."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise InvalidField("command", command, tr("引号不配对", "has unbalanced quotes"), "") from exc
    if "conda" not in [w.rsplit("/", 1)[-1] for w in words[:2]] or "install" not in words:
        raise InvalidField(
            "command",
            command,
            tr("不是 conda install 命令", "is not a conda install command"),
            tr("给出课程里的 conda install pytorch … 命令", "give the course's conda install pytorch … line"),
        )
    return words


def _parse_conda_install(words: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """(pip package names with pins, the ``pytorch-cuda=`` version, the ``-c`` channels)."""
    packages: list[str] = []
    cuda: str | None = None
    channels: list[str] = []
    i = list(words).index("install") + 1
    while i < len(words):
        w = words[i]
        if w in ("-c", "--channel") and i + 1 < len(words):
            channels.append(words[i + 1])
            i += 2
            continue
        i += 1
        if w.startswith("-"):
            continue
        name, _, ver = w.partition("=")
        name = name.rstrip("=<>!")
        if name == "pytorch-cuda":
            cuda = ver.strip("=")
        elif name in _CONDA_TORCH:
            pin = ver.lstrip("=")
            packages.append(_CONDA_TORCH[name] + (f"=={pin}" if pin else ""))
    return packages, cuda, channels


def _conda_route_findings(argv: Sequence[str], wheel: WheelIndex, nightly: bool) -> list[Finding]:
    field = tr("安装命令", "install command")
    findings = [
        Finding(
            field,
            "error",
            tr(
                "PyTorch 已不再发布 conda 包：官方 pytorch / pytorch-nightly 频道自 2.6 起停止更新"
                "（pytorch/pytorch#138506，2.5 是最后一版）",
                "PyTorch no longer publishes conda packages: the official pytorch / pytorch-nightly "
                "channels stopped with 2.6 (pytorch/pytorch#138506; 2.5 was the last release there)",
            ),
            tr("改用 pip：{c}", "use pip instead: {c}", c=shlex.join(argv)),
            code="conda-route",
        )
    ]
    if nightly:
        findings.append(
            Finding(
                field,
                "warning",
                tr(
                    "nightly 构建每天都变，镜像无法复现",
                    "nightly builds change daily; the image cannot be rebuilt",
                ),
                tr("用正式版 torch=={t}", "pin a release, torch=={t}", t=TORCH_LATEST[wheel.torch[-1]]),
                code="nightly",
            )
        )
    return findings


def pip_route(command: str, *, torch: str | None = None) -> tuple[list[Finding], list[str]]:
    """Turn the course's ``conda install pytorch … pytorch-cuda=12.4 -c pytorch-nightly -c nvidia``
    into ``pip install torch … --index-url https://download.pytorch.org/whl/cu124`` (argv).

    Returns the findings (``conda-route`` always, ``nightly`` for ``-c pytorch-nightly``) and the pip
    argv (:func:`pip_argv`). A command that is not a conda install of PyTorch raises
    :class:`InvalidField`.
    """
    packages, cuda, channels = _parse_conda_install(_conda_words(command))
    if not any(p.startswith("torch") and not p.startswith(("torchvision", "torchaudio")) for p in packages):
        raise InvalidField(
            "command",
            command,
            tr("没有安装 pytorch", "does not install pytorch"),
            tr("这里只转换 PyTorch 的安装命令", "only PyTorch install commands are converted"),
        )
    name = f"cu{cuda.replace('.', '')}" if cuda else DEFAULT_INDEX
    wheel = WHEEL_INDEXES.get(name, WHEEL_INDEXES[DEFAULT_INDEX])
    # Pin torch (to ``torch`` or the index's newest release) so the image can be rebuilt; pip then
    # picks the torchvision / torchaudio that match it.
    pin = torch or TORCH_LATEST[wheel.torch[-1]]
    packages = [
        f"torch=={pin}" if p == "torch" or (torch and p.startswith("torch==")) else p for p in packages
    ]
    argv = pip_argv(wheel, packages)
    return _conda_route_findings(argv, wheel, any("nightly" in c for c in channels)), argv
