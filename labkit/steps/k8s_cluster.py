"""Course 2.3 / 2.4.8 on a cluster: MicroK8s, apply, rollout, scale, delete.

* :class:`MicroK8sStatus` (``ch2.k8s.status``) and :class:`MicroK8sEnable` (``ch2.k8s.addons``)
  run the seed's ``microk8s`` commands, only where ``microk8s`` is on PATH.
* :class:`ApplyManifest` (``ch2.k8s.apply``), :class:`WaitRollout` (``ch2.k8s.rollout``),
  :class:`Scale` (``ch2.k8s.scale``) and :class:`DeleteApp` (``ch2.k8s.delete``) talk to the API
  server through the official ``kubernetes`` client (:mod:`labkit.steps.k8s_api`, the one
  boundary), from the kubeconfig kubectl would use. Their plans show the equivalent ``kubectl``
  lines, which are what ``evidence["commands"]`` records.

Without a kubeconfig (or MicroK8s) :meth:`unavailable` says why, so ``auto`` mode plans them with
that reason. A test passes ``api_client=`` (a real ``ApiClient`` whose HTTP layer it records).
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from collections.abc import Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField
from labkit.i18n import consent_hint, tr
from labkit.logic import k8s_cluster as kc
from labkit.logic.k8s_manifests import AppFields, build_deployment, build_service, dump_yaml, require_valid
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.k8s_api import Cluster, ClusterFailed, kubeconfig_path

__all__ = [
    "ApplyManifest",
    "DeleteApp",
    "MicroK8sEnable",
    "MicroK8sStatus",
    "Scale",
    "WaitRollout",
    "cluster_unavailable",
    "detect",
]


def detect() -> dict[str, str | None]:
    """What this machine has: ``microk8s`` and ``kubectl`` on PATH, a kubeconfig file."""
    path = kubeconfig_path()
    return {
        "microk8s": shutil.which("microk8s"),
        "kubectl": shutil.which("kubectl"),
        "kubeconfig": str(path) if path else None,
    }


def cluster_unavailable() -> str | None:
    """Why no API server can be reached from here: no kubeconfig, or no client (``None`` when both exist)."""
    found = detect()
    if found["kubeconfig"] is None:
        if found["microk8s"]:
            return tr(
                "有 MicroK8s 但没有 kubeconfig；生成：mkdir -p ~/.kube && microk8s config > ~/.kube/config",
                "MicroK8s is installed but there is no kubeconfig; create one with: "
                "mkdir -p ~/.kube && microk8s config > ~/.kube/config",
            )
        return tr(
            "这台机器没有 Kubernetes 集群：没有 microk8s，也没有 kubeconfig（KUBECONFIG 或 ~/.kube/config）；"
            "在装了 MicroK8s 的机器上运行（sudo snap install microk8s --classic）",
            "no Kubernetes cluster on this machine: no microk8s and no kubeconfig (KUBECONFIG or "
            "~/.kube/config); run this where MicroK8s is installed (sudo snap install microk8s --classic)",
        )
    if importlib.util.find_spec("kubernetes") is None:
        return tr(
            "没有安装 kubernetes Python 客户端；安装：pip install 'labkit[k8s]'",
            "the kubernetes Python client is not installed; install it with: pip install 'labkit[k8s]'",
        )
    return None


def _microk8s_missing() -> str | None:
    if shutil.which("microk8s"):
        return None
    return tr(
        "没有 microk8s 命令；安装：sudo snap install microk8s --classic（需要 snap，容器里不行）",
        "the microk8s command is not installed; install it with: sudo snap install microk8s --classic "
        "(needs snap; not inside a container)",
    )


# ----------------------------------------------------------------------------------------------
# MicroK8s commands
# ----------------------------------------------------------------------------------------------
class MicroK8sStatus(Step):
    """``microk8s status --wait-ready`` (and ``microk8s inspect`` when asked)."""

    check_id = "ch2.k8s.status"
    timeout = 300.0

    def __init__(self, *, inspect: bool = False) -> None:
        self.inspect = inspect

    def plan(self) -> Plan:
        commands = [kc.status_argv()] + ([kc.inspect_argv()] if self.inspect else [])
        return Plan(
            step=self.check_id,
            reason=tr(
                "查看 MicroK8s 是否在运行、启用了哪些插件",
                "see whether MicroK8s runs and which add-ons are on",
            ),
            commands=commands,
            notes=[
                tr(
                    "不在 microk8s 组里的用户要在命令前加 sudo（课程 2.3）",
                    "a user outside the microk8s group prefixes the commands with sudo (course 2.3)",
                ),
                tr("查看全部对象：{c}", "see every object: {c}", c=" ".join(kc.get_all_argv())),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _microk8s_missing()

    def run(self, ctx: RunContext) -> dict[str, Any]:
        done = ctx.run(kc.status_argv(), timeout=self.timeout)
        status = kc.parse_status(done.stdout)
        evidence: dict[str, Any] = {"running": status.running, "enabled": list(status.enabled)}
        if self.inspect:
            evidence["inspect_tail"] = ctx.run(kc.inspect_argv(), timeout=self.timeout).stdout[-2000:]
        return evidence

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if not evidence["running"]:
            return CheckResult.failed(
                self.check_id,
                tr("MicroK8s 没有运行：microk8s start", "MicroK8s is not running: microk8s start"),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "MicroK8s 在运行；已启用：{a}",
                "MicroK8s is running; enabled: {a}",
                a=", ".join(evidence["enabled"]) or "-",
            ),
            **evidence,
        )


class MicroK8sEnable(Step):
    """``microk8s enable dns registry dashboard``, skipped when they are already enabled."""

    check_id = "ch2.k8s.addons"
    timeout = 600.0

    def __init__(self, addons: Sequence[str] = kc.DEFAULT_ADDONS) -> None:
        self.addons = tuple(addons)

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr("启用插件：{a}", "enable the add-ons: {a}", a=", ".join(self.addons)),
            commands=[kc.enable_argv(self.addons)],
            probes=[kc.status_argv()],
            notes=[
                kc.dashboard_token_note(),
                tr("取仪表盘令牌：{c}", "get a dashboard token: {c}", c=" ".join(kc.dashboard_token_argv())),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _microk8s_missing()

    def _enabled(self, ctx: RunContext) -> list[str]:
        return list(kc.parse_status(ctx.run(kc.status_argv(), timeout=self.timeout).stdout).enabled)

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        enabled = self._enabled(ctx)
        if not set(self.addons) <= set(enabled):
            return None
        return {"enabled": enabled, "verified_by": "microk8s status"}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.run(kc.enable_argv(self.addons), timeout=self.timeout)
        return {"enabled": self._enabled(ctx)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        missing = [a for a in self.addons if a not in evidence["enabled"]]
        if missing:
            return CheckResult.failed(
                self.check_id,
                tr("插件未启用：{m}", "add-ons not enabled: {m}", m=", ".join(missing)),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id, tr("已启用：{a}", "enabled: {a}", a=", ".join(self.addons)), **evidence
        )


# ----------------------------------------------------------------------------------------------
# API steps
# ----------------------------------------------------------------------------------------------
class _ClusterStep(Step):
    """Shared by the API steps: the namespace, the client, the reason a host cannot run them."""

    timeout = 300.0

    def __init__(self, *, namespace: str = "default", api_client: Any = None) -> None:
        self.namespace = namespace
        self.api_client = api_client

    def unavailable(self, ctx: RunContext) -> str | None:
        return None if self.api_client is not None else cluster_unavailable()

    def cluster(self) -> Cluster:
        return Cluster(self.api_client) if self.api_client is not None else Cluster.connect()

    def kubectl(self, verb: str, kind: str, name: str, *extra: str) -> list[str]:
        return kc.kubectl_equivalent(verb, kind, name, self.namespace, *extra)


class ApplyManifest(_ClusterStep):
    """Server-side apply of the chapter's manifest (fields, YAML text, or with ``from_file=True`` the
    file ``path`` as the manifest panel wrote it, read when the step runs), field manager ``labkit``."""

    check_id = "ch2.k8s.apply"

    def __init__(
        self,
        *,
        fields: AppFields | None = None,
        manifest: str | None = None,
        path: str = "nginx-deployment.yaml",
        service: bool = False,
        from_file: bool = False,
        namespace: str = "default",
        api_client: Any = None,
    ) -> None:
        super().__init__(namespace=namespace, api_client=api_client)
        self.fields = fields
        self.manifest = manifest
        self.path = path
        self.service = service
        self.from_file = from_file

    def _read(self) -> str:
        from pathlib import Path

        try:
            return Path(self.path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidField(
                "path",
                str(self.path),
                tr("读不到这个清单文件（{e}）", "cannot read this manifest file ({e})", e=exc.strerror),
                tr("先运行上面的清单面板写出它", "run the manifest panel above first to write it"),
            ) from exc

    def _docs(self) -> list[dict[str, Any]]:
        import yaml

        if self.from_file:
            return [d for d in yaml.safe_load_all(self._read()) if d]
        if self.manifest is not None:
            return [d for d in yaml.safe_load_all(self.manifest) if d]
        fields = require_valid(self.fields or AppFields())
        return [build_deployment(fields)] + ([build_service(fields)] if self.service else [])

    def argv(self) -> list[str]:
        return [
            "kubectl", "apply", "--server-side", f"--field-manager={kc.FIELD_MANAGER}",
            "--force-conflicts", "-n", self.namespace, "-f", str(self.path),
        ]  # fmt: skip

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "用服务器端应用（server-side apply）把 {p} 提交到集群的 {n} 命名空间",
                "submit {p} to the cluster's {n} namespace with server-side apply",
                p=self.path,
                n=self.namespace,
            ),
            commands=[self.argv()],
            files={} if self.from_file else {str(self.path): dump_yaml(self._docs())},
            notes=[
                *self._file_note(),
                tr(
                    "通过官方 kubernetes Python 客户端发送 PATCH"
                    "（Content-Type: application/apply-patch+yaml），与上面的 kubectl 命令等价；"
                    "再次应用相同的清单不会改变任何东西",
                    "sent as a PATCH (Content-Type: application/apply-patch+yaml) through the official "
                    "kubernetes Python client, equivalent to the kubectl line above; applying the same "
                    "manifest again changes nothing",
                ),
            ],
        )

    def _file_note(self) -> list[str]:
        if not self.from_file:
            return []
        return [
            tr(
                "运行时读取 {p}（清单面板写出、校验过的文件）",
                "reads {p} when it runs (the file the manifest panel wrote and validated)",
                p=self.path,
            )
        ]

    def run(self, ctx: RunContext) -> dict[str, Any]:
        docs = self._docs()
        cluster = self.cluster()
        ctx.record(self.argv())
        objects = []
        for doc in docs:
            got = cluster.apply(doc, self.namespace, argv=self.argv())
            meta = got.get("metadata") or {}
            objects.append(
                {
                    "kind": got.get("kind", doc.get("kind")),
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "generation": meta.get("generation"),
                    "resourceVersion": meta.get("resourceVersion"),
                }
            )
            ctx.say(tr("已应用 {k}/{n}", "applied {k}/{n}", k=objects[-1]["kind"], n=objects[-1]["name"]))
        return {"namespace": self.namespace, "objects": objects}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        missing = [o for o in evidence["objects"] if not o.get("uid")]
        if missing or not evidence["objects"]:
            return CheckResult.failed(
                self.check_id,
                tr("API 服务器没有返回对象的 uid", "the API server returned no uid for the objects"),
                **evidence,
            )
        what = ", ".join(
            f"{o['kind']}/{o['name']} (generation {o['generation']})" for o in evidence["objects"]
        )
        return CheckResult.passed(self.check_id, tr("已应用：{w}", "applied: {w}", w=what), **evidence)


class WaitRollout(_ClusterStep):
    """Watch a Deployment until N/N replicas are ready (or the timeout); explain pods on failure."""

    check_id = "ch2.k8s.rollout"

    def __init__(
        self,
        name: str = "nginx-deployment",
        *,
        timeout_s: int = 120,
        namespace: str = "default",
        api_client: Any = None,
    ) -> None:
        super().__init__(namespace=namespace, api_client=api_client)
        self.name = name
        self.timeout_s = int(timeout_s)

    def argv(self) -> list[str]:
        return self.kubectl("rollout status", "deployment", self.name, f"--timeout={self.timeout_s}s")

    def probes(self) -> list[list[str]]:
        return [
            ["kubectl", "-n", self.namespace, "get", "pods", "-l", "<selector>"],
            ["kubectl", "-n", self.namespace, "get", "events"],
        ]

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "等待 {n} 的全部副本就绪（最多 {t} 秒），显示就绪数/期望数",
                "wait until every replica of {n} is ready (at most {t} s), showing ready/desired",
                n=self.name,
                t=self.timeout_s,
            ),
            commands=[self.argv()],
            probes=self.probes(),
            notes=[
                tr(
                    "失败时列出 Pod 和事件，并解释 ImagePullBackOff、CrashLoopBackOff 等原因",
                    "on failure the pods and events are listed, with ImagePullBackOff, CrashLoopBackOff "
                    "and the like explained",
                )
            ],
        )

    def _follow(self, ctx: RunContext, cluster: Cluster, first: kc.Rollout) -> kc.Rollout:
        state = first
        last = ""
        deadline = time.monotonic() + self.timeout_s
        while not state.done and not state.stalled and time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            for obj in cluster.watch_deployment(self.name, self.namespace, left, argv=self.argv()):
                ctx.check_cancelled()
                state = kc.parse_rollout(obj)
                ctx.progress(state.progress)
                if state.message() != last:
                    last = state.message()
                    ctx.say(last)
                if state.done or state.stalled:
                    break
            else:
                break  # the server ended the watch at its timeout
        return state

    def run(self, ctx: RunContext) -> dict[str, Any]:
        cluster = self.cluster()
        ctx.record(self.argv())
        obj = cluster.read("Deployment", self.name, self.namespace, argv=self.argv())
        if obj is None:
            raise ClusterFailed(
                self.argv(),
                404,
                tr("找不到 Deployment {n}", "Deployment {n} not found", n=self.name),
                tr("先运行「应用清单」一步（ApplyManifest）", "run the apply step (ApplyManifest) first"),
            )
        state = kc.parse_rollout(obj)
        ctx.progress(state.progress)
        ctx.say(state.message())
        state = self._follow(ctx, cluster, state)
        evidence: dict[str, Any] = {**state.to_dict(), "rollout_message": state.message(), "explanations": []}
        if not state.done:
            evidence["explanations"] = self._explain(ctx, cluster, obj)
        return evidence

    def _explain(self, ctx: RunContext, cluster: Cluster, obj: dict[str, Any]) -> list[str]:
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        pods_argv, events_argv = self.probes()
        ctx.record(pods_argv)
        pods = cluster.pods(self.namespace, selector, argv=pods_argv)
        lines = [line for pod in pods for line in kc.explain_pod(pod)]
        ctx.record(events_argv)
        names = {self.name, *((p.get("metadata") or {}).get("name") for p in pods)}
        for event in cluster.events(self.namespace, argv=events_argv):
            obj_name = str((event.get("involvedObject") or {}).get("name", ""))
            if event.get("type") == "Warning" and (obj_name in names or obj_name.startswith(self.name + "-")):
                lines.append(kc.explain_event(event))
        return lines

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if evidence["done"]:
            return CheckResult.passed(self.check_id, evidence["rollout_message"], **evidence)
        message = evidence["rollout_message"]
        if evidence["explanations"]:
            message += "\n" + "\n".join(evidence["explanations"][:8])
        return CheckResult.failed(self.check_id, message, **evidence)


class Scale(_ClusterStep):
    """Set a Deployment's replicas (``kubectl scale``); the rollout step then waits for them."""

    check_id = "ch2.k8s.scale"

    def __init__(
        self,
        name: str = "nginx-deployment",
        replicas: int = 3,
        *,
        namespace: str = "default",
        api_client: Any = None,
    ) -> None:
        super().__init__(namespace=namespace, api_client=api_client)
        self.name = name
        self.replicas = int(replicas)

    def argv(self) -> list[str]:
        return self.kubectl("scale", "deployment", self.name, f"--replicas={self.replicas}")

    def read_argv(self) -> list[str]:
        return self.kubectl("get", "deployment", self.name, "-o", "json")

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {n} 的副本数设为 {r}", "set the replicas of {n} to {r}", n=self.name, r=self.replicas
            ),
            commands=[self.argv()],
            probes=[self.read_argv()],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        ctx.record(self.read_argv())
        obj = self.cluster().read("Deployment", self.name, self.namespace, argv=self.read_argv())
        if obj is None or (obj.get("spec") or {}).get("replicas") != self.replicas:
            return None
        return {"replicas": self.replicas, "verified_by": f"spec.replicas = {self.replicas}"}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        ctx.record(self.argv())
        got = self.cluster().scale(self.name, self.namespace, self.replicas, argv=self.argv())
        return {"replicas": (got.get("spec") or {}).get("replicas")}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if evidence["replicas"] != self.replicas:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "副本数是 {g}，不是 {r}",
                    "replicas are {g}, not {r}",
                    g=evidence["replicas"],
                    r=self.replicas,
                ),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr("{n} 的副本数已设为 {r}", "{n} scaled to {r} replicas", n=self.name, r=self.replicas),
            **evidence,
        )


