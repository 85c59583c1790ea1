"""Chapter 2a (containers): one panel factory per notebook cell.

Each factory only wires widget fields to a step of :mod:`labkit.steps.docker` (engine check, local
base, run, packaging, cleanup, build) or :mod:`labkit.steps.gpu`. Files go to the notebook's work
directory (:func:`labkit.ui.session`).
"""

from __future__ import annotations

import html
from typing import Any

from labkit.i18n import tr
from labkit.steps.base import overwrite_label
from labkit.ui import Session
from labkit.ui.panel import StepPanel, blank_is_none, step_factory

__all__ = [
    "build_image",
    "cleanup",
    "commit_container",
    "cuda_pairing",
    "delete_everything",
    "engine_check",
    "gpu_run",
    "hello",
    "load_image",
    "local_base",
    "run_image",
    "save_image",
    "torch_gpu",
]

#: The course's own Dockerfile (2.4.7), linted in the notebook to show what labkit changes and why.
SEED_DOCKERFILE = """\
# 使用 NVIDIA CUDA 12.5 基础镜像，基于 Ubuntu 22.04
FROM nvidia/cuda:12.5.0-runtime-ubuntu22.04

# 设置非交互式安装，避免安装过程中的提示
ENV DEBIAN_FRONTEND=noninteractive

# 安装 Python 3 和 pip
RUN apt-get update && apt-get install -y python3 python3-pip

# 安装 PyTorch (确保选择支持 CUDA 版本的 PyTorch)
RUN pip3 install torch torchvision torchaudio --index-url https://download.pytorch.org/whl/nightly/cu124

# 设置工作目录
WORKDIR /workspace

# 当容器启动时，默认执行 bash
CMD ["/bin/bash"]
"""
SEED_BASE = "nvidia/cuda:12.5.0-runtime-ubuntu22.04"
SEED_INDEX = "https://download.pytorch.org/whl/nightly/cu124"
SEED_CONDA = "conda install pytorch torchvision torchaudio pytorch-cuda=12.4 -c pytorch-nightly -c nvidia"


def engine_check() -> StepPanel:
    from labkit.steps.docker.engine_check import EngineCheck

    return StepPanel(
        tr("Docker 引擎检查", "Docker engine check"), step_factory(EngineCheck), {}, console=False
    )


def local_base(kind: str = "busybox") -> StepPanel:
    from labkit.steps.docker.local_base import BuildLocalBase

    return StepPanel(
        tr("本地基础镜像（无需镜像仓库）", "Local base image (no registry needed)"),
        step_factory(BuildLocalBase),
        {
            "kind": (kind, tr("种类", "kind"), ("busybox", "debian")),
            "rebuild": (False, tr("重新构建", "rebuild")),
        },
    )


def hello() -> StepPanel:
    from labkit.steps.docker.run import HelloContainer

    return StepPanel(
        tr("第一个容器（hello-world）", "First container (hello-world)"), step_factory(HelloContainer), {}
    )


def commit_container(image: str = "labkit/ailab:latest") -> StepPanel:
    from labkit.steps.docker.packaging import CommitContainer

    return StepPanel(
        tr("把容器提交为镜像（docker commit）", "Commit a container to an image (docker commit)"),
        step_factory(CommitContainer),
        {
            "image": (image, tr("新镜像名", "new image name")),
            "note": ("committed by labkit", tr("写进容器的一行字", "a line written into the container")),
            "overwrite": (False, tr("允许覆盖同名镜像", "overwrite an existing tag")),
        },
        console=False,
    )


def save_image(
    work: Session, image: str = "labkit/ailab:latest", name: str = "ailab-image.tar.gz"
) -> StepPanel:
    from labkit.steps.docker.packaging import SaveImage

    return StepPanel(
        tr("保存并压缩镜像（docker save | gzip）", "Save and compress an image (docker save | gzip)"),
        step_factory(SaveImage, work=work, paths=("name",), rename={"name": "path"}),
        {
            "image": (image, tr("镜像", "image")),
            "name": (name, tr("文件名（.tar 或 .tar.gz）", "file (.tar or .tar.gz)")),
            "overwrite": (False, overwrite_label()),
        },
        console=False,
    )


def load_image(work: Session, name: str = "ailab-image.tar.gz") -> StepPanel:
    from labkit.steps.docker.packaging import LoadImage

    return StepPanel(
        tr("导入镜像（docker load）", "Load an image (docker load)"),
        step_factory(LoadImage, work=work, paths=("name",), rename={"name": "path"}),
        {"name": (name, tr("文件名", "file"))},
        console=False,
    )


def run_image(image: str = "labkit/ailab:latest") -> StepPanel:
    from labkit.steps.docker.run import RunImage

    return StepPanel(
        tr("运行导入的镜像", "Run the loaded image"),
        step_factory(RunImage),
        {"image": (image, tr("镜像", "image"))},
        console=False,
    )


