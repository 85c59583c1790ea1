"""Chapter 4's graded exercises (course 4.1 layers, 4.2 IaaS/PaaS/SaaS/DaaS), pure.

The question banks of :mod:`labkit.logic.exercise` for chapter 4, kept in their own module (the
generic module stays small): ``ch4.layers`` places the chapter's services (PVE, Jupyter, Seafile, a
data API) on the seed's layer table (4.1); ``ch4.models`` asks who manages what in each service
model (4.2). Registered in :data:`labkit.logic.exercise.EXERCISES`.
"""

from __future__ import annotations

from labkit.i18n import tr
from labkit.logic.exercise import Exercise, Question, _q

__all__ = ["layers_exercise", "models_exercise"]


def _layer_options() -> tuple[tuple[str, str, str], ...]:
    """The seed's 4.1 table: a layer and its category, with why it is (not) where the thing goes."""
    return (
        (
            "A",
            tr("数据层（数据信息）", "data layer (data)"),
            tr(
                "数据层是数据服务本身，例如天气数据、地震数据",
                "the data layer is the data service itself, e.g. weather or earthquake data",
            ),
        ),
        (
            "B",
            tr("应用层（应用软件）", "application layer (application software)"),
            tr(
                "应用层是直接给用户用的应用软件：云盘、笔记、办公软件",
                "the application layer is software users use directly: cloud drives, notes, office",
            ),
        ),
        (
            "C",
            tr("中间件（平台环境）", "middleware (platform)"),
            tr(
                "中间件是依赖环境和运行库，课程举的例子就是 Colab、Jupyter",
                "middleware is the runtime environment; the course's examples are Colab and Jupyter",
            ),
        ),
        (
            "D",
            tr("服务单元（基础设施）", "server units (infrastructure)"),
            tr(
                "服务单元是服务器和虚拟机，属于基础设施",
                "server units are servers and virtual machines: infrastructure",
            ),
        ),
    )


def _layer_question(qid: str, prompt: str, correct: str) -> Question:
    return _q(qid, prompt, _layer_options(), correct)


def layers_exercise() -> Exercise:
    """Course 4.1: where PVE, Jupyter, Seafile and a data API sit in the layer table."""
    return Exercise(
        "ch4.layers",
        tr("技术层次：把本章的服务放到层次表上", "Layers: place this chapter's services on the table"),
        (
            _layer_question(
                "q1",
                tr(
                    "PVE 提供的虚拟机和 LXC 容器属于哪一层？",
                    "Which layer do PVE's virtual machines and LXC containers belong to?",
                ),
                "D",
            ),
            _layer_question(
                "q2",
                tr(
                    "Jupyter Server（写代码、运行内核的环境）属于哪一层？",
                    "Which layer does Jupyter Server (the environment that runs your code) belong to?",
                ),
                "C",
            ),
            _layer_question(
                "q3",
                tr(
                    "Seafile（文件同步和共享的云盘）属于哪一层？",
                    "Which layer does Seafile (a file sync and share drive) belong to?",
                ),
                "B",
            ),
            _layer_question(
                "q4",
                tr(
                    "一个按城市返回天气观测数据的 HTTP 接口（数据 API）属于哪一层？",
                    "Which layer does an HTTP API returning weather observations per city belong to?",
                ),
                "A",
            ),
        ),
    )


def _who_manages_os_in_paas() -> Question:
    return _q(
        "q1",
        tr(
            "在全平台 PaaS 里，操作系统由谁安装和管理？",
            "In a full-platform PaaS, who installs and manages the operating system?",
        ),
        (
            (
                "A",
                tr("云服务提供商", "the cloud provider"),
                tr(
                    "正确：PaaS 的提供商部署并管理运行软件所需的平台，包括操作系统",
                    "right: the PaaS provider runs the platform, operating system included",
                ),
            ),
            (
                "B",
                tr("用户自己", "the user"),
                tr(
                    "不对：自己装操作系统是 IaaS；PaaS 用户只安装和运行自己的软件",
                    "no: installing the OS yourself is IaaS; a PaaS user only installs and runs software",
                ),
            ),
            (
                "C",
                tr("没有人，PaaS 不需要操作系统", "nobody: PaaS needs no operating system"),
                tr(
                    "不对：平台包括操作系统、数据库、中间件和运行库",
                    "no: the platform includes the OS, databases, middleware and runtimes",
                ),
            ),
        ),
        "A",
    )


