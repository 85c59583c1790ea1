"""The one boundary between labkit and the Docker SDK: connecting, calling, translating errors.

Steps get a client from the connector their run context carries (:class:`DockerEngine`, swappable
in tests like the runner): ``with ctx.engine(action) as client:``. :meth:`DockerEngine.connect`
*negotiates* the API version (pinning ``version="1.45"`` fails on Debian 12's engine 20.10) and
pings, so a dead daemon is reported at connect time rather than in the middle of a step.

:func:`perform` runs one :class:`~labkit.logic.docker.DockerCall` (its CLI form recorded in
``ctx.commands``, then the SDK call). :func:`docker_errors` / :func:`translate` turn SDK, requests
and socket exceptions into :mod:`labkit.errors` exactly once, one named rule per kind of refusal
(``raise ... from exc`` keeps the original). The socket diagnosis reuses
:func:`labkit.logic.host.explain_docker_error` (the words ``labkit doctor`` prints).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import shlex
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from labkit.errors import CommandFailed, InvalidField, LabkitError, NotSupportedHere, ToolMissing
from labkit.i18n import api_note, tr
from labkit.logic.docker import DockerCall
from labkit.logic.docker_names import EngineProblem, classify_engine_error, port_owner_command, short_id
from labkit.logic.host import explain_docker_error

if TYPE_CHECKING:  # the SDK costs ~0.25 s to import: only inside functions
    import docker

    from labkit.steps.base import RunContext

__all__ = [
    "DEFAULT_SOCKET",
    "DockerEngine",
    "DockerFailed",
    "call_errors",
    "docker_errors",
    "docker_host",
    "perform",
    "socket_group",
    "start_command",
    "translate",
]

DEFAULT_SOCKET = "/var/run/docker.sock"


class DockerFailed(CommandFailed):
    """The engine refused an API call. ``argv`` is the equivalent CLI command when one is known.

    A :class:`CommandFailed` so the step template shows it like a failed command (the engine's
    message as the stderr tail, the hint below), with ``returncode`` the HTTP status if any.
    """

    def __init__(
        self,
        action: str,
        message: str,
        *,
        status: int | None = None,
        hint: str = "",
        argv: Sequence[str] | None = None,
        log: str = "",
    ) -> None:
        self.action = action
        self.status = status
        super().__init__(list(argv or []), status, log, message, hint)

    @property
    def command(self) -> str:
        return shlex.join(self.argv) if self.argv else self.action

    def _what(self) -> str:
        engine = tr("Docker 引擎", "Docker engine")
        return tr(
            "失败（{e}{s}）", "failed ({e}{s})", e=engine, s=f" HTTP {self.status}" if self.status else ""
        )


# ----------------------------------------------------------------------------------------------
# Where the engine is, and how to start it
# ----------------------------------------------------------------------------------------------
def docker_host() -> str:
    """The engine address the SDK will use (``DOCKER_HOST`` or the default unix socket)."""
    return os.environ.get("DOCKER_HOST", "") or f"unix://{DEFAULT_SOCKET}"


def _socket_path() -> str | None:
    host = docker_host()
    return host[len("unix://") :] if host.startswith("unix://") else None


def socket_group(path: str | None = None) -> str | None:
    """Name of the group owning the engine socket (``docker`` on Debian/Ubuntu), if it exists."""
    path = path or _socket_path()
    if not path:
        return None
    try:
        gid = os.stat(path).st_gid
    except OSError:
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def start_command() -> str:
    """How to start the engine on this host: systemd where it runs, else dockerd by hand."""
    if os.path.isdir("/run/systemd/system"):
        return (
            "sudo systemctl start docker   # "
            + tr("开机自启：", "start at boot: ")
            + ("sudo systemctl enable docker")
        )
    return "sudo dockerd > /var/log/dockerd.log 2>&1 &   # " + tr(
        "此系统没有 systemd：直接在后台启动 dockerd", "no systemd here: run dockerd in the background"
    )


def _engine_installed() -> bool:
    return bool(shutil.which("dockerd") or shutil.which("docker"))


# ----------------------------------------------------------------------------------------------
# Translation
# ----------------------------------------------------------------------------------------------
def _api_details(exc: BaseException) -> tuple[str, int | None]:
    """(message, HTTP status) of an SDK error; the engine's own words when it sent any."""
    explanation = getattr(exc, "explanation", None)
    status = getattr(exc, "status_code", None)
    text = str(explanation) if explanation else str(exc)
    return text, status if isinstance(status, int) else None


