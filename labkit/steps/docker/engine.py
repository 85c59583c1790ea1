"""The one boundary between labkit and the Docker SDK: connecting and translating its errors.

Every step talks to the engine through the connector its run context carries
(:class:`DockerEngine`, swappable in tests like the runner)::

    with ctx.engine(tr("保存镜像", "save image") + " labkit/x:1") as client:
        image = client.images.get("labkit/x:1")

:meth:`DockerEngine.connect` connects with the API version *negotiated* (``docker.from_env`` asks the engine;
pinning ``version="1.45"`` fails on Debian 12's engine 20.10 with "client version 1.45 is too new"),
and pings, so a dead daemon is reported at connect time rather than in the middle of a step.

:func:`docker_errors` turns SDK / requests / socket exceptions into :mod:`labkit.errors` exactly
once (``raise ... from exc`` keeps the original for debugging). What students meet, and what they
get back:

=====================================  ======================================================
engine not installed                   :class:`ToolMissing` (``docker.io``)
daemon not running                     :class:`NotSupportedHere` + how to start it here
permission denied on the socket        :class:`NotSupportedHere`: the docker group, that it is
                                       root-equivalent, ``usermod -aG`` and log in again
API version mismatch                   :class:`NotSupportedHere`: do not pin a version
no such image / container              :class:`InvalidField` naming the object
container name already in use          :class:`InvalidField`: which container, how to remove it
port already allocated / in use        :class:`InvalidField` naming the port + ``ss`` command
no space left on device                :class:`NotSupportedHere`: ``df`` / ``docker system df``
build error, anything else             :class:`DockerFailed` (a :class:`CommandFailed`)
=====================================  ======================================================

The diagnosis of the socket state reuses :func:`labkit.logic.host.explain_docker_error` (the same
words ``labkit doctor`` prints); the message classification is pure, in
:func:`labkit.logic.docker_names.classify_engine_error`.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import shlex
import shutil
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from labkit.errors import CommandFailed, InvalidField, LabkitError, NotSupportedHere, ToolMissing
from labkit.i18n import tr
from labkit.logic.docker_names import classify_engine_error, port_owner_command, short_id
from labkit.logic.host import explain_docker_error

if TYPE_CHECKING:  # the SDK costs ~0.25 s to import: only inside functions
    import docker

__all__ = [
    "DEFAULT_SOCKET",
    "DockerEngine",
    "DockerFailed",
    "docker_errors",
    "docker_host",
    "engine",
    "engine_unavailable",
    "get_client",
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


def translate(
    exc: BaseException,
    action: str,
    *,
    argv: Sequence[str] | None = None,
    port: int | str | None = None,
) -> LabkitError:
    """Map one SDK / requests / OS exception raised while doing ``action`` to a labkit error."""
    text, status = _api_details(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text = f"{text} (no space left on device)"
    kind_name = type(exc).__name__
    if kind_name == "BuildError":
        log = _build_log_tail(exc)
        msg = str(getattr(exc, "msg", text))
        return DockerFailed(
            action,
            f"{log}\n{msg}" if log and msg not in log else (log or msg),
            argv=argv,
            log=log,
            hint=tr(
                "看上面构建日志的最后几行：通常是某个 RUN 命令失败",
                "read the last lines of the build log above: usually one RUN command failed",
            ),
        )
    if kind_name == "ContainerError":
        stderr = getattr(exc, "stderr", b"") or b""
        if isinstance(stderr, bytes):
            stderr = stderr.decode("utf-8", "replace")
        return DockerFailed(
            action,
            stderr or text,
            status=getattr(exc, "exit_status", None),
            argv=argv,
            hint=tr("容器里的命令以非零状态退出", "the command inside the container exited non-zero"),
        )
    problem = classify_engine_error(text)
    kind = problem.kind
    if kind == "api-version":
        return NotSupportedHere(
            tr(
                "Docker 客户端与引擎的 API 版本不匹配：{t}",
                "Docker client and engine disagree on the API version: {t}",
                t=text.strip().splitlines()[0][:200],
            ),
            tr(
                "不要固定 API 版本（docker.from_env() 会自动协商；去掉 version= 或 DOCKER_API_VERSION），"
                "或升级引擎：sudo apt-get install -y docker.io",
                "do not pin the API version (docker.from_env() negotiates it; drop version= or "
                "DOCKER_API_VERSION), or upgrade the engine: sudo apt-get install -y docker.io",
            ),
        )
    if kind == "permission":
        sock = _socket_path() or docker_host()
        group = socket_group() or "docker"
        _, detail = explain_docker_error(text)
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
    if kind == "not-running":
        sock = _socket_path()
        if sock and not os.path.exists(sock) and not _engine_installed():
            return ToolMissing("docker (dockerd)", "docker.io")
        _, detail = explain_docker_error(text)
        where = sock or docker_host()
        return NotSupportedHere(
            tr("{d}（{w} 无法连接）", "{d} (nothing answers at {w})", d=detail, w=where),
            tr("启动它：", "start it: ") + start_command(),
        )
    if kind == "port-in-use":
        which = problem.subject or (str(port) if port is not None else "?")
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
    if kind == "name-conflict":
        return InvalidField(
            "name",
            problem.subject,
            tr("已被容器 {h} 使用", "is already used by container {h}", h=short_id(problem.holder)),
            tr(
                "换个名字，或先删除旧容器：docker rm -f {n}（labkit cleanup 只删 labkit 创建的）",
                "choose another name, or remove the old container first: docker rm -f {n} "
                "(labkit's cleanup removes only what labkit created)",
                n=problem.subject,
            ),
        )
    if kind == "not-found":
        low = text.lower()
        is_container = kind_name != "ImageNotFound" and "no such image" not in low and "container" in low
        field = "container" if is_container else "image"
        return InvalidField(
            field,
            problem.subject or action,
            tr("在这个 Docker 引擎上不存在", "does not exist on this Docker engine"),
            tr(
                "docker ps -a 列出容器"
                if is_container
                else "docker images 列出镜像；没有仓库可拉取时，"
                "用 labkit 的 BuildLocalBase 在本地构建基础镜像，或 docker load 导入",
                "list containers with docker ps -a"
                if is_container
                else "list images with docker images; with no registry reachable, build a local base "
                "with labkit's BuildLocalBase, or docker load a saved one",
            ),
        )
    if kind == "no-space":
        return NotSupportedHere(
            tr("磁盘空间不足（{a}）：{t}", "out of disk space ({a}): {t}", a=action, t=text.strip()[:200]),
            tr(
                "df -h /var/lib/docker 看剩余空间；docker system df 看镜像/容器/缓存占用；"
                "用 labkit 的 CleanupLabkit 或 docker image prune 释放空间",
                "df -h /var/lib/docker shows free space; docker system df shows what images, "
                "containers and build cache use; free some with labkit's CleanupLabkit or docker "
                "image prune",
            ),
        )
    hint = _hint_for(kind)
    if hint:
        return DockerFailed(action, text, status=status, argv=argv, hint=hint)
    return DockerFailed(action, text.strip() or kind_name, status=status, argv=argv)


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


def get_client(*, timeout: float = 30, base_url: str | None = None) -> docker.DockerClient:
    """A connected client for code outside a step (``labkit doctor``, tests); see :class:`DockerEngine`."""
    return DockerEngine(base_url).connect(timeout=timeout)


def engine(
    action: str,
    *,
    timeout: float = 30,
    argv: Sequence[str] | None = None,
    port: int | str | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """``with engine("save image x") as client:`` outside a step; steps use ``ctx.engine``."""
    return DockerEngine().session(action, timeout=timeout, argv=argv, port=port)


def engine_unavailable(*, timeout: float = 5) -> str | None:
    """Why the default engine cannot be used right now (``None`` when it can)."""
    return DockerEngine().unavailable(timeout=timeout)