def _iaas_user_chooses() -> Question:
    return _q(
        "q2",
        tr(
            "课程说 IaaS 的优点是灵活、自由。租用 IaaS 的用户可以自己决定哪些？（多选）",
            "IaaS is flexible. What does an IaaS user decide? (several)",
        ),
        (
            (
                "A",
                tr("安装什么操作系统", "which operating system to install"),
                tr("用户可以决定：这正是 IaaS 的自由", "the user decides: that is IaaS's freedom"),
            ),
            (
                "B",
                tr("是否安装数据库、安装哪种", "whether and which database to install"),
                tr("用户可以决定", "the user decides"),
            ),
            (
                "C",
                tr("机房的供电和物理网络", "the data centre's power and physical network"),
                tr(
                    "不对：电力、物理网络和存储硬件由提供商负责，用户租的是虚拟机",
                    "no: power, network and storage hardware are the provider's; the user rents VMs",
                ),
            ),
        ),
        "AB",
        True,
    )


def _saas_user_duty() -> Question:
    return _q(
        "q3",
        tr(
            "使用 SaaS（例如 Seafile 官方的网盘服务）时，用户主要负责什么？",
            "Using SaaS (e.g. Seafile's hosted service), what is the user mainly responsible for?",
        ),
        (
            (
                "A",
                tr("软件的安装和升级", "installing and upgrading the software"),
                tr(
                    "不对：SaaS 的安装和运维都由提供商负责",
                    "no: the provider installs and operates SaaS",
                ),
            ),
            (
                "B",
                tr("这些软件产生的数据", "the data the software produces"),
                tr("正确：用户管理自己的数据", "right: users manage their data"),
            ),
            (
                "C",
                tr("服务器的操作系统补丁", "the servers' OS patches"),
                tr("不对：那是提供商的运维工作", "no: that is the provider's operations work"),
            ),
        ),
        "B",
    )


def _daas_is() -> Question:
    return _q(
        "q4",
        tr("DaaS（数据即服务）交付给用户的是什么？", "What does DaaS (data as a service) deliver?"),
        (
            (
                "A",
                tr("一台可以自己装系统的虚拟机", "a VM to install yourself"),
                tr("不对：那是 IaaS", "no: that is IaaS"),
            ),
            (
                "B",
                tr(
                    "提供商收集并分析好的数据，通过编程接口提供",
                    "data the provider collected and analysed, through a programming interface",
                ),
                tr(
                    "正确：数据积累、数据分析、数据交付都由提供商完成",
                    "right: the provider collects, analyses and delivers the data",
                ),
            ),
            (
                "C",
                tr("一个可以运行自己代码的平台", "a platform to run your code"),
                tr("不对：那是 PaaS", "no: that is PaaS"),
            ),
        ),
        "B",
    )


def _which_model() -> Question:
    return _q(
        "q5",
        tr(
            "本章的三个例子分别对应哪种服务模型？",
            "Which service models are this chapter's three examples?",
        ),
        (
            (
                "A",
                tr("PVE：IaaS；Jupyter：PaaS；Seafile：SaaS", "PVE: IaaS; Jupyter: PaaS; Seafile: SaaS"),
                tr("正确", "right"),
            ),
            (
                "B",
                tr("PVE：PaaS；Jupyter：SaaS；Seafile：IaaS", "PVE: PaaS; Jupyter: SaaS; Seafile: IaaS"),
                tr(
                    "不对：PVE 出租虚拟机（IaaS），Jupyter 提供运行代码的平台（PaaS），"
                    "Seafile 是直接用的软件（SaaS）",
                    "no: PVE rents VMs (IaaS), Jupyter is a platform for code (PaaS), Seafile is "
                    "software used as is (SaaS)",
                ),
            ),
            (
                "C",
                tr("三个都是 SaaS", "all three are SaaS"),
                tr(
                    "不对：只有 Seafile 是直接交给用户使用的软件",
                    "no: only Seafile is software handed to users as is",
                ),
            ),
        ),
        "A",
    )


def models_exercise() -> Exercise:
    """Course 4.2: who manages what in IaaS, PaaS, SaaS and DaaS."""
    return Exercise(
        "ch4.models",
        tr("云服务模型：IaaS、PaaS、SaaS、DaaS", "Service models: IaaS, PaaS, SaaS, DaaS"),
        (_who_manages_os_in_paas(), _iaas_user_chooses(), _saas_user_duty(), _daas_is(), _which_model()),
    )