def cuda_pairing() -> None:
    """Show the matched CUDA base ↔ wheel index ↔ driver table and what is wrong with the course's pair."""
    from IPython.display import HTML, display

    from labkit.logic import cuda_images as ci
    from labkit.logic import dockerfile as dfl

    pair = ci.matched_pair()
    rows = [
        (tr("PyTorch", "PyTorch"), pair.torch),
        (tr("wheel 索引", "wheel index"), f"{pair.index.name}  ({pair.index.url})"),
        (tr("CUDA 基础镜像", "CUDA base image"), pair.image.tag),
        (tr("最低 NVIDIA 驱动", "minimum NVIDIA driver"), pair.min_driver),
    ]
    left = "style='text-align:left;vertical-align:top;padding:1px 10px 1px 0'"
    table = "".join(
        f"<tr><th {left}>{html.escape(k)}</th><td {left}>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    seed = ci.check_pair(SEED_BASE, SEED_INDEX)
    conda_findings, pip = ci.pip_route(SEED_CONDA)
    items = "".join(f"<li>{html.escape(str(f))}</li>" for f in [*seed, *conda_findings])
    lint = "".join(f"<li>{html.escape(str(f))}</li>" for f in dfl.lint_dockerfile(SEED_DOCKERFILE))
    display(
        HTML(
            f"<p><b>{tr('匹配的组合（默认）', 'matched pair (default)')}</b></p>"
            f"<table style='margin-left:0'>{table}</table>"
            f"<p><b>{tr('课程原来的组合', 'the course pairing')}</b></p><ul>{items}</ul>"
            f"<p>{tr('改用 pip：', 'use pip instead:')}</p><pre>{html.escape(' '.join(pip))}</pre>"
            f"<p><b>{tr('课程 Dockerfile 的检查结果', 'lint of the course Dockerfile')}</b></p>"
            f"<ul>{lint}</ul>"
        )
    )


def build_image(work: Session, tag: str = "labkit/ailab-cuda:latest") -> StepPanel:
    """The generated CUDA + PyTorch Dockerfile, built for real when its base image is available."""
    from labkit.logic import dockerfile as dfl
    from labkit.steps.docker.build import BuildImage

    def build(tag: str, pull: bool, overwrite: bool, **spec: Any) -> BuildImage:
        """The fields are the tag, the pull and overwrite choices and the generated Dockerfile's
        ImageSpec (a changed spec rewrites the Dockerfile: only with the checkbox, a backup is kept)."""
        return BuildImage(
            work.file("cuda-image"), tag, spec=dfl.ImageSpec(**spec), pull=pull, overwrite=overwrite
        )

    default = dfl.ImageSpec()
    work.file("cuda-image").mkdir(exist_ok=True)
    return StepPanel(
        tr("构建 CUDA + PyTorch 镜像", "Build the CUDA + PyTorch image"),
        step_factory(BuildImage, convert={"user": blank_is_none}, build=build),
        {
            "tag": (tag, tr("镜像名", "image tag")),
            "base_image": (default.base_image, tr("基础镜像", "base image")),
            "torch_packages": (default.torch_packages, tr("要安装的包", "packages")),
            "user": (default.user or "", tr("非 root 用户（空=root）", "non-root user (empty = root)")),
            "pull": (False, tr("拉取基础镜像（可能几个 GB）", "pull the base image (can be GBs)")),
            "overwrite": (
                False,
                tr("允许覆盖 Dockerfile（保留备份）", "overwrite the Dockerfile (keeps a backup)"),
            ),
        },
    )


def gpu_run() -> StepPanel:
    from labkit.steps.gpu import GpuRunPlan

    return StepPanel(
        tr("容器使用 GPU（--gpus all）", "GPU in a container (--gpus all)"), step_factory(GpuRunPlan), {}
    )


def torch_gpu() -> StepPanel:
    from labkit.steps.gpu import TorchGpuCheck

    return StepPanel(
        tr("PyTorch GPU 检查与矩阵乘法测速", "PyTorch GPU check and matmul benchmark"),
        step_factory(TorchGpuCheck),
        {"size": (8192, tr("矩阵大小 N", "matrix size N"))},
    )


def cleanup() -> StepPanel:
    from labkit.steps.docker.cleanup import CleanupLabkit

    return StepPanel(
        tr("清理 labkit 创建的容器和镜像", "Clean up what labkit created"),
        step_factory(CleanupLabkit),
        {"consent": (False, tr("我确认删除上面列出的对象", "I consent to deleting the objects listed"))},
        console=False,
    )


def delete_everything() -> StepPanel:
    from labkit.steps.docker.cleanup import DeleteEverything

    return StepPanel(
        tr("删除本机全部容器和镜像（危险）", "Delete ALL containers and images (dangerous)"),
        step_factory(DeleteEverything),
        {"confirm": ("", tr("输入 DELETE ALL 确认", "type DELETE ALL to confirm"))},
        console=False,
    )