def _build_log_tail(exc: BaseException, lines: int = 20) -> str:
    out: list[str] = []
    for item in getattr(exc, "build_log", None) or []:
        if isinstance(item, dict):
            text = item.get("stream") or item.get("error") or ""
            if not text and item.get("errorDetail"):
                text = str(item["errorDetail"].get("message", ""))
        else:
            text = str(item)
        out.extend(t for t in str(text).splitlines() if t.strip())
    return "\n".join(out[-lines:])


@dataclass(frozen=True)
class _Refusal:
    """One SDK / OS exception, read once: what each translation rule below looks at."""

    exc: BaseException
    action: str
    text: str
    status: int | None
    argv: Sequence[str] | None
    port: int | str | None
    problem: EngineProblem


def _build_failed(r: _Refusal) -> LabkitError:
    log = _build_log_tail(r.exc)
    msg = str(getattr(r.exc, "msg", r.text))
    return DockerFailed(
        r.action,
        f"{log}\n{msg}" if log and msg not in log else (log or msg),
        argv=r.argv,
        log=log,
        hint=tr(
            "看上面构建日志的最后几行：通常是某个 RUN 命令失败",
            "read the last lines of the build log above: usually one RUN command failed",
        ),
    )


def _container_failed(r: _Refusal) -> LabkitError:
    stderr = getattr(r.exc, "stderr", b"") or b""
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    return DockerFailed(
        r.action,
        stderr or r.text,
        status=getattr(r.exc, "exit_status", None),
        argv=r.argv,
        hint=tr("容器里的命令以非零状态退出", "the command inside the container exited non-zero"),
    )


def _api_version(r: _Refusal) -> LabkitError:
    return NotSupportedHere(
        tr(
            "Docker 客户端与引擎的 API 版本不匹配：{t}",
            "Docker client and engine disagree on the API version: {t}",
            t=r.text.strip().splitlines()[0][:200],
        ),
        tr(
            "不要固定 API 版本（docker.from_env() 会自动协商；去掉 version= 或 DOCKER_API_VERSION），"
            "或升级引擎：sudo apt-get install -y docker.io",
            "do not pin the API version (docker.from_env() negotiates it; drop version= or "
            "DOCKER_API_VERSION), or upgrade the engine: sudo apt-get install -y docker.io",
        ),
    )


def _permission(r: _Refusal) -> LabkitError:
    sock = _socket_path() or docker_host()
    group = socket_group() or "docker"
    _, detail = explain_docker_error(r.text)
    return NotSupportedHere(
        tr(
            "{d}：{s} 只允许 root 和 {g} 组的成员访问。注意：{g} 组的成员能以 root 身份运行容器、"
            "挂载整个根目录，等同于 root 权限（课程 2.4.2 也提醒了这一点）",
            "{d}: {s} is open only to root and members of group {g}. Beware: members of {g} can "
            "run containers as root and mount the whole file system, which is root-equivalent "
            "(as course section 2.4.2 warns)",
            d=detail,
            s=sock,
            g=group,
        ),
        tr(
            "sudo usermod -aG {g} $USER，然后注销并重新登录（或 newgrp {g}）；"
            "在共享机器上，宁可用 sudo docker 也别随便加组",
            "sudo usermod -aG {g} $USER, then log out and in again (or newgrp {g}); on a shared "
            "machine prefer sudo docker over adding people to the group",
            g=group,
        ),
    )


