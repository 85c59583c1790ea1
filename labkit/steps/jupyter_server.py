"""Chapter 4.4 (Jupyter as PaaS): a real Jupyter Server, configured, started, logged into, stopped.

Everything lives in one folder (``root``, the work folder's ``jupyter`` in the notebook):
``config/jupyter_server_config.py`` (mode 0600, the argon2 hash, never the password),
``runtime/`` and ``data/`` (the server's own ``JUPYTER_*_DIR``: the student's ``~/.jupyter`` is
never read or written), ``notebooks/`` (its ``root_dir`` by default), ``server.pid`` and
``server.json`` (pid, URL and the config's digest), ``password.txt`` (0600, only when labkit
generated the password) and ``seed-demo/`` (the seed's route, on a copy).

* :class:`WriteServerConfig` (``ch4.jupyter.config``) hashes the password at the step layer
  (``jupyter_server.auth.passwd``, argon2) and writes the config; the same settings and a hash
  that verifies the same password are "already present, verified"; a differing file is replaced
  only with ``overwrite`` (a backup is kept).
* :class:`StartServer` (``ch4.jupyter.start``) starts ``python -m jupyter_server --config=FILE``
  through the runner, so it belongs to the kernel (like the registry of chapter 2b): it runs
  between cells until :class:`StopServer` or the end of the kernel.
* :class:`StopServer` (``ch4.jupyter.stop``) stops *its own* pid (SIGTERM, then SIGKILL), never
  ``ps | grep jupyter | kill -9``.
* In :mod:`labkit.steps.jupyter_checks`: the login (``ch4.jupyter.login``), the seed's route
  (``ch4.jupyter.seed``) and the 4.4.3 kernel check (``ch4.jupyter.kernel``).

The password: ``password`` (a :class:`~labkit.logic.jupyter_server.Password`, from the panel's
masked field), else ``$LABKIT_JUPYTER_PASSWORD``, else ``password.txt`` from an earlier run, else
generated (``secrets.token_urlsafe``) into ``password.txt`` (0600); the result says where, never
what.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandFailed, ConsentRequired, InvalidField, NotSupportedHere
from labkit.files import atomic_target
from labkit.i18n import consent_hint, field_name, tr
from labkit.logic import jupyter_server as lj
from labkit.steps.base import Plan, RunContext, Step, refuse_replacing
from labkit.steps.jupyter_http import Browser, port_accepts
from labkit.steps.pidfile import owned_pid, process_gone, stop_process

__all__ = ["StartServer", "StopServer", "WriteServerConfig", "process_gone", "stop_process"]

PASSWORD_FILE = "password.txt"
PID_NAME = "server.pid"
STATE_NAME = "server.json"
#: Seconds a started server has to answer.
READY_TIMEOUT = 60.0
#: Seconds between SIGTERM and SIGKILL when stopping.
STOP_GRACE = 15.0


def _write_private(path: Path, text: str, *, backup: bool = False) -> None:
    """Write ``text`` atomically with mode 0600 (set on the temporary file before it is renamed)."""
    with atomic_target(path, overwrite=True, backup=backup) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o600)


def _hash(password: lj.Password) -> str:
    from jupyter_server.auth import passwd

    return passwd(password.reveal())


def _verifies(hashed: str, password: lj.Password) -> bool:
    from jupyter_server.auth import passwd_check

    try:
        return bool(passwd_check(hashed, password.reveal()))
    except Exception:  # a malformed hash
        return False


class _JupyterStep(Step):
    """The shared fields: folder, listening address, notebooks folder, root, password, python."""

    timeout = 120.0

    def __init__(
        self,
        root: str | os.PathLike[str] = "jupyter",
        ip: str = "127.0.0.1",
        port: int = lj.DEFAULT_PORT,
        root_dir: str = "",
        open_browser: bool = False,
        allow_root: bool = False,
        password: lj.Password | str | None = None,
        python: str | None = None,
    ) -> None:
        self.root = root
        self.ip = ip
        self.port = port
        self.root_dir = root_dir
        self.open_browser = open_browser
        self.allow_root = allow_root
        self.password = lj.Password(password) if isinstance(password, str) and password else password
        self.python = python or sys.executable

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={os.fspath(self.root)!r}, ip={self.ip!r}, port={self.port!r})"

    # -- places -------------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return Path(os.path.abspath(self.root))

    @property
    def config_dir(self) -> Path:
        return self.folder / "config"

    @property
    def config_path(self) -> Path:
        return self.config_dir / lj.CONFIG_NAME

    @property
    def password_path(self) -> Path:
        return self.folder / PASSWORD_FILE

    @property
    def pid_path(self) -> Path:
        return self.folder / PID_NAME

    @property
    def state_path(self) -> Path:
        return self.folder / STATE_NAME

    @property
    def fields(self) -> lj.ServerFields:
        root_dir = self.root_dir or str(self.folder / "notebooks")
        return lj.server_fields(self.ip, self.port, root_dir, self.open_browser, self.allow_root)

    @property
    def base(self) -> str:
        fields = self.fields  # a bad ip/port is named here, not by urllib's traceback
        return lj.base_url(fields.ip, fields.port)

    def env(self, folder: Path | None = None) -> dict[str, str]:
        f = folder or self.folder
        return lj.server_env(str(f / "config"), str(f / "runtime"), str(f / "data"))

    def argv(self) -> list[str]:
        return lj.server_argv(self.python, str(self.config_path))

    # -- password -----------------------------------------------------------------------------
    def find_password(self) -> tuple[lj.Password | None, str]:
        """The password and where it came from (``field``, ``env``, ``file``), or ``(None, "")``."""
        if isinstance(self.password, lj.Password):
            return self.password, "field"
        if os.environ.get(lj.PASSWORD_ENV):
            return lj.Password(os.environ[lj.PASSWORD_ENV]), "env"
        if self.password_path.is_file():
            return lj.Password(self.password_path.read_text(encoding="utf-8").strip()), "file"
        return None, ""

    def need_password(self) -> lj.Password:
        password, _ = self.find_password()
        if password is None:
            raise InvalidField(
                "password",
                "",  # the field is blank (nothing to hide)
                tr(
                    "是空的，环境变量和 password.txt 里也没有",
                    "is blank, and neither the environment nor password.txt has one",
                ),
                tr(
                    "在密码框中输入，或设置环境变量 {e}，"
                    "或先运行「写入 Jupyter Server 配置」一步（会生成一个）",
                    "type it in the password field, set {e}, or run “Write the Jupyter Server config” first "
                    "(it generates one)",
                    e=lj.PASSWORD_ENV,
                ),
            )
        return password

    # -- the running server -------------------------------------------------------------------
    def owned_pid(self) -> int | None:
        """The pid in ``server.pid`` if that process is ``python -m jupyter_server --config=<ours>``."""
        return owned_pid(self.pid_path, lambda cmdline: list(cmdline[1:]) == self.argv()[1:])

    def config_hash(self) -> str:
        """The ``hashed_password`` in the config file (``""`` without one or without the file)."""
        try:
            text = self.config_path.read_text(encoding="utf-8")
        except OSError:
            return ""
        return str(lj.parse_config_text(text).get("PasswordIdentityProvider.hashed_password") or "")

    def config_digest(self) -> str:
        try:
            return hashlib.sha256(self.config_path.read_bytes()).hexdigest()
        except OSError:
            return ""

    def state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def answers(self) -> int | None:
        """The HTTP status of ``GET /api/status`` without credentials, ``None`` if nothing answers."""
        answer = Browser(self.base, timeout=3).request("api/status")
        return None if answer is None else answer.status

    def require_running(self) -> int:
        pid = self.owned_pid()
        if pid is None:
            raise NotSupportedHere(
                tr(
                    "labkit 没有在 {f} 启动的 Jupyter Server 在运行：先运行「启动 Jupyter Server」一步",
                    "no Jupyter Server started by labkit in {f} is running: run “Start Jupyter Server” first",
                    f=self.folder,
                )
            )
        return pid


# ----------------------------------------------------------------------------------------------
# ch4.jupyter.config
# ----------------------------------------------------------------------------------------------
class WriteServerConfig(_JupyterStep):
    """Write ``config/jupyter_server_config.py`` (0600) with the argon2 hash of the password."""

    check_id = "ch4.jupyter.config"

    def __init__(self, *args: Any, overwrite: bool = False, auth: str = "password", **kw: Any) -> None:
        super().__init__(*args, **kw)
        #: Replace a config file that differs (a backup is kept).
        self.overwrite = overwrite
        #: ``password`` (default) or ``none``: no login at all, refused beyond loopback.
        self.auth = auth

    def _check_fields(self) -> lj.ServerFields:
        if self.auth not in lj.AUTH_CHOICES:
            raise InvalidField(
                "auth",
                self.auth,
                tr("不是登录方式", "is not a login choice"),
                tr("可选：{c}", "use one of {c}", c=", ".join(lj.AUTH_CHOICES)),
            )
        fields = self.fields
        lj.require_root_choice(fields, running_as_root=os.geteuid() == 0)
        lj.require_auth(fields, has_password=self.auth == "password")
        return fields

    def _planned_hash(self) -> str | None:
        return lj.PLANNED_HASH if self.auth == "password" else None

    def plan(self) -> Plan:
        fields = self._check_fields()
        return Plan(
            step=self.check_id,
            reason=tr(
                "为 Jupyter Server 写配置文件：密码只以 argon2 哈希保存，监听 {u}",
                "write the Jupyter Server config: the password kept only as an argon2 hash, listening on {u}",
                u=lj.shown_url(fields),
            ),
            files={str(self.config_path): lj.config_text(fields, self._planned_hash())},
            notes=self._notes(fields),
        )

    def _notes(self, fields: lj.ServerFields) -> list[str]:
        notes = [
            tr(
                "jupyter_server 2 只读取 jupyter_server_config.py/.json；课程里的 jupyter_notebook_config.py "
                "不会被读取，c.ServerApp.password 也已改名为 c.PasswordIdentityProvider.hashed_password",
                "jupyter_server 2 reads jupyter_server_config.py/.json only; the course's "
                "jupyter_notebook_config.py is never read, and c.ServerApp.password is now "
                "c.PasswordIdentityProvider.hashed_password",
            ),
            tr(
                "密码来源：密码框 → 环境变量 {e} → {p}（之前生成的）→ 新生成并写入 {p}（权限 0600）；"
                "密码本身不会出现在输出、日志或笔记本里",
                "the password comes from the password field → {e} → {p} (generated earlier) → a new one "
                "written to {p} (mode 0600); the password itself never appears in an output, a log or "
                "the notebook",
                e=lj.PASSWORD_ENV,
                p=self.password_path,
            ),
            tr(
                "独立的配置目录 {d}（JUPYTER_CONFIG_DIR）：不会读取或改动 ~/.jupyter",
                "its own config dir {d} (JUPYTER_CONFIG_DIR): ~/.jupyter is neither read nor changed",
                d=self.config_dir,
            ),
        ]
        if fields.allow_root:
            notes.append(
                tr(
                    "allow_root（--allow-root）：Jupyter 默认拒绝以 root 运行；打开后，登录的人就能以 root "
                    "身份在这台机器上做任何事",
                    "allow_root (--allow-root): Jupyter refuses to run as root by default; with it, whoever "
                    "logs in can do anything on this machine as root",
                )
            )
        return notes

    def _differences(self, text: str, fields: lj.ServerFields, password: lj.Password | None) -> list[str]:
        have = lj.parse_config_text(text)
        want = lj.parse_config_text(lj.config_text(fields, self._planned_hash()))
        out = [
            tr("{k} 是 {h!r}，应为 {w!r}", "{k} is {h!r}, should be {w!r}", k=k, h=have.get(k), w=v)
            for k, v in want.items()
            if k != "PasswordIdentityProvider.hashed_password" and have.get(k) != v
        ]
        out += [tr("多出 {k}", "extra {k}", k=k) for k in have if k not in want]
        hashed = str(have.get("PasswordIdentityProvider.hashed_password") or "")
        if self.auth == "password" and (password is None or not _verifies(hashed, password)):
            out.append(tr("密码哈希与这个密码不符", "the password hash does not match this password"))
        return out

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if not self.config_path.is_file():
            return None
        password, source = self.find_password()
        fields = self._check_fields()
        source = source if self.auth == "password" else "none"
        if self._differences(self.config_path.read_text(encoding="utf-8"), fields, password):
            return None
        return {
            **self._evidence(fields, source),
            "verified_by": tr(
                "读回 {n}：设置相同，哈希验证了这个密码",
                "read back {n}: same settings, the hash verifies this password",
                n=lj.CONFIG_NAME,
            ),
        }

    def _evidence(self, fields: lj.ServerFields, source: str) -> dict[str, Any]:
        hashed = str(
            lj.parse_config_text(self.config_path.read_text(encoding="utf-8")).get(
                "PasswordIdentityProvider.hashed_password", ""
            )
        )
        return {
            "config": str(self.config_path),
            "mode": oct(self.config_path.stat().st_mode & 0o777),
            "hashed_password": lj.mask_hash(hashed) if hashed else None,
            "password_source": source,
            "password_file": str(self.password_path) if source == "file" else None,
            "ip": fields.ip,
            "port": fields.port,
            "root_dir": fields.root_dir,
            "open_browser": fields.open_browser,
            "allow_root": fields.allow_root,
            "url": lj.shown_url(fields),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fields = self._check_fields()
        password, source = self.find_password()
        backup = False
        if self.config_path.exists():
            differences = self._differences(self.config_path.read_text(encoding="utf-8"), fields, password)
            if differences and not self.overwrite:
                raise refuse_replacing(self.config_path, differences)
            backup = True
        Path(fields.root_dir).mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        if self.auth == "none":
            _write_private(self.config_path, lj.config_text(fields, None), backup=backup)
            return {**self._evidence(fields, "none"), "backup_kept": backup}
        if password is None:
            password, source = lj.Password(secrets.token_urlsafe(12)), "file"
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_private(self.password_path, password.reveal() + "\n")
            ctx.say(
                tr(
                    "已生成密码，保存在 {p}（仅你可读，0600）",
                    "a password was generated and saved in {p} (readable by you only, 0600)",
                    p=self.password_path,
                )
            )
        elif source in ("field", "env") and self.password_path.exists():
            self.password_path.unlink()  # labkit's generated one, no longer the password
        _write_private(self.config_path, lj.config_text(fields, _hash(password)), backup=backup)
        ctx.progress(1.0)
        return {**self._evidence(fields, source), "backup_kept": backup}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        fields = self._check_fields()
        password, _ = self.find_password()
        differences = self._differences(self.config_path.read_text(encoding="utf-8"), fields, password)
        mode = self.config_path.stat().st_mode & 0o777
        if mode & 0o077:
            differences.append(tr("权限是 {m}，应为 0o600", "mode is {m}, should be 0o600", m=oct(mode)))
        if differences:
            return CheckResult.failed(self.check_id, tr("；", "; ").join(differences), **evidence)
        where = {
            "field": tr("密码框", "the password field"),
            "env": lj.PASSWORD_ENV,
            "file": str(self.password_path),
            "none": tr("（无：不需要登录，仅本机）", "(none: no login, this machine only)"),
        }[evidence["password_source"]]
        return CheckResult.passed(
            self.check_id,
            tr(
                "{c} 已写好（0600，哈希 {h}），密码来自 {w}",
                "{c} written (0600, hash {h}); the password comes from {w}",
                c=self.config_path,
                h=evidence["hashed_password"],
                w=where,
            ),
            **evidence,
        )


# ----------------------------------------------------------------------------------------------
# ch4.jupyter.start
# ----------------------------------------------------------------------------------------------
def wait_ready(ctx: RunContext, proc: Any, base: str, runtime: Path, argv: list[str], hint: str) -> dict:
    """Wait until the server answers ``/api/status`` and wrote its runtime file; its info."""
    deadline = time.monotonic() + READY_TIMEOUT
    browser = Browser(base, timeout=2)
    pid = getattr(proc, "pid", None)
    while True:
        ctx.check_cancelled()
        info_file = runtime / f"jpserver-{pid}.json"
        if info_file.is_file() and browser.request("api/status") is not None:
            info = lj.parse_runtime_info(info_file.read_text(encoding="utf-8"))
            if info:
                return info
        if proc.poll() is not None or time.monotonic() > deadline:
            rc = proc.stop(grace=2)
            err = "\n".join(lj.mask_tokens(line) for _, line in proc.lines(timeout=0.5))
            raise CommandFailed(argv, rc, "", err[-3000:], hint=hint)
        time.sleep(0.2)


class StartServer(_JupyterStep):
    """Start ``python -m jupyter_server --config=FILE`` in its own dirs; the kernel owns it."""

    check_id = "ch4.jupyter.start"

    def __init__(self, *args: Any, restart: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        #: Stop a server labkit started with an older config and start it again.
        self.restart = restart

    def plan(self) -> Plan:
        fields = self.fields
        return Plan(
            step=self.check_id,
            reason=tr(
                "在 {u} 启动 Jupyter Server（配置 {c}），在后台运行直到「停止」一步或内核结束",
                "start Jupyter Server on {u} (config {c}); it runs in the background until the stop "
                "step or the end of the kernel",
                u=lj.shown_url(fields),
                c=self.config_path,
            ),
            commands=[self.argv()],
            notes=[
                tr(
                    "环境：{e}",
                    "environment: {e}",
                    e=" ".join(f"{k}={v}" for k, v in self.env().items()),
                ),
                tr(
                    "等待 GET {u}api/status 应答；进程号写入 {p}",
                    "waits for GET {u}api/status to answer; the pid is written to {p}",
                    u=self.base,
                    p=self.pid_path,
                ),
                tr(
                    "显示的地址不带令牌或密码：地址会进浏览器历史、日志和笔记本",
                    "the URL shown carries no token or password: URLs end up in browser history, logs "
                    "and the notebook",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        if not self.config_path.is_file():
            return tr(
                "还没有 {c}：先运行「写入 Jupyter Server 配置」一步",
                "{c} does not exist yet: run “Write the Jupyter Server config” first",
                c=self.config_path,
            )
        return None

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        pid = self.owned_pid()
        state = self.state()
        if pid is None or state.get("pid") != pid or self.answers() is None:
            return None
        if state.get("config_sha256") != self.config_digest():
            return None
        return {
            **state,
            "verified_by": tr(
                "进程 {p} 仍在运行，配置未变，GET /api/status 有应答",
                "process {p} still runs with the same config, GET /api/status answers",
                p=pid,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        lj.require_auth(self.fields, has_password=bool(self._hashed()))  # before anything starts
        self._require_config_matches()
        self._stop_older()
        host = lj.connect_host(self.ip)
        if port_accepts(host, self.port):
            raise InvalidField(
                "port",
                self.port,
                tr("已被别的程序占用", "is already in use by another program"),
                tr(
                    "换一个端口（「写入 Jupyter Server 配置」和这里都要改）",
                    "choose another port (in the config step and here)",
                ),
            )
        runtime = self.folder / "runtime"
        runtime.mkdir(parents=True, exist_ok=True)
        Path(self.fields.root_dir).mkdir(parents=True, exist_ok=True)
        argv = self.argv()
        proc = ctx.start(argv, env=self.env(), cwd=str(self.folder))
        hint = tr(
            "看看上面的输出；端口 {p} 被占用时在「{f}」换一个",
            "see the output above; if port {p} is taken choose another in {f}",
            p=self.port,
            f=field_name("port"),
        )
        try:
            info = wait_ready(ctx, proc, self.base, runtime, argv, hint)
        except BaseException:
            proc.stop(grace=2)
            raise
        state = {
            "pid": proc.pid,
            "url": lj.shown_url(self.fields),
            "ip": self.fields.ip,
            "port": self.fields.port,
            "config": str(self.config_path),
            "config_sha256": self.config_digest(),
            "version": info.get("version"),
            "token_set": info.get("token_set"),
            "password_login": bool(self._hashed()),
        }
        _write_private(self.pid_path, f"{proc.pid}\n")
        _write_private(self.state_path, json.dumps(state, indent=1))
        ctx.progress(1.0)
        return state

    def _require_config_matches(self) -> None:
        """The server listens where its config file says; a start field that differs would leave
        this step waiting at the wrong address while the server runs elsewhere."""
        try:
            written = lj.parse_config_text(self.config_path.read_text(encoding="utf-8"))
        except OSError:
            return
        fields = self.fields
        for name, key, value in (("ip", "ServerApp.ip", fields.ip), ("port", "ServerApp.port", fields.port)):
            there = written.get(key)
            if there is not None and there != value:
                raise InvalidField(
                    name,
                    value,
                    tr(
                        "与配置文件里的 {c} 不同（服务器只按配置文件监听）",
                        "differs from {c} in the config file (the server listens where the config says)",
                        c=there,
                    ),
                    tr(
                        "这里改回 {c}；或者先在「写入 Jupyter Server 配置」里改成 {v}"
                        "并勾选「允许覆盖（保留备份）」",
                        "use {c} here, or first write the config with {v} and tick "
                        "“allow overwriting (keep a backup)”",
                        c=there,
                        v=value,
                    ),
                )

    def _hashed(self) -> str:
        return self.config_hash()

    def _stop_older(self) -> None:
        pid = self.owned_pid()
        if pid is None:
            return
        if not self.restart:
            old = self.state().get("config_sha256") != self.config_digest()
            raise ConsentRequired(
                tr(
                    "停止正在运行的服务器（进程 {p}，{w}）",
                    "stop the running server (pid {p}, {w})",
                    p=pid,
                    w=tr("它用的是旧的配置", "it runs with an older config")
                    if old
                    else tr("它没有应答", "it does not answer"),
                ),
                tr(
                    "要用现在的配置重启它，请{c}，再运行一次",
                    "to restart it with the current config, {c} and run again",
                    c=consent_hint("restart"),
                ),
                keyword="restart",
            )
        stop_process(pid, STOP_GRACE)

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        status = self.answers()
        if status is None:
            return CheckResult.failed(
                self.check_id, tr("{u} 没有应答", "{u} does not answer", u=self.base), **evidence
            )
        wanted = (401, 403) if evidence.get("password_login") else (200,)
        if status not in wanted or evidence.get("token_set"):
            return CheckResult.failed(
                self.check_id,
                tr(
                    "服务器没有按密码保护（无凭据访问 /api/status 得到 {s}）",
                    "the server is not protected by the password (/api/status without credentials: {s})",
                    s=status,
                ),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "Jupyter Server {v} 在 {u} 运行（进程 {p}），{a}",
                "Jupyter Server {v} runs on {u} (pid {p}); {a}",
                v=evidence.get("version"),
                u=evidence.get("url"),
                p=evidence.get("pid"),
                a=tr("需要密码登录", "it asks for the password")
                if evidence.get("password_login")
                else tr("不需要登录（仅本机可达）", "no login (reachable from this machine only)"),
            ),
            **evidence,
            unauthenticated_status=status,
        )


# ----------------------------------------------------------------------------------------------
# ch4.jupyter.stop
# ----------------------------------------------------------------------------------------------
class StopServer(_JupyterStep):
    """Stop the server :class:`StartServer` started in ``root``, by its own pid (and only that one)."""

    check_id = "ch4.jupyter.stop"

    def plan(self) -> Plan:
        self.fields  # noqa: B018  (validates ip and port: the check probes that port)
        return Plan(
            step=self.check_id,
            reason=tr(
                "按进程号停止 labkit 在 {f} 启动的 Jupyter Server",
                "stop the Jupyter Server labkit started in {f}, by its pid",
                f=self.folder,
            ),
            notes=[
                tr(
                    "向 {p} 中的进程发送 SIGTERM（前提是它正是 {a}），服务器会先关闭它的内核；"
                    "{g} 秒后仍未退出才发 SIGKILL",
                    "sends SIGTERM to the process in {p} (only if it is {a}); the server shuts its kernels "
                    "down first; SIGKILL only if it is still there after {g} s",
                    p=self.pid_path,
                    a=" ".join(self.argv()[1:]),
                    g=int(STOP_GRACE),
                ),
                tr(
                    "课程里的 `ps aux | grep jupyter` 加 `kill -9` 按名字找进程：会杀掉别人或别的 Jupyter，"
                    "`kill -9` 不给服务器清理的机会，它启动的内核会成为孤儿进程继续运行",
                    "the course's `ps aux | grep jupyter` with `kill -9` finds processes by name: it can "
                    "kill other users' or other Jupyter servers, `kill -9` gives the server no chance to "
                    "clean up, "
                    "and the kernels it started are left running as orphans",
                ),
            ],
        )

    def satisfied(self, ctx: RunContext) -> dict[str, Any] | None:
        if self.owned_pid() is not None:
            return None
        if port_accepts(lj.connect_host(self.ip), self.port):
            return None
        return {
            "port": self.port,
            "port_free": True,
            "verified_by": tr(
                "没有 labkit 启动的服务器在运行，端口 {p} 空闲",
                "no labkit server runs, port {p} is free",
                p=self.port,
            ),
        }

    def run(self, ctx: RunContext) -> dict[str, Any]:
        pid = self.owned_pid()
        if pid is None:
            raise NotSupportedHere(
                tr(
                    "端口 {p} 上的程序不是 labkit 在 {f} 启动的，labkit 不会停止它",
                    "what listens on port {p} was not started by labkit in {f}; labkit leaves it alone",
                    p=self.port,
                    f=self.folder,
                )
            )
        state = self.state()  # where it really listens: the fields may name another port
        evidence = stop_process(pid, STOP_GRACE)
        for path in (self.pid_path, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return {**evidence, "ip": state.get("ip", self.ip), "port": state.get("port", self.port)}

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        left = [p for p in [evidence.get("pid"), *evidence.get("children", [])] if p and not process_gone(p)]
        port = evidence.get("port", self.port)
        busy = port_accepts(lj.connect_host(evidence.get("ip", self.ip)), port)
        evidence = {**evidence, "processes_left": left, "port_free": not busy}
        if left or busy:
            return CheckResult.failed(
                self.check_id,
                tr(
                    "还有进程 {l}，或端口 {p} 仍被占用",
                    "processes {l} remain, or port {p} is still in use",
                    l=left,
                    p=port,
                ),
                **evidence,
            )
        if not evidence.get("pid"):
            return CheckResult.passed(
                self.check_id,
                tr("没有服务器在运行，端口 {p} 空闲", "no server runs, port {p} is free", p=port),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "Jupyter Server 已停止（进程 {i}，{s}），没有留下进程，端口 {p} 已空闲",
                "Jupyter Server stopped (pid {i}, {s}); no process left, port {p} is free",
                i=evidence.get("pid", "—"),
                s=evidence.get("signal", "—"),
                p=port,
            ),
            **evidence,
        )
