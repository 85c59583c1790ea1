"""Course 2.3 / 2.4.8 on a cluster, pure: MicroK8s command lines, rollout state, pod trouble explained.

* ``*_argv`` build the seed's MicroK8s commands (``microk8s status --wait-ready``, ``microk8s
  inspect``, ``microk8s enable dns registry dashboard``, ``microk8s kubectl get all -A``) and the
  current way to get a dashboard token (``kubectl create token``). :func:`parse_status` reads
  ``microk8s status`` (running? which add-ons are enabled).
* :func:`parse_rollout` turns a Deployment (the API object as a dict) into a :class:`Rollout`:
  desired / updated / ready / available replicas, ``observedGeneration`` against
  ``generation``, the conditions; a progress value and a message in the course language.
* :func:`explain_pod` and :func:`explain_event` name what went wrong with a Pod
  (ImagePullBackOff, ErrImagePull, CrashLoopBackOff, Pending/unschedulable,
  CreateContainerConfigError) and what to do, in both languages.

Nothing here talks to a cluster; the steps (:mod:`labkit.steps.k8s_cluster`) do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.i18n import tr

__all__ = [
    "DEFAULT_ADDONS",
    "FIELD_MANAGER",
    "Rollout",
    "Status",
    "dashboard_token_argv",
    "dashboard_token_note",
    "enable_argv",
    "explain_event",
    "explain_pod",
    "explain_reason",
    "get_all_argv",
    "inspect_argv",
    "kubectl_equivalent",
    "parse_rollout",
    "parse_status",
    "status_argv",
]

#: The add-ons the course enables (2.3): cluster DNS, the image registry on :32000, the dashboard.
DEFAULT_ADDONS = ("dns", "registry", "dashboard")
#: The field manager labkit's server-side applies own their fields as.
FIELD_MANAGER = "labkit"


# ----------------------------------------------------------------------------------------------
# MicroK8s command lines (course 2.3)
# ----------------------------------------------------------------------------------------------
def status_argv(*, wait_ready: bool = True) -> list[str]:
    """``microk8s status --wait-ready``: waits until the node is up, then lists the add-ons."""
    return ["microk8s", "status", *(["--wait-ready"] if wait_ready else [])]


def inspect_argv() -> list[str]:
    """``microk8s inspect``: checks the services and the configuration, writes a report tarball."""
    return ["microk8s", "inspect"]


def enable_argv(addons: Sequence[str] = DEFAULT_ADDONS) -> list[str]:
    """``microk8s enable dns registry dashboard`` (one command; the seed runs one per add-on)."""
    return ["microk8s", "enable", *addons]


def get_all_argv() -> list[str]:
    """``microk8s kubectl get all -A``: every pod, service and deployment of every namespace."""
    return ["microk8s", "kubectl", "get", "all", "-A"]


def dashboard_token_argv(*, namespace: str = "kube-system", account: str = "default") -> list[str]:
    """The current route to a dashboard login token: ``microk8s kubectl -n NS create token SA``."""
    return ["microk8s", "kubectl", "-n", namespace, "create", "token", account]


def dashboard_token_note() -> str:
    """Why the seed's ``default-token`` secret lookup no longer finds anything."""
    return tr(
        "课程里的 `kubectl -n kube-system get secret | grep default-token` 从 Kubernetes 1.24 起找不到"
        "任何东西：服务账号不再自动生成长期有效的令牌 Secret。现在用 "
        "`microk8s kubectl -n kube-system create token default` 取一个短期令牌（默认 1 小时），"
        "粘贴到仪表盘的登录页",
        "the course's `kubectl -n kube-system get secret | grep default-token` finds nothing since "
        "Kubernetes 1.24: service accounts no longer get a long-lived token Secret automatically. "
        "Use `microk8s kubectl -n kube-system create token default` for a short-lived token "
        "(1 hour by default) and paste it into the dashboard's login page",
    )


@dataclass(frozen=True)
class Status:
    """What ``microk8s status`` says: running or not, and the add-ons by state."""

    running: bool
    enabled: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