def _not_running(r: _Refusal) -> LabkitError:
    sock = _socket_path()
    if sock and not os.path.exists(sock) and not _engine_installed():
        return ToolMissing("docker (dockerd)", "docker.io")
    _, detail = explain_docker_error(r.text)
    where = sock or docker_host()
    return NotSupportedHere(
        tr("{d}（{w} 无法连接）", "{d} (nothing answers at {w})", d=detail, w=where),
        tr("启动它：", "start it: ") + start_command(),
    )


def _port_in_use(r: _Refusal) -> LabkitError:
    which = r.problem.subject or (str(r.port) if r.port is not None else "?")
    return InvalidField(
        "port",
        which,
        tr(
            "端口已被占用（另一个容器或宿主机上的程序正在用它）",
            "is already in use (by another container or a program on the host)",
        ),
        tr(
            "换一个宿主端口（如 -p 8889:8888），或找出占用者：{c}；docker ps 可看到占用它的容器",
            "publish another host port (e.g. -p 8889:8888), or find who holds it: {c}; docker ps "
            "shows a container holding it",
            c=shlex.join(port_owner_command(which)),
        ),
    )


def _name_conflict(r: _Refusal) -> LabkitError:
    name = r.problem.subject
    return InvalidField(
        "name",
        name,
        tr("已被容器 {h} 使用", "is already used by container {h}", h=short_id(r.problem.holder)),
        tr(
            "换个名字，或先删除旧容器：docker rm -f {n}（labkit cleanup 只删 labkit 创建的）",
            "choose another name, or remove the old container first: docker rm -f {n} "
            "(labkit's cleanup removes only what labkit created)",
            n=name,
        ),
    )


def _not_found(r: _Refusal) -> LabkitError:
    low = r.text.lower()
    is_container = (
        type(r.exc).__name__ != "ImageNotFound" and "no such image" not in low and "container" in low
    )
    if is_container:
        fix = tr("docker ps -a 列出容器", "list containers with docker ps -a")
    else:
        fix = tr(
            "docker images 列出镜像；没有仓库可拉取时，"
            "用「本地基础镜像（无需镜像仓库）」在本地构建基础镜像{a}，或 docker load 导入",
            "list images with docker images; with no registry reachable, build a local base "
            "with “Local base image (no registry needed)”{a}, or docker load a saved one",
            a=api_note("BuildLocalBase"),
        )
    return InvalidField(
        "container" if is_container else "image",
        r.problem.subject or r.action,
        tr("在这个 Docker 引擎上不存在", "does not exist on this Docker engine"),
        fix,
    )


def _no_space(r: _Refusal) -> LabkitError:
    return NotSupportedHere(
        tr("磁盘空间不足（{a}）：{t}", "out of disk space ({a}): {t}", a=r.action, t=r.text.strip()[:200]),
        tr(
            "df -h /var/lib/docker 看剩余空间；docker system df 看镜像/容器/缓存占用；"
            "用 labkit 的 CleanupLabkit 或 docker image prune 释放空间",
            "df -h /var/lib/docker shows free space; docker system df shows what images, "
            "containers and build cache use; free some with labkit's CleanupLabkit or docker "
            "image prune",
        ),
    )


def _hint_for(kind: str) -> str:
    """What to do about an engine refusal of ``kind`` that needs no more than a hint."""
    hints = {
        "in-use": tr(
            "还有容器在使用这个镜像：先删除这些容器",
            "containers still use this image: remove them first",
        ),
        "timeout": tr(
            "Docker 引擎没有及时响应：它可能很忙（大镜像）或卡住了；稍后重试或检查 dockerd 日志",
            "the Docker engine did not answer in time: it may be busy (a big image) or stuck; retry "
            "later or read the dockerd log",
        ),
        "bad-archive": tr(
            "文件不是完整的 docker save 归档（被截断或格式不对）：重新保存/复制它并核对 sha256",
            "the file is not a complete docker save archive (truncated or wrong format): save or "
            "copy it again and compare the sha256",
        ),
    }
    return hints.get(kind, "")


