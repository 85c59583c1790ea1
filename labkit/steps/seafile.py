"""Seafile as a SaaS example (course 4.4): write, validate, start, check and stop a compose project.

* ``ch4.seafile.compose`` (:class:`WriteCompose`) writes ``<folder>/seafile/docker-compose.yml``
  and its ``.env`` (mode 0600, the generated passwords; existing ones are kept so a database
  already initialised keeps working). Idempotent; a differing compose file is replaced only with
  ``overwrite=True``, keeping a backup.
* ``ch4.seafile.validate`` (:class:`ValidateCompose`) runs the real compose tool (Debian's
  ``docker-compose`` v1, or ``docker compose`` v2 where only that exists) with ``config -q`` and
  turns its complaint into findings, plus labkit's own checks the tool does not make: published
  ports are port numbers and free on this host (a real bind), bind mounts stay inside the folder.
* ``ch4.seafile.up`` (:class:`ComposeUp`) runs ``up -d`` only where every image is already in the
  local engine; otherwise it is planned with the ``docker pull`` lines (no registry here).
* ``ch4.seafile.health`` (:class:`SeafileHealth`) asks the web port over HTTP when it runs.
* ``ch4.seafile.down`` (:class:`ComposeDown`) runs ``down`` with ``consent=True``; the data folder
  stays.

No password reaches a plan, a message, the evidence or a log: the compose text has ``${VAR}``,
``config`` runs with ``-q``, and the tool's output is masked with the ``.env`` values before it
is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import ConsentRequired, InvalidField
from labkit.files import TMP_MARK, backup_file, replace_text, write_atomic
from labkit.findings import Finding, errors
from labkit.i18n import field_name, tr
from labkit.logic import registry as rg
from labkit.logic import seafile as sf
from labkit.steps.base import Plan, RunContext, Step, refuse_replacing

__all__ = [
    "ComposeDown",
    "ComposeUp",
    "SeafileHealth",
    "ValidateCompose",
    "WriteCompose",
    "compose_v2",
    "port_free",
    "project_containers",
]

_PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def compose_v2() -> bool | None:
    """``False``: ``docker-compose`` (v1) is on PATH; ``True``: only the v2 plugin; ``None``: neither."""
    if shutil.which("docker-compose"):
        return False
    if shutil.which("docker") and any(
        os.path.isfile(os.path.join(os.path.expanduser(d), "docker-compose")) for d in _PLUGIN_DIRS
    ):
        return True
    return None


def _no_tool() -> str:
    return tr(
        "没有 compose 工具（docker-compose 或 docker compose）；"
        "Debian/Ubuntu：apt-get install docker-compose",
        "no compose tool (docker-compose or docker compose); "
        "on Debian/Ubuntu: apt-get install docker-compose",
    )


def port_free(port: int) -> bool:
    """A real test: can this host bind ``0.0.0.0:port`` (what Docker's port mapping needs)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _ps_argv() -> list[str]:
    return ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={sf.PROJECT}"]


def project_containers(ctx: RunContext) -> dict[str, str]:
    """``{service: status}`` of this project's containers on the engine (a read)."""
    label = f"com.docker.compose.project={sf.PROJECT}"
    with ctx.engine(tr("列出 Seafile 的容器", "list Seafile's containers"), argv=_ps_argv()) as client:
        found = client.containers.list(all=True, filters={"label": label})
        return {c.labels.get("com.docker.compose.service", c.name): c.status for c in found}


def _running(containers: dict[str, str]) -> bool:
    return all(containers.get(s) == "running" for s in sf.SERVICES)


def _mode(path: Path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):04o}"


