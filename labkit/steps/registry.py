"""The local registry of chapter 2b (course 2.3, 2.4.8): start it, push to it, stop it, daemon.json.

* :class:`StartRegistry` (``ch2.registry.start``) runs the real distribution registry
  (``docker-registry serve CONFIG``) on a loopback port, default ``127.0.0.1:32000`` like MicroK8s'
  add-on, with a config file and storage under ``root`` (the work folder in the notebook). The
  process is started through the runner, so it belongs to the kernel that started it: it keeps
  running between cells and is stopped by :class:`StopRegistry` (``ch2.registry.stop``, which reads
  the pid file ``root/registry.pid`` and stops only a ``docker-registry serve <root's config>``), or
  at the latest when the kernel ends (the runner's child guard). A registry already answering
  ``/v2/`` on the address is "already present, verified".
* :class:`PushImage` (``ch2.registry.push``) tags an image ``ADDRESS/NAME:TAG`` and pushes it
  through the engine, then reads the catalog, the tag list and the manifest digest back: the
  evidence is the digest. Docker treats ``127.0.0.0/8`` registries as insecure by default, so no
  ``daemon.json`` change is needed for a loopback registry.
* :class:`AddInsecureRegistry` (``ch2.registry.insecure``) merges a registry into
  ``daemon.json``'s ``insecure-registries`` (:mod:`labkit.logic.daemon_json`): other keys kept,
  a backup, an atomic write, invalid JSON refused untouched; then the engine must be restarted.

The registry's HTTP API is read with urllib (no proxy: it is on loopback); plans show each read
as its ``curl`` form in ``probes``. Those reads are not recorded in ``ctx.commands`` (like engine
reads, see :mod:`labkit.logic.docker`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandFailed, InvalidField, NotSupportedHere
from labkit.files import atomic_target, replace_text, write_atomic
from labkit.i18n import consent_hint, field_name, tr
from labkit.logic import daemon_json as dj
from labkit.logic import registry as rg
from labkit.logic.docker import inspect_image_argv
from labkit.logic.docker_names import parse_reference
from labkit.steps.base import Plan, RunContext, Step, consent_to_edit, refuse_replacing
from labkit.steps.docker.common import DockerStep, find_image, sdk_note
from labkit.steps.docker.engine import DockerFailed, perform
from labkit.steps.pidfile import owned_pid, stop_process

__all__ = ["AddInsecureRegistry", "PushImage", "StartRegistry", "StopRegistry"]

CONFIG_NAME = "config.yml"
PID_NAME = "registry.pid"
STORAGE_NAME = "storage"
#: Seconds a started registry has to answer ``/v2/``.
READY_TIMEOUT = 20.0


# ----------------------------------------------------------------------------------------------
# HTTP reads (loopback, no proxy)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http(url: str, *, method: str = "GET", accept: tuple[str, ...] = (), timeout: float = 5) -> Answer | None:
    """One request to the registry; ``None`` when nothing answers (refused, timed out)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, method=method, headers={"Accept": ", ".join(accept)} if accept else {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Answer(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def registry_answers(reg: rg.Registry) -> Answer | None:
    """``GET /v2/`` answered 200 with the distribution API header, else ``None``."""
    answer = http(reg.base, timeout=2)
    if answer is None or answer.status != 200:
        return None
    if not answer.headers.get("docker-distribution-api-version", "").startswith("registry/2"):
        return None
    return answer


def manifest_digest(reg: rg.Registry, name: str, tag: str) -> str:
    """The digest the registry gives for ``name:tag`` (``HEAD`` with every manifest type), or ``""``."""
    answer = http(reg.manifest_url(name, tag), method="HEAD", accept=rg.MANIFEST_ACCEPT)
    if answer is None or answer.status != 200:
        return ""
    return rg.valid_digest(answer.headers.get("docker-content-digest"))


# ----------------------------------------------------------------------------------------------
# Start / stop
# ----------------------------------------------------------------------------------------------
class _RegistryStep(Step):
    """Shared by start and stop: the address, the folder and the files in it."""

    timeout = 60.0

    def __init__(self, root: str | os.PathLike[str] = "registry", address: str = rg.DEFAULT_ADDRESS) -> None:
        self.root = root
        self.address = address

    @property
    def registry(self) -> rg.Registry:
        return rg.parse_address(self.address)

    @property
    def folder(self) -> Path:
        return Path(os.path.abspath(self.root))

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_NAME

    @property
    def pid_path(self) -> Path:
        return self.folder / PID_NAME

    def owned_pid(self) -> int | None:
        """The pid in the pid file if that process is ``docker-registry serve`` of this config."""
        return owned_pid(
            self.pid_path,
            lambda cmdline: (
                len(cmdline) == 3
                and os.path.basename(cmdline[0]) == "docker-registry"
                and list(cmdline[1:]) == ["serve", str(self.config_path)]
            ),
        )


class StartRegistry(_RegistryStep):
    """Start ``docker-registry serve ROOT/config.yml`` on a loopback address (default :32000)."""

    check_id = "ch2.registry.start"

    def plan(self) -> Plan:
        reg = self.registry
        config = str(self.config_path)
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 {a} 启动本地镜像注册表（distribution registry），数据存放在 {s}",
                "start a local image registry (the distribution registry) on {a}, storing in {s}",
                a=reg.address,
                s=self.folder / STORAGE_NAME,
            ),
            commands=[rg.serve_argv(config)],
            files={config: rg.registry_config(str(self.folder / STORAGE_NAME), reg)},
            probes=[rg.curl_argv(reg.base)],
            notes=[
                tr(
                    "课程中的 MicroK8s 用 microk8s enable registry 在 localhost:32000 提供同样的注册表",
                    "in the course MicroK8s provides the same registry on localhost:32000 "
                    "(microk8s enable registry)",
                ),
                tr(
                    "注册表在后台运行，直到「停止注册表」一步或内核结束；进程号写在 {p}",
                    "the registry keeps running until the stop-registry step or the end of the kernel; "
                    "its pid is written to {p}",
                    p=self.pid_path,
                ),
                tr(
                    "只监听本机回环地址：没有认证，也没有 TLS",
                    "it listens on loopback only: no authentication, no TLS",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if registry_answers(self.registry) is None and shutil.which("docker-registry") is None:
            return tr(
                "没有 docker-registry；安装：sudo apt-get install -y --no-install-recommends docker-registry",
                "docker-registry is not installed; install it with: "
                "sudo apt-get install -y --no-install-recommends docker-registry",
            )
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        reg = self.registry
        answer = registry_answers(reg)
        if answer is None:
            return None
        pid = self.owned_pid()
        return {
            "address": reg.address,
            "pid": pid,
            "started_by_labkit": pid is not None,
            "api_version": answer.headers.get("docker-distribution-api-version"),
            "verified_by": tr(
                "GET {u} → 200（{v}）",
                "GET {u} → 200 ({v})",
                u=reg.base,
                v=answer.headers.get("docker-distribution-api-version"),
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        reg = self.registry
        (self.folder / STORAGE_NAME).mkdir(parents=True, exist_ok=True)
        with atomic_target(self.config_path, overwrite=True, backup=False) as tmp:
            tmp.write_text(rg.registry_config(str(self.folder / STORAGE_NAME), reg), encoding="utf-8")
        argv = rg.serve_argv(str(self.config_path))
        proc = ctx.start(argv)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while registry_answers(reg) is None:
                ctx.check_cancelled()
                if proc.poll() is not None or time.monotonic() > deadline:
                    rc = proc.stop(grace=1)
                    err = "\n".join(line for name, line in proc.lines(timeout=0.5))
                    raise CommandFailed(argv, rc, "", err, hint=_start_hint(reg))
                time.sleep(0.1)
        except BaseException:
            proc.stop(grace=1)
            raise
        pid = getattr(proc, "pid", None)
        if pid is not None:
            with atomic_target(self.pid_path, overwrite=True, backup=False) as tmp:
                tmp.write_text(f"{pid}\n", encoding="utf-8")
        ctx.progress(1.0)
        return {
            "address": reg.address,
            "pid": pid,
            "started_by_labkit": True,
            "config": str(self.config_path),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        reg = self.registry
        answer = registry_answers(reg)
        if answer is None:
            return CheckResult.failed(
                self.check_id,
                tr("{u} 没有应答", "{u} does not answer", u=reg.base),
                **evidence,
            )
        catalog = http(reg.catalog_url())
        repos = rg.parse_catalog(catalog.body) if catalog is not None else []
        return CheckResult.passed(
            self.check_id,
            tr(
                "注册表在 {a} 应答（{v}），现有 {n} 个仓库",
                "the registry answers on {a} ({v}); {n} repositories",
                a=reg.address,
                v=answer.headers.get("docker-distribution-api-version"),
                n=len(repos),
            ),
            **{**evidence, "repositories": repos},
        )


def _start_hint(reg: rg.Registry) -> str:
    return tr(
        "端口 {p} 可能已被占用：ss -ltnp 'sport = :{p}' 查看；或在「{f}」中换一个端口",
        "port {p} may be in use: see ss -ltnp 'sport = :{p}'; or choose another port in {f}",
        p=reg.port,
        f=field_name("address"),
    )


class StopRegistry(_RegistryStep):
    """Stop the registry :class:`StartRegistry` started in ``root`` (and only that one)."""

    check_id = "ch2.registry.stop"

    def plan(self) -> Plan:
        reg = self.registry
        return Plan(
            step=self.check_id,
            reason=tr(
                "停止 {a} 上由 labkit 启动的注册表（数据保留在 {s}）",
                "stop the registry labkit started on {a} (its data stays in {s})",
                a=reg.address,
                s=self.folder / STORAGE_NAME,
            ),
            probes=[rg.curl_argv(reg.base)],
            notes=[
                tr(
                    "向 {p} 中的进程发送 SIGTERM，前提是它正是 docker-registry serve {c}",
                    "sends SIGTERM to the process in {p}, only if it is docker-registry serve {c}",
                    p=self.pid_path,
                    c=self.config_path,
                )
            ],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if self.owned_pid() is not None or registry_answers(self.registry) is not None:
            return None
        return {
            "address": self.registry.address,
            "verified_by": tr("{u} 没有应答", "{u} does not answer", u=self.registry.base),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        pid = self.owned_pid()
        if pid is None:
            raise NotSupportedHere(
                tr(
                    "{a} 上的注册表不是 labkit 在 {r} 启动的，labkit 不会停止它",
                    "the registry on {a} was not started by labkit in {r}; labkit leaves it alone",
                    a=self.registry.address,
                    r=self.folder,
                )
            )
        stop_process(pid, grace=10)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()
        return {"address": self.registry.address, "pid": pid}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        if registry_answers(self.registry) is not None:
            return CheckResult.failed(
                self.check_id, tr("{u} 仍然应答", "{u} still answers", u=self.registry.base), **evidence
            )
        return CheckResult.passed(
            self.check_id,
            tr("注册表已停止（{a}）", "the registry is stopped ({a})", a=self.registry.address),
            **evidence,
        )


# ----------------------------------------------------------------------------------------------
# Push
# ----------------------------------------------------------------------------------------------
class PushImage(DockerStep):
    """``docker tag SOURCE ADDRESS/NAME:TAG`` + ``docker push``; checked by catalog, tags, digest."""

    check_id = "ch2.registry.push"

    def __init__(
        self,
        source: str = "labkit/ailab:latest",
        address: str = rg.DEFAULT_ADDRESS,
        name: str = "",
        tag: str = "",
        overwrite: bool = False,
    ) -> None:
        self.source = source
        self.address = address
        self.name = name
        self.tag = tag
        #: Push over a tag the registry already holds with other content (the registry keeps no backup).
        self.overwrite = overwrite

    @property
    def registry(self) -> rg.Registry:
        return rg.parse_address(self.address, loopback_only=False)

    @property
    def target(self) -> str:
        return rg.target_reference(self.source, self.registry, self.name, self.tag)

    def _repo_tag(self) -> tuple[str, str]:
        ref = parse_reference(self.target, "name")
        return ref.path, ref.tag_or_latest

    def plan(self) -> Plan:
        reg, target = self.registry, self.target
        path, tag = self._repo_tag()
        notes = [
            sdk_note(),
            tr(
                "注册表里的 {t} 若已是别的内容，不会覆盖，除非{c}（注册表不留备份）",
                "if the registry's {t} already holds other content it is not replaced unless you {c} "
                "(the registry keeps no backup)",
                t=target,
                c=consent_hint("overwrite"),
            ),
        ]
        if rg.needs_insecure_entry(reg.address):
            notes.append(
                tr(
                    "{h} 不是本机回环地址：需要先把它加入 daemon.json 的 insecure-registries 并重启 Docker",
                    "{h} is not a loopback address: add it to daemon.json's insecure-registries and "
                    "restart Docker first",
                    h=reg.address,
                )
            )
        else:
            notes.append(
                tr(
                    "Docker 默认把 127.0.0.0/8 上的注册表当作 insecure（HTTP），"
                    "所以本机注册表不用改 daemon.json",
                    "Docker treats registries on 127.0.0.0/8 as insecure (HTTP) by default, so a loopback "
                    "registry needs no daemon.json change",
                )
            )
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {s} 标记为 {t} 并推送到 {a}，再从注册表读回摘要",
                "tag {s} as {t}, push it to {a}, then read the digest back from the registry",
                s=self.source,
                t=target,
                a=reg.address,
            ),
            commands=[rg.tag_call(self.source, target).cli, rg.push_call(target).cli],
            probes=[
                inspect_image_argv(self.source),
                rg.curl_argv(reg.catalog_url()),
                rg.curl_argv(reg.tags_url(path)),
                rg.curl_argv(reg.manifest_url(path, tag), head=True, accept=rg.MANIFEST_ACCEPT),
            ],
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if registry_answers(self.registry) is None:
            return tr(
                "{u} 没有应答：先运行「启动注册表」一步",
                "{u} does not answer: run the start-registry step first",
                u=self.registry.base,
            )
        return super().unavailable(ctx)

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        """The source image already carries ``target``'s repo digest and the registry gives that digest."""
        path, tag = self._repo_tag()
        with ctx.engine(tr("查看镜像", "inspect the image")) as client:
            image = find_image(client, self.source)
            if image is None:
                return None
            repo_digests = image.attrs.get("RepoDigests") or []
        remote = manifest_digest(self.registry, path, tag)
        if not remote or f"{self.registry.address}/{path}@{remote}" not in repo_digests:
            return None
        return {
            "target": self.target,
            "image_id": image.id,
            "digest": remote,
            "verified_by": tr(
                "注册表中 {t} 的摘要 {d} 与本地镜像一致",
                "{t} in the registry has digest {d}, as the local image",
                t=self.target,
                d=remote,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        target = self.target
        tag, push = rg.tag_call(self.source, target), rg.push_call(target)
        with ctx.engine(push.action) as client:
            image = find_image(client, self.source)
            if image is None:
                raise InvalidField(
                    "source",
                    self.source,
                    tr("本机没有这个镜像", "is not an image on this engine"),
                    tr("先完成第 2a 章构建/提交镜像的一步", "make it first in chapter 2a (commit or build)"),
                )
            self._refuse_replacing(image)
            perform(ctx, client, tag)
            ctx.progress(0.2)
            outcome = rg.parse_push_stream(perform(ctx, client, push))
        if outcome.error or not outcome.digest:
            raise DockerFailed(
                push.cli,
                None,
                "",
                outcome.error or "\n".join(outcome.statuses),
                hint=tr("注册表在运行吗？地址对吗？", "is the registry running, at this address?"),
            )
        ctx.progress(1.0)
        return {
            "target": target,
            "image_id": image.id,
            "digest": outcome.digest,
            "size": outcome.size,
            "push_status": outcome.statuses,
        }

    def _refuse_replacing(self, image: Any) -> None:
        """The registry's tag holds other content than this image was pushed as: ask first."""
        path, tag = self._repo_tag()
        remote = manifest_digest(self.registry, path, tag)
        known = image.attrs.get("RepoDigests") or []
        if remote and not self.overwrite and f"{self.registry.address}/{path}@{remote}" not in known:
            raise refuse_replacing(
                self.target,
                [
                    tr(
                        "注册表中是 {d}，不是本机的 {s}（{i}）推送出的内容",
                        "the registry holds {d}, not what the local {s} ({i}) was pushed as",
                        d=remote,
                        s=self.source,
                        i=image.short_id,
                    )
                ],
            )

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        reg = self.registry
        path, tag = self._repo_tag()
        catalog = http(reg.catalog_url())
        tags = http(reg.tags_url(path))
        repos = rg.parse_catalog(catalog.body) if catalog else []
        tag_list = rg.parse_tags(tags.body) if tags else []
        digest = manifest_digest(reg, path, tag)
        found = {"catalog": repos[:50], "tags": tag_list, "registry_digest": digest}
        problems = []
        if path not in repos:
            problems.append(tr("目录（_catalog）里没有 {p}", "{p} is not in the catalog", p=path))
        if tag not in tag_list:
            problems.append(tr("{p} 没有标签 {t}", "{p} has no tag {t}", p=path, t=tag))
        if digest != evidence.get("digest"):
            problems.append(
                tr(
                    "注册表给出的摘要 {r} 与推送的 {d} 不同",
                    "the registry's digest {r} differs from the pushed {d}",
                    r=digest or "—",
                    d=evidence.get("digest"),
                )
            )
        if problems:
            return CheckResult.failed(self.check_id, tr("；", "; ").join(problems), **evidence, **found)
        return CheckResult.passed(
            self.check_id,
            tr("{t} 已在注册表中，摘要 {d}", "{t} is in the registry, digest {d}", t=self.target, d=digest),
            **evidence,
            **found,
        )


# ----------------------------------------------------------------------------------------------
# daemon.json
# ----------------------------------------------------------------------------------------------
class AddInsecureRegistry(Step):
    """Merge ``registry`` into ``daemon_json``'s ``insecure-registries`` (backup, atomic write).

    ``daemon_json`` defaults to the real ``/etc/docker/daemon.json``; the notebook passes a copy in
    the work folder (the path policy), and ``sample=True`` writes a practice file there first when
    it is missing (never into ``/etc/docker``).
    """

    check_id = "ch2.registry.insecure"
    timeout = 30.0

    def __init__(
        self,
        daemon_json: str | os.PathLike[str] = dj.DAEMON_JSON,
        registry: str = "localhost:32000",
        consent: bool = False,
        sample: bool = False,
    ) -> None:
        self.daemon_json = daemon_json
        self.registry = registry
        self.consent = consent
        self.sample = sample
        self._old: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.daemon_json)

    def _writes_sample(self) -> bool:
        real_dir = os.path.dirname(dj.DAEMON_JSON)
        return (
            self.sample and not self.path.exists() and os.path.dirname(os.path.abspath(self.path)) != real_dir
        )

    def _restart_note(self) -> str:
        return tr(
            "Docker 只在启动时读取 daemon.json：改完后运行 {c}，再用 docker info 查看 Insecure Registries",
            "Docker reads daemon.json only when it starts: run {c} afterwards, then check Insecure "
            "Registries in docker info",
            c=shlex.join(dj.RESTART_ARGV),
        )

    def plan(self) -> Plan:
        registry = dj.validate_registry(self.registry)
        path = str(self.path)
        notes = [
            tr(
                "合并进已有的 JSON：其它键保持不变；先备份为 {p}.labkit-bak-<时间>，再原子写入；"
                "文件不是合法 JSON 时拒绝修改",
                "merged into the existing JSON: every other key is kept; a backup {p}.labkit-bak-<time> "
                "is kept and the file is written atomically; a file that is not valid JSON is refused "
                "and left untouched",
                p=path,
            ),
            tr(
                '课程里直接写入 {"insecure-registries": [...]} 会抹掉文件里原有的设置',
                'the course writes {"insecure-registries": [...]} over the file, which drops every '
                "other setting in it",
            ),
            self._restart_note(),
        ]
        if not rg.needs_insecure_entry(registry):
            notes.append(
                tr(
                    "{r} 在本机回环地址上：Docker 默认已把 127.0.0.0/8 当作 insecure，这一项只是与课程一致",
                    "{r} is on loopback: Docker already treats 127.0.0.0/8 as insecure; the entry only "
                    "matches the course",
                    r=registry,
                )
            )
        files = {path: dj.sample_daemon_json()} if self._writes_sample() else {}
        return Plan(
            step=self.check_id,
            reason=tr(
                "把 {r} 加入 {p} 的 insecure-registries",
                "add {r} to insecure-registries in {p}",
                r=registry,
                p=path,
            ),
            files=files,
            notes=notes,
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if self._writes_sample() or self.path.is_file() or self.path.parent.is_dir():
            return None
        return tr(
            "{d} 不存在（这台机器没有装 Docker？）；可在「{f}」中给出一个副本来练习",
            "{d} does not exist (Docker not installed here?); give a copy in {f} to practise on",
            d=self.path.parent,
            f=field_name("daemon_json"),
        )

    def _read(self) -> str:
        return self.path.read_text(encoding="utf-8") if self.path.is_file() else ""

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        old = self._read()
        merge = dj.add_insecure_registry(old, self.registry, str(self.path))
        if merge.changed:
            return None
        self._old = old
        return {
            "path": str(self.path),
            "registry": self.registry,
            "insecure_registries": merge.after,
            "changed": False,
            "backup": None,
            "restart": shlex.join(dj.RESTART_ARGV),
            "verified_by": tr(
                "读回 {p}：insecure-registries 已含 {r}",
                "read back {p}: insecure-registries already lists {r}",
                p=self.path.name,
                r=self.registry,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        path = self.path
        sample_written = self._writes_sample()
        old = dj.sample_daemon_json() if sample_written else self._read()
        merge = dj.add_insecure_registry(old, self.registry, str(path))  # invalid JSON: refused here
        if not self.consent:
            raise consent_to_edit(path)
        if sample_written:
            write_atomic(path, old)
        self._old = old
        backup = replace_text(path, merge.text) if merge.changed else None
        ctx.progress(1.0)
        return {
            "path": str(path),
            "registry": self.registry,
            "insecure_registries": merge.after,
            "changed": merge.changed,
            "backup": str(backup) if backup else None,
            "sample_written": sample_written,
            "restart": shlex.join(dj.RESTART_ARGV),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        now = dj.parse_daemon_json(self._read(), str(self.path))
        before = dj.parse_daemon_json(self._old or "", str(self.path))
        listed = now.get(dj.KEY, [])
        lost = sorted(k for k in before if k != dj.KEY and now.get(k) != before[k])
        if self.registry not in listed or lost:
            problem = (
                tr("这些键变了：{k}", "these keys changed: {k}", k=", ".join(lost))
                if lost
                else tr("{k} 里没有 {r}", "{r} is not in {k}", k=dj.KEY, r=self.registry)
            )
            return CheckResult.failed(self.check_id, problem, **evidence)
        return CheckResult.passed(
            self.check_id,
            tr(
                "{p} 的 insecure-registries 含 {r}，其它键未变；需重启 Docker 才生效：{c}",
                "{p} lists {r} in insecure-registries, every other key unchanged; restart Docker for it "
                "to take effect: {c}",
                p=self.path,
                r=self.registry,
                c=shlex.join(dj.RESTART_ARGV),
            ),
            **evidence,
        )