def _other(r: _Refusal) -> LabkitError:
    hint = _hint_for(r.problem.kind)
    text = r.text if hint else (r.text.strip() or type(r.exc).__name__)
    return DockerFailed(r.action, text, status=r.status, argv=r.argv, hint=hint)


#: SDK exception types that carry their own output (a build log, a container's stderr).
_BY_TYPE: Mapping[str, Callable[[_Refusal], LabkitError]] = MappingProxyType(
    {"BuildError": _build_failed, "ContainerError": _container_failed}
)
#: One rule per kind of engine message (:func:`classify_engine_error`); anything else: ``_other``.
_BY_KIND: Mapping[str, Callable[[_Refusal], LabkitError]] = MappingProxyType(
    {
        "api-version": _api_version,
        "permission": _permission,
        "not-running": _not_running,
        "port-in-use": _port_in_use,
        "name-conflict": _name_conflict,
        "not-found": _not_found,
        "no-space": _no_space,
    }
)


def translate(
    exc: BaseException,
    action: str,
    *,
    argv: Sequence[str] | None = None,
    port: int | str | None = None,
) -> LabkitError:
    """Map one SDK / requests / OS exception raised while doing ``action`` to a labkit error.

    =================================  ======================================================
    engine not installed               :class:`ToolMissing` (``docker.io``)
    daemon not running                 :class:`NotSupportedHere` + how to start it here
    permission denied on the socket    :class:`NotSupportedHere`: the docker group, that it is
                                       root-equivalent, ``usermod -aG`` and log in again
    API version mismatch               :class:`NotSupportedHere`: do not pin a version
    no such image / container          :class:`InvalidField` naming the object
    container name already in use      :class:`InvalidField`: which container, how to remove it
    port already allocated / in use    :class:`InvalidField` naming the port + ``ss`` command
    no space left on device            :class:`NotSupportedHere`: ``df`` / ``docker system df``
    build error, anything else         :class:`DockerFailed` (a :class:`CommandFailed`)
    =================================  ======================================================
    """
    text, status = _api_details(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text = f"{text} (no space left on device)"
    problem = classify_engine_error(text)
    refusal = _Refusal(exc, action, text, status, argv, port, problem)
    rule = _BY_TYPE.get(type(exc).__name__) or _BY_KIND.get(problem.kind, _other)
    return rule(refusal)


def _sdk_exceptions() -> tuple[type[BaseException], ...]:
    """Exception types that come from the engine connection (never a labkit bug)."""
    kinds: list[type[BaseException]] = []
    try:
        import docker.errors

        kinds.append(docker.errors.DockerException)
    except ImportError:  # pragma: no cover - the SDK is a dependency of the docker steps
        pass
    try:
        import requests

        kinds.append(requests.exceptions.RequestException)
    except ImportError:  # pragma: no cover
        pass
    kinds.append(ConnectionError)
    return tuple(kinds)


@contextlib.contextmanager
def docker_errors(
    action: str, *, argv: Sequence[str] | None = None, port: int | str | None = None
) -> Iterator[None]:
    """Translate SDK errors raised inside the block (see the module table); labkit errors pass.

    ``action`` is the phrase the student sees ("save image x"); ``argv`` the equivalent CLI command
    (shown as the failed command); ``port`` the port being published, used if the engine's message
    does not name it. Running out of local disk (``ENOSPC`` while writing a file) is translated too.
    """
    try:
        yield
    except LabkitError:
        raise
    except OSError as exc:
        if (
            exc.errno == errno.ENOSPC
            or isinstance(exc, ConnectionError)
            or type(exc).__module__ != "builtins"
        ):
            raise translate(exc, action, argv=argv, port=port) from exc
        raise
    except Exception as exc:
        if isinstance(exc, _sdk_exceptions()):
            raise translate(exc, action, argv=argv, port=port) from exc
        raise


def call_errors(call: DockerCall) -> contextlib.AbstractContextManager[None]:
    """:func:`docker_errors` for the SDK calls that make up ``call`` (its action, argv and port)."""
    return docker_errors(call.action, argv=call.cli, port=call.port)


def perform(ctx: RunContext, target: Any, call: DockerCall, **extra: Any) -> Any:
    """Do one engine call built by :mod:`labkit.logic.docker`: record its CLI form, then call the SDK.

    ``target`` is what ``call.method`` is looked up on (the client, a container, an image);
    ``extra`` are SDK arguments only known while running (a file handle, which tag to save).
    The argv is recorded *before* the call, like ``ctx.run`` does, so a refused call shows too.
    """
    ctx.record(call.argv)
    method = target
    for part in call.method.split("."):
        method = getattr(method, part)
    with call_errors(call):
        result = method(*call.args, **{**call.kwargs, **extra})
    if call.labels:  # a container or image labkit creates: write it down (cleanup owns only those)
        from labkit.steps.docker.owned import remember_created

        remember_created(getattr(result, "id", None), call.labels)
    return result


# ----------------------------------------------------------------------------------------------
# Connecting
# ----------------------------------------------------------------------------------------------
class DockerEngine:
    """A connector to one Docker engine: what a step's run context carries as ``ctx.docker``.

    Steps never build SDK clients themselves; they write ``with ctx.engine(action) as client:``
    and the run context asks its connector. Tests pass their own connector to
    ``Step.execute(docker=...)`` exactly as they pass a runner: ``client_factory`` wraps or
    replaces the SDK client (e.g. a recording proxy around the real one).

    The API version is negotiated once per connector (``docker.from_env`` asks the engine; pinning
    ``version="1.45"`` fails on engines older than that) and reused for its later connections:
    negotiating costs dockerd ~20 ms (``GET /version``), a ping ~2 ms.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client_factory: Callable[[Any], Any] | None = None,
    ) -> None:
        self.base_url = base_url
        self.client_factory = client_factory
        self._version: str | None = None

    def connect(self, *, timeout: float = 30) -> docker.DockerClient:
        """A connected, pinged SDK client. The caller closes it.

        Raises the labkit errors of :func:`translate` (engine missing, not running, permission
        denied, ...)."""
        with docker_errors(
            tr("连接 Docker 引擎", "connect to the Docker engine"), argv=["docker", "version"]
        ):
            try:
                import docker
            except ImportError as exc:
                raise InvalidField(
                    "python package",
                    "docker",
                    tr("未安装", "is not installed"),
                    tr("pip install docker（labkit 的依赖）", "pip install docker (a labkit dependency)"),
                ) from exc
            version = self._version or "auto"
            if self.base_url:
                client = docker.DockerClient(base_url=self.base_url, version=version, timeout=int(timeout))
            else:
                client = docker.from_env(version=version, timeout=int(timeout))
            try:
                client.ping()
            except BaseException:
                client.close()
                raise
            self._version = client.api.api_version
        return self.client_factory(client) if self.client_factory is not None else client

    @contextlib.contextmanager
    def session(
        self,
        action: str,
        *,
        timeout: float = 30,
        argv: Sequence[str] | None = None,
        port: int | str | None = None,
    ) -> Iterator[Any]:
        """``with connector.session("save image x") as client:`` – connect, translate, always close."""
        client = self.connect(timeout=timeout)
        try:
            with docker_errors(action, argv=argv, port=port):
                yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def unavailable(self, *, timeout: float = 5) -> str | None:
        """Why the engine cannot be used right now (``None`` when it can); for ``Step.unavailable``."""
        try:
            client = self.connect(timeout=timeout)
        except LabkitError as exc:
            return str(exc)
        with contextlib.suppress(Exception):
            client.close()
        return None