def parse_status(text: str) -> Status:
    """Parse ``microk8s status`` output (``microk8s is running`` … ``addons:`` ``enabled:`` …)."""
    running = "microk8s is running" in text
    enabled: list[str] = []
    disabled: list[str] = []
    section: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("enabled:", "disabled:"):
            section = enabled if line == "enabled:" else disabled
        elif section is not None and line and raw.startswith("    "):
            section.append(line.split()[0])
        elif line:
            section = None
    return Status(running, tuple(enabled), tuple(disabled))


def kubectl_equivalent(verb: str, kind: str, name: str, namespace: str, *extra: str) -> list[str]:
    """The ``kubectl`` line an API call corresponds to (shown in plans, recorded as run)."""
    return ["kubectl", "-n", namespace, *verb.split(), f"{kind.lower()}/{name}", *extra]


# ----------------------------------------------------------------------------------------------
# Rollout state
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rollout:
    """The rollout of one Deployment, read from its ``metadata`` and ``status``."""

    name: str
    desired: int
    updated: int
    ready: int
    available: int
    generation: int
    observed: int
    uid: str = ""
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seen(self) -> bool:
        """The controller has seen the latest spec (``observedGeneration >= generation``)."""
        return self.observed >= self.generation

    @property
    def stalled(self) -> bool:
        """``Progressing=False`` with ``ProgressDeadlineExceeded``: Kubernetes gave up waiting."""
        cond = self.conditions.get("Progressing", {})
        return cond.get("status") == "False" and cond.get("reason") == "ProgressDeadlineExceeded"

    @property
    def done(self) -> bool:
        """What ``kubectl rollout status`` waits for: every replica updated, ready and available."""
        return (
            self.seen
            and self.updated == self.desired
            and self.ready == self.desired
            and self.available == self.desired
        )

    @property
    def progress(self) -> float:
        """Ready replicas / desired (1.0 for a Deployment scaled to 0 once seen)."""
        if self.desired <= 0:
            return 1.0 if self.seen else 0.0
        return max(0.0, min(1.0, min(self.ready, self.updated) / self.desired))

    def message(self) -> str:
        """One line in the course language, like ``kubectl rollout status`` but with the numbers."""
        if self.stalled:
            return tr(
                "{n} 的发布超时（ProgressDeadlineExceeded）：{r}/{d} 个副本就绪；请看下面的 Pod 和事件",
                "rollout of {n} timed out (ProgressDeadlineExceeded): {r}/{d} replicas ready; "
                "see the pods and events below",
                n=self.name,
                r=self.ready,
                d=self.desired,
            )
        if not self.seen:
            return tr(
                "等待控制器处理 {n} 的新配置（第 {g} 版，已处理到第 {o} 版）",
                "waiting for the controller to see {n}'s new spec (generation {g}, observed {o})",
                n=self.name,
                g=self.generation,
                o=self.observed,
            )
        if self.done:
            return tr(
                "{n} 发布完成：{r}/{d} 个副本就绪并可用",
                "{n} rolled out: {r}/{d} replicas ready and available",
                n=self.name,
                r=self.ready,
                d=self.desired,
            )
        return tr(
            "{n} 发布中：已更新 {u}/{d}，就绪 {r}/{d}，可用 {a}/{d}",
            "{n} rolling out: {u}/{d} updated, {r}/{d} ready, {a}/{d} available",
            n=self.name,
            u=self.updated,
            r=self.ready,
            a=self.available,
            d=self.desired,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uid": self.uid,
            "generation": self.generation,
            "observed_generation": self.observed,
            "desired": self.desired,
            "updated": self.updated,
            "ready": self.ready,
            "available": self.available,
            "done": self.done,
        }


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_rollout(deployment: Mapping[str, Any]) -> Rollout:
    """A Deployment dict (as the API returns it) → :class:`Rollout`. Missing counts are 0
    (the API omits ``readyReplicas`` while none is ready); ``spec.replicas`` defaults to 1."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    conditions = {
        str(c.get("type")): dict(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)
    }
    return Rollout(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        desired=_int(spec.get("replicas"), 1),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        generation=_int(meta.get("generation"), 1),
        observed=_int(status.get("observedGeneration")),
        conditions=conditions,
    )


# ----------------------------------------------------------------------------------------------
# Pods and events explained
# ----------------------------------------------------------------------------------------------
def explain_reason(reason: str, detail: str = "") -> str | None:
    """What a waiting reason / event reason means and what to do; ``None`` for one not known."""
    d = f"（{detail}）" if detail else ""
    e = f" ({detail})" if detail else ""
    if reason in ("ImagePullBackOff", "ErrImagePull"):
        return tr(
            "拉取镜像失败{d}：检查镜像名和版本号是否写对；推送到 localhost:32000 的镜像要写成 "
            "localhost:32000/名称:版本；私有仓库需要 imagePullSecrets。改好清单后再应用一次",
            "the image could not be pulled{e}: check the image name and tag; an image pushed to "
            "localhost:32000 is written localhost:32000/name:tag; a private registry needs "
            "imagePullSecrets. Fix the manifest and apply it again",
            d=d,
            e=e,
        )
    if reason == "CrashLoopBackOff":
        return tr(
            "容器启动后不断退出{d}：用 kubectl logs POD --previous 看上一次的输出，"
            "检查启动命令、环境变量和端口",
            "the container keeps exiting after it starts{e}: read its last output with "
            "kubectl logs POD --previous and check the command, the env vars and the ports",
            d=d,
            e=e,
        )
    if reason in ("Unschedulable", "FailedScheduling"):
        return tr(
            "没有节点能运行这个 Pod{d}：多半是请求的 CPU/内存（resources.requests）超过了节点的余量；"
            "调小请求或副本数",
            "no node can run this pod{e}: most often the requested CPU/memory (resources.requests) "
            "exceeds what the node has left; lower the requests or the replicas",
            d=d,
            e=e,
        )
    if reason == "CreateContainerConfigError":
        return tr(
            "创建容器的配置有误{d}：引用的 ConfigMap 或 Secret（env、envFrom、volumes）不存在，"
            "或其中没有那个键；先创建它，再看 kubectl describe pod",
            "the container's configuration is wrong{e}: a ConfigMap or Secret it refers to (env, "
            "envFrom, volumes) does not exist or lacks the key; create it, then see kubectl describe pod",
            d=d,
            e=e,
        )
    return None


def explain_pod(pod: Mapping[str, Any]) -> list[str]:
    """Lines for one Pod dict: its phase, and each waiting container or unschedulable state explained."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = meta.get("name", "?")
    phase = status.get("phase", "?")
    lines: list[str] = []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if not reason:
            continue
        text = explain_reason(reason, str(waiting.get("message", ""))[:200])
        lines.append(
            tr(
                "Pod {p} 容器 {c}：{r}{x}",
                "pod {p} container {c}: {r}{x}",
                p=name,
                c=cs.get("name", "?"),
                r=reason,
                x=tr("——{t}", " — {t}", t=text) if text else "",
            )
        )
    if phase == "Pending" and not lines:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                text = explain_reason(str(cond.get("reason", "")), str(cond.get("message", ""))[:200])
                lines.append(
                    tr(
                        "Pod {p}：Pending——{t}",
                        "pod {p}: Pending — {t}",
                        p=name,
                        t=text or cond.get("reason"),
                    )
                )
    if not lines:
        lines.append(tr("Pod {p}：{s}", "pod {p}: {s}", p=name, s=phase))
    return lines


def explain_event(event: Mapping[str, Any]) -> str:
    """One line for a core/v1 Event dict: type, reason, object, message, and an explanation if known."""
    obj = event.get("involvedObject") or event.get("regarding") or {}
    reason = str(event.get("reason", ""))
    message = str(event.get("message") or event.get("note") or "")
    line = f"{event.get('type', '')} {reason} {obj.get('kind', '')}/{obj.get('name', '')}: {message}".strip()
    text = explain_reason(reason)
    return line + (tr("——{t}", " — {t}", t=text) if text else "")