def _read_env(path: Path) -> dict[str, str]:
    return sf.parse_env(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to a file only its owner can read (mode 0600 from the start)."""
    tmp = path.with_name(f".{path.name}{TMP_MARK}-{os.getpid()}-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class _SeafileStep(Step):
    """The form's fields, shared by every Seafile step (keywords with defaults, for the panels)."""

    timeout = 600.0

    def __init__(
        self,
        folder: str | os.PathLike[str] = ".",
        *,
        hostname: str = "seafile.local",
        http_port: int = 8000,
        admin_email: str = "admin@example.com",
        data_dir: str = "seafile-data",
        seafile_image: str = sf.DEFAULT_IMAGES["seafile_image"],
        db_image: str = sf.DEFAULT_IMAGES["db_image"],
        memcached_image: str = sf.DEFAULT_IMAGES["memcached_image"],
        time_zone: str = "Asia/Shanghai",
    ) -> None:
        self.folder = folder
        self.fields: dict[str, Any] = dict(
            hostname=hostname,
            http_port=http_port,
            admin_email=admin_email,
            data_dir=data_dir,
            seafile_image=seafile_image,
            db_image=db_image,
            memcached_image=memcached_image,
            time_zone=time_zone,
        )

    def spec(self) -> sf.SeafileSpec:
        return sf.build_spec(os.path.abspath(os.fspath(self.folder)), **self.fields)

    def _secret_values(self, spec: sf.SeafileSpec) -> list[str]:
        return list(_read_env(Path(spec.env_path)).values())

    def _need_compose_file(self, spec: sf.SeafileSpec) -> str | None:
        if not Path(spec.compose_path).is_file():
            return tr(
                "还没有 {p}：先运行“生成 compose 文件”（ch4.seafile.compose）",
                "{p} does not exist yet: write it first (ch4.seafile.compose)",
                p=spec.compose_path,
            )
        return None


class WriteCompose(_SeafileStep):
    """Write the compose file and its 0600 ``.env`` (passwords generated, existing ones kept)."""

    check_id = "ch4.seafile.compose"

    def __init__(
        self, folder: str | os.PathLike[str] = ".", *, overwrite: bool = False, **fields: Any
    ) -> None:
        super().__init__(folder, **fields)
        self.overwrite = overwrite

    def plan(self) -> Plan:
        spec = self.spec()
        hidden = "".join(f"{k}=<{tr('随机生成的密码', 'a generated password')}>\n" for k in sf.SECRET_VARS)
        return Plan(
            step=self.check_id,
            reason=tr(
                "生成 Seafile 的 compose 项目（db、memcached、seafile），网页端口 {p}，数据放在 {d}",
                "write Seafile's compose project (db, memcached, seafile), web port {p}, data in {d}",
                p=spec.http_port,
                d=spec.data_path,
            ),
            files={spec.compose_path: sf.compose_text(spec), spec.env_path: hidden},
            notes=[
                tr(
                    "密码用 secrets 随机生成，只写在 .env（权限 0600）里；"
                    "compose 文件里是 ${变量}，可以放心展示",
                    "passwords are generated with secrets and written only to .env (mode 0600); the "
                    "compose file says ${VAR}, so it is safe to show",
                ),
                tr(
                    ".env 里已有的密码会保留（数据库初始化后改密码会导致 Seafile 连不上数据库）",
                    "passwords already in .env are kept (changing them after the database was "
                    "initialised would lock Seafile out of it)",
                ),
            ],
        )

    def _env_state(self, spec: sf.SeafileSpec) -> tuple[dict[str, str], list[str]]:
        values = _read_env(Path(spec.env_path))
        return values, sf.missing_secrets(values)

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        spec = self.spec()
        compose, env = Path(spec.compose_path), Path(spec.env_path)
        if not compose.is_file() or compose.read_text(encoding="utf-8") != sf.compose_text(spec):
            return None
        _, missing = self._env_state(spec)
        if missing or _mode(env) != "0600":
            return None
        return {
            **self._evidence(spec),
            "secrets_generated": [],
            "secrets_kept": list(sf.SECRET_VARS),
            "backup": None,
            "verified_by": tr(
                "读回 {c}：与字段生成的一致；.env 权限 0600，含 {n} 个密码",
                "read back {c}: identical to what the fields make; .env is 0600 with {n} passwords",
                c=sf.COMPOSE_NAME,
                n=len(sf.SECRET_VARS),
            ),
        }

    def _evidence(self, spec: sf.SeafileSpec) -> dict[str, Any]:
        text = sf.compose_text(spec)
        return {
            "compose_path": spec.compose_path,
            "env_path": spec.env_path,
            "compose_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "images": list(spec.images),
            "http_port": spec.http_port,
            "url": spec.url,
            "data_path": spec.data_path,
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.spec()
        text = sf.compose_text(spec)
        compose, env = Path(spec.compose_path), Path(spec.env_path)
        backup = None
        if compose.is_file() and compose.read_text(encoding="utf-8") != text:
            if not self.overwrite:
                raise refuse_replacing(
                    compose, [tr("内容与这些字段生成的不同", "its text differs from what these fields make")]
                )
            backup = replace_text(compose, text)
        elif not compose.is_file():
            write_atomic(compose, text)
        values, missing = self._env_state(spec)
        fresh = sf.new_secrets()
        values = {**values, **{k: fresh[k] for k in missing}}
        if missing:
            if env.exists():
                backup_file(env)  # copystat: the backup keeps the old file's mode
            _write_private(env, sf.env_text(values))
        elif _mode(env) != "0600":
            env.chmod(0o600)
        for sub in ("db", "shared"):
            Path(spec.data_path, sub).mkdir(parents=True, exist_ok=True)
        ctx.progress(1.0)
        kept = [k for k in sf.SECRET_VARS if k not in missing]
        return {
            **self._evidence(spec),
            "secrets_generated": missing,
            "secrets_kept": kept,
            "backup": str(backup) if backup else None,
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        spec = self.spec()
        compose, env = Path(spec.compose_path), Path(spec.env_path)
        text = compose.read_text(encoding="utf-8")
        values = _read_env(env)
        mode = _mode(env)
        ev = {**evidence, "env_mode": mode}
        problems = []
        if text != sf.compose_text(spec):
            problems.append(tr("compose 文件与字段生成的不同", "the compose file differs from the fields"))
        if mode != "0600":
            problems.append(tr(".env 权限是 {m}，应为 0600", ".env has mode {m}, not 0600", m=mode))
        if sf.missing_secrets(values):
            problems.append(tr(".env 缺少密码", ".env lacks a password"))
        if any(v and v in text for v in values.values()):
            problems.append(tr("compose 文件里出现了密码", "a password appears in the compose file"))
        if problems:
            return CheckResult.failed(self.check_id, tr("；", "; ").join(problems), **ev)
        return CheckResult.passed(
            self.check_id,
            tr(
                "{c} 已写好（密码以 ${{变量}} 引用），.env 权限 0600",
                "{c} is written (passwords referenced as ${{VAR}}), .env has mode 0600",
                c=spec.compose_path,
            ),
            **ev,
        )


class ValidateCompose(_SeafileStep):
    """The compose tool's ``config -q`` on the written file, plus labkit's own checks."""

    check_id = "ch4.seafile.validate"
    timeout = 60.0

    def plan(self) -> Plan:
        spec = self.spec()
        return Plan(
            step=self.check_id,
            reason=tr(
                "用 compose 工具检查 {p}（解析、变量替换、格式校验），再检查端口和挂载目录",
                "check {p} with the compose tool (parse, interpolate, validate), then ports and mounts",
                p=spec.compose_path,
            ),
            commands=[sf.config_argv(spec)],
            alternatives=[sf.config_argv(spec, v2=True)],
            probes=[_ps_argv()],
            notes=[
                tr(
                    "config -q 只报告错误、不打印展开后的文件（展开后会含有密码）",
                    "config -q reports errors only and does not print the interpolated file (which "
                    "would contain the passwords)",
                ),
                tr(
                    "没有 docker-compose（v1）时改用 docker compose（v2）",
                    "where docker-compose (v1) is missing, docker compose (v2) is used instead",
                ),
                tr(
                    "labkit 另外检查：端口是 1–65535 且本机空闲（真实 bind 测试）、挂载目录都在工作文件夹里",
                    "labkit also checks: published ports are 1–65535 and free here (a real bind test), "
                    "bind mounts stay inside the work folder",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        spec = self.spec()
        if compose_v2() is None:
            return _no_tool()
        return self._need_compose_file(spec)

    def _own_findings(self, ctx: RunContext, spec: sf.SeafileSpec, text: str) -> list[Finding]:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return []  # the compose tool reports YAML errors itself, with the line
        if not isinstance(data, dict):
            return []
        folder = os.path.abspath(os.fspath(self.folder))
        out = sf.port_findings(data) + sf.volume_findings(data, folder, spec.project_dir)
        if not errors(out) and not port_free(spec.http_port) and not self._ours_running(ctx):
            out.append(
                Finding(
                    "http_port",
                    "error",
                    tr(
                        "端口 {p} 已被本机其他程序占用",
                        "port {p} is already in use on this host",
                        p=spec.http_port,
                    ),
                    tr("换一个端口，例如 8001", "choose another port, e.g. 8001"),
                    code="port.in_use",
                )
            )
        return out

    def _ours_running(self, ctx: RunContext) -> bool:
        """Seafile itself may hold the port (re-running the notebook while it runs)."""
        if ctx.docker_unavailable():
            return False
        return bool(project_containers(ctx))

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.spec()
        text = Path(spec.compose_path).read_text(encoding="utf-8")
        v2 = bool(compose_v2())
        argv = sf.config_argv(spec, v2=v2)
        # not streamed: the output is masked with the .env values before anyone sees it
        done = ctx.run(argv, timeout=self.timeout, check=False, on_line=None)
        said = sf.mask((done.stderr + done.stdout).strip(), self._secret_values(spec))
        tool_findings = sf.parse_config_errors(said) if done.returncode != 0 else []
        own = self._own_findings(ctx, spec, text)
        return {
            "compose_path": spec.compose_path,
            "tool": "docker compose" if v2 else "docker-compose",
            "returncode": done.returncode,
            "tool_output": said[-2000:],
            "tool_findings": [f.to_dict() for f in tool_findings],
            "labkit_findings": [f.to_dict() for f in own],
            "matches_fields": text == sf.compose_text(spec),
        }

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        bad = [
            f for f in (*evidence["tool_findings"], *evidence["labkit_findings"]) if f["severity"] == "error"
        ]
        if bad:
            first = bad[0]
            return CheckResult.failed(
                self.check_id,
                tr(
                    "{n} 个问题，第一个在 {f}：{m}",
                    "{n} problem(s), the first in {f}: {m}",
                    n=len(bad),
                    f=_where(first["field"]),
                    m=first["message"],
                ),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "{t} config 通过；端口 {p} 空闲或已由 Seafile 使用；挂载都在工作文件夹里",
                "{t} config passed; port {p} is free or Seafile's own; every mount is inside the work folder",
                t=evidence["tool"],
                p=self.spec().http_port,
            ),
            **evidence,
        )


def _where(field: str) -> str:
    """A finding's place as the student sees it: the panel's label, or the compose file itself."""
    if field == "compose":
        return tr("compose 文件", "the compose file")
    if field.startswith("services."):
        return tr("compose 文件的 {f}", "the compose file's {f}", f=field)
    return field_name(field)


class ComposeUp(_SeafileStep):
    """``up -d`` where all three images are in the local engine (planned otherwise)."""

    check_id = "ch4.seafile.up"

    def plan(self) -> Plan:
        spec = self.spec()
        return Plan(
            step=self.check_id,
            reason=tr(
                "启动 Seafile（{n} 个容器），网页在 {u}",
                "start Seafile ({n} containers), web at {u}",
                n=len(sf.SERVICES),
                u=spec.url,
            ),
            commands=[sf.up_argv(spec)],
            alternatives=[sf.up_argv(spec, v2=True)],
            probes=[*(["docker", "image", "inspect", i] for i in spec.images), _ps_argv()],
            notes=[
                tr(
                    "只在三个镜像都已在本机引擎里时运行；否则先在能访问镜像仓库的机器上运行 {c}",
                    "runs only when all three images are in the local engine; otherwise first run {c} "
                    "where a registry is reachable",
                    c="; ".join(" ".join(sf.pull_argv(i)) for i in spec.images),
                ),
                tr(
                    "首次启动时 Seafile 初始化数据库和管理员账号，需要一两分钟",
                    "on the first start Seafile initialises its database and admin account: a minute or two",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        spec = self.spec()
        if compose_v2() is None:
            return _no_tool()
        reason = ctx.docker_unavailable() or self._need_compose_file(spec)
        if reason:
            return reason
        missing = self._missing_images(ctx, spec)
        if missing:
            return tr(
                "本机引擎里没有这些镜像，labkit 不会替你拉取；能访问镜像仓库时先运行：{c}",
                "images not present in the local engine, and labkit does not pull them; where a "
                "registry is reachable run first: {c}",
                c="; ".join(" ".join(sf.pull_argv(i)) for i in missing),
            )
        return None

    def _missing_images(self, ctx: RunContext, spec: sf.SeafileSpec) -> list[str]:
        from labkit.steps.docker.common import find_image

        with ctx.engine(tr("检查镜像", "inspect the images")) as client:
            return [ref for ref in spec.images if find_image(client, ref) is None]

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        containers = project_containers(ctx)
        if not containers or not _running(containers):
            return None
        return {
            "containers": containers,
            "url": self.spec().url,
            "verified_by": tr("docker ps：三个容器都在运行", "docker ps: all three containers are running"),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        spec = self.spec()
        if not port_free(spec.http_port):
            raise InvalidField(
                "http_port",
                spec.http_port,
                tr("已被本机其他程序占用", "is already in use on this host"),
                tr("换一个端口，例如 8001", "choose another port, e.g. 8001"),
            )
        ctx.run(sf.up_argv(spec, v2=bool(compose_v2())), timeout=self.timeout)
        ctx.progress(1.0)
        return {"url": spec.url}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        containers = project_containers(ctx)
        ev = {**evidence, "containers": containers}
        if not _running(containers):
            return CheckResult.failed(
                self.check_id,
                tr("不是所有容器都在运行：{c}", "not every container is running: {c}", c=containers),
                **ev,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "Seafile 的三个容器都在运行，网页在 {u}",
                "Seafile's three containers run; web at {u}",
                u=ev["url"],
            ),
            **ev,
        )


def _get(url: str, timeout: float = 5) -> tuple[int, str] | None:
    """``GET url`` without following redirects or proxies: ``(status, Location)``; ``None`` if
    nothing answers."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")
    except (urllib.error.URLError, OSError, ValueError):
        return None


class SeafileHealth(_SeafileStep):
    """HTTP check of Seafile's web port (200, or a redirect to its login page)."""

    check_id = "ch4.seafile.health"
    #: Seconds to wait for the first answer (Seafile initialises on its first start).
    wait = 180.0

    def plan(self) -> Plan:
        spec = self.spec()
        return Plan(
            step=self.check_id,
            reason=tr("通过 HTTP 访问 {u}", "ask {u} over HTTP", u=spec.url),
            probes=[rg.curl_argv(spec.url, head=True), _ps_argv()],
            notes=[
                tr(
                    "200 或跳转到登录页即为正常；最多等 {s} 秒（首次启动要初始化）",
                    "200 or a redirect to the login page means healthy; waits up to {s} s (the first "
                    "start initialises)",
                    s=int(self.wait),
                )
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        reason = ctx.docker_unavailable()
        if reason:
            return reason
        if not _running(project_containers(ctx)):
            return tr(
                "Seafile 没有在运行（见 ch4.seafile.up），不做 HTTP 检查",
                "Seafile is not running (see ch4.seafile.up); no HTTP check",
            )
        return None

    def run(self, ctx: RunContext) -> dict[str, Any]:
        url = self.spec().url
        deadline = time.monotonic() + self.wait
        answer = _get(url)
        while (answer is None or answer[0] >= 500) and time.monotonic() < deadline:
            ctx.check_cancelled()
            ctx.cancel.wait(3)
            answer = _get(url)
        return {"url": url, "status": answer[0] if answer else None, "location": answer[1] if answer else ""}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        status, location = evidence["status"], evidence["location"]
        if status is not None and sf.health_ok(status, location):
            return CheckResult.passed(
                self.check_id,
                tr("{u} 回答 {s}", "{u} answered {s}", u=evidence["url"], s=status),
                **evidence,
            )
        return CheckResult.failed(
            self.check_id,
            tr(
                "{u} 没有正常回答（{s}）",
                "{u} did not answer as Seafile does ({s})",
                u=evidence["url"],
                s=status if status is not None else tr("无应答", "no answer"),
            ),
            **evidence,
        )


class ComposeDown(_SeafileStep):
    """``down`` (containers and network removed; the data folder stays), with ``consent=True``."""

    check_id = "ch4.seafile.down"

    def __init__(self, folder: str | os.PathLike[str] = ".", *, consent: bool = False, **fields: Any) -> None:
        super().__init__(folder, **fields)
        self.consent = consent

    def plan(self) -> Plan:
        spec = self.spec()
        return Plan(
            step=self.check_id,
            reason=tr("停止并删除 Seafile 的容器和网络", "stop and remove Seafile's containers and network"),
            commands=[sf.down_argv(spec)],
            alternatives=[sf.down_argv(spec, v2=True)],
            probes=[_ps_argv()],
            notes=[
                tr(
                    "数据（数据库和文件）在 {d}，不会删除；再次 up 即可恢复",
                    "the data (database and files) in {d} stays; up brings it back",
                    d=spec.data_path,
                )
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if compose_v2() is None:
            return _no_tool()
        return ctx.docker_unavailable() or self._need_compose_file(self.spec())

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if project_containers(ctx):
            return None
        return {
            "containers": {},
            "verified_by": tr("docker ps：没有 Seafile 容器", "docker ps: no Seafile container"),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        if not self.consent:
            raise ConsentRequired(
                tr("停止并删除 Seafile 的容器", "stop and remove Seafile's containers"), keyword="consent"
            )
        before = project_containers(ctx)
        ctx.run(sf.down_argv(self.spec(), v2=bool(compose_v2())), timeout=self.timeout)
        return {"containers_before": before}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        left = project_containers(ctx)
        data = self.spec().data_path
        ev = {**evidence, "containers": left, "data_kept": os.path.isdir(data)}
        if left:
            return CheckResult.failed(
                self.check_id, tr("仍有容器：{c}", "containers left: {c}", c=left), **ev
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "Seafile 的容器已删除，数据仍在 {d}",
                "Seafile's containers are gone; the data stays in {d}",
                d=data,
            ),
            **ev,
        )