class DeleteApp(_ClusterStep):
    """Delete the app's Deployment (and Service); only with ``confirm=True`` (the panel's checkbox)."""

    check_id = "ch2.k8s.delete"

    def __init__(
        self,
        name: str = "nginx-deployment",
        *,
        kinds: Sequence[str] = ("Deployment",),
        confirm: bool = False,
        namespace: str = "default",
        api_client: Any = None,
    ) -> None:
        super().__init__(namespace=namespace, api_client=api_client)
        self.name = name
        self.kinds = tuple(kinds)
        self.confirm = confirm

    def argvs(self) -> list[list[str]]:
        return [self.kubectl("delete", kind, self.name) for kind in self.kinds]

    def read_argvs(self) -> list[list[str]]:
        return [self.kubectl("get", kind, self.name, "-o", "json") for kind in self.kinds]

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "从集群删除 {n}（{k}）",
                "delete {n} ({k}) from the cluster",
                n=self.name,
                k=", ".join(self.kinds),
            ),
            commands=self.argvs(),
            probes=self.read_argvs(),
            notes=[tr("需要你确认：{h}", "needs your confirmation: {h}", h=consent_hint("confirm"))],
        )

    def _present(self, ctx: RunContext, cluster: Cluster) -> list[str]:
        found = []
        for kind, argv in zip(self.kinds, self.read_argvs(), strict=True):
            ctx.record(argv)
            if cluster.read(kind, self.name, self.namespace, argv=argv) is not None:
                found.append(kind)
        return found

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if self._present(ctx, self.cluster()):
            return None
        return {"deleted": [], "verified_by": tr("对象不存在", "the objects do not exist")}

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.confirm:
            raise ConsentRequired(
                tr("从集群删除 {n}", "delete {n} from the cluster", n=self.name), keyword="confirm"
            )
        cluster = self.cluster()
        for kind, argv in zip(self.kinds, self.argvs(), strict=True):
            ctx.record(argv)
            cluster.delete(kind, self.name, self.namespace, argv=argv)
        return {"deleted": list(self.kinds)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        return CheckResult.passed(
            self.check_id,
            tr(
                "{n} 已从集群删除（Pod 随后停止）",
                "{n} deleted from the cluster (its pods stop shortly after)",
                n=self.name,
            ),
            **evidence,
        )
