"""Chapter 4.4: logging into the Jupyter Server, the seed's route on a copy, and 4.4.3's kernel.

* :class:`VerifyLogin` (``ch4.jupyter.login``): over real HTTP (:class:`~labkit.steps.jupyter_http.
  Browser`): ``GET /api/status`` without credentials is refused (403), a wrong password is refused
  (401, the login page again), the right one gets ``302`` + the login cookie and then ``200`` from
  ``/api/status``.
* :class:`SeedConfigDemo` (``ch4.jupyter.seed``): in its own folder (``root/seed-demo``, its own
  ``JUPYTER_CONFIG_DIR``), the seed's ``jupyter_notebook_config.py`` with ``c.ServerApp.password``,
  a server started the seed's way (``--ip --port``, no ``--config``), and a login with the right
  password: jupyter_server 2 never reads that file, so it generated a random token (its log prints
  ``?token=…``, kept here masked) and answers the right password with ``401``. Then that server is
  stopped (it belongs to this step only).
* :class:`KernelCheck` (``ch4.jupyter.kernel``): 4.4.3 inside the server: ``POST /api/kernels``
  (cookie + ``X-XSRFToken``), the course's torch lines and chapter 2a's probe over the kernel's
  websocket, ``DELETE /api/kernels/ID``; judged by :func:`labkit.logic.jupyter_server.judge_kernel`.

None of these steps runs a command through the runner except the seed's server; the HTTP calls are
listed in the plans' notes.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.logic import jupyter_server as lj
from labkit.steps.base import Plan, RunContext
from labkit.steps.gpu import PROBE_FILE
from labkit.steps.jupyter_http import Browser, port_accepts, run_in_kernel
from labkit.steps.jupyter_server import _hash, _JupyterStep, _verifies, _write_private, wait_ready

__all__ = ["KernelCheck", "SeedConfigDemo", "VerifyLogin"]

#: The seed demo's server listens here unless ``port`` says otherwise (beside the real one).
SEED_PORT = 8889


def _refused(status: int | None, location: str = "") -> bool:
    """No way in: 401/403, or a redirect to the login page."""
    return status in (401, 403) or (status in (301, 302, 303) and "/login" in location)


def _try_logins(base: str, password: lj.Password) -> dict[str, Any]:
    """The three visits: none, a wrong password, the right one (then ``/api/status``)."""
    anonymous = Browser(base).request("api/status")
    wrong = Browser(base).login(lj.Password(secrets.token_urlsafe(12)))
    visitor = Browser(base)
    right = visitor.login(password)
    status = visitor.request("api/status") if right["outcome"] == "accepted" else None
    right["api_status"] = status.status if status else None
    right["server_status"] = lj.parse_status(status.body) if status else {}
    return {
        "no_credentials": {
            "status": anonymous.status if anonymous else None,
            "location": anonymous.headers.get("location", "") if anonymous else "",
        },
        "wrong_password": wrong,
        "right_password": right,
    }


def _not_answering(step: _JupyterStep) -> str | None:
    if step.answers() is None:
        return tr(
            "{u} 没有应答：先运行「启动 Jupyter Server」一步",
            "{u} does not answer: run “Start Jupyter Server” first",
            u=step.base,
        )
    return None


def _login_notes(base: str) -> list[str]:
    return [
        tr(
            "HTTP（不经代理）：GET {b}api/status（无凭据）；GET {b}login 取 _xsrf cookie；"
            "POST {b}login（_xsrf + 密码）",
            "HTTP (no proxy): GET {b}api/status (no credentials); GET {b}login for the _xsrf cookie; "
            "POST {b}login (_xsrf + password)",
            b=base,
        ),
        tr(
            "密码只出现在 POST 请求体里，不进入输出、日志或笔记本",
            "the password is only in the POST body, never in an output, a log or the notebook",
        ),
    ]


class VerifyLogin(_JupyterStep):
    """Right password in, wrong password and no credentials refused, over real HTTP."""

    check_id = "ch4.jupyter.login"

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "用正确密码、错误密码和不带凭据分别访问 {u}",
                "visit {u} with the right password, a wrong one and no credentials",
                u=lj.shown_url(self.fields),
            ),
            notes=_login_notes(self.base),
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _not_answering(self)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        password = self.need_password()
        evidence = {"url": lj.shown_url(self.fields), **_try_logins(self.base, password)}
        hashed = self.config_hash()
        started = self.state().get("config_sha256")
        evidence["password_matches_config"] = bool(hashed) and _verifies(hashed, password)
        evidence["config_changed_since_start"] = bool(started) and started != self.config_digest()
        return evidence

    def _why_refused(self, evidence: dict[str, Any]) -> str:
        """Why the password in use did not get in, as far as the files tell."""
        if evidence.get("config_changed_since_start"):
            # the start panel's checkbox (labkit.ui.ch4.jupyter_start), not a field of this step
            return tr(
                "配置文件在服务器启动后改过，服务器仍在用旧的密码哈希：在「启动 Jupyter Server」一步勾选"
                "「用新配置重启（停止旧的服务器）」再运行",
                "the config changed after the server started and the server still uses the old hash: "
                "tick “restart with the new config” in the start step and run it",
            )
        if evidence.get("password_matches_config") is False:
            return tr(
                "这个密码与配置文件里的哈希不符：用写配置时的密码（或留空）",
                "this password does not match the hash in the config: use the one the config was "
                "written with (or leave it blank)",
            )
        return ""

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        none, wrong, right = (evidence[k] for k in ("no_credentials", "wrong_password", "right_password"))
        problems = []
        if not _refused(none["status"], none.get("location", "")):
            problems.append(tr("不带凭据也能访问（{s}）", "no credentials got in ({s})", s=none["status"]))
        if wrong["outcome"] != "refused":
            problems.append(tr("错误的密码被接受了", "a wrong password was accepted"))
        if right["outcome"] != "accepted" or right.get("api_status") != 200:
            why = self._why_refused(evidence)
            problems.append(
                tr(
                    "所用的密码没能登录（POST /login → {s}，/api/status → {a}）{w}",
                    "the password in use did not get in (POST /login → {s}, /api/status → {a}){w}",
                    s=right["status"],
                    a=right.get("api_status"),
                    w=tr("：{x}", ": {x}", x=why) if why else "",
                )
            )
        if problems:
            return CheckResult.failed(self.check_id, tr("；", "; ").join(problems), **evidence)
        return CheckResult.passed(
            self.check_id,
            tr(
                "正确密码登录成功（302，/api/status 200）；错误密码 {w}、无凭据 {n} 均被拒绝",
                "the right password logs in (302, /api/status 200); a wrong one ({w}) and none ({n}) "
                "are refused",
                w=wrong["status"],
                n=none["status"],
            ),
            **evidence,
        )


class SeedConfigDemo(_JupyterStep):
    """The seed's 4.4.2 on a copy: ``c.ServerApp.password`` in ``jupyter_notebook_config.py``."""

    check_id = "ch4.jupyter.seed"
    timeout = 120.0

    def __init__(self, *args: Any, port: int = SEED_PORT, **kw: Any) -> None:
        super().__init__(*args, port=port, **kw)
        self._proc: Any = None

    @property
    def demo(self) -> Path:
        return self.folder / "seed-demo"

    @property
    def seed_config(self) -> Path:
        return self.demo / "config" / lj.SEED_CONFIG_NAME

    @property
    def seed_fields(self) -> lj.ServerFields:
        return lj.server_fields(self.ip, self.port, str(self.demo / "notebooks"), False, self.allow_root)

    def seed_argv(self) -> list[str]:
        return lj.seed_argv(self.python, self.seed_fields)

    def plan(self) -> Plan:
        fields = self.seed_fields
        return Plan(
            step=self.check_id,
            reason=tr(
                "在副本 {d} 上按课程 4.4.2 的做法配置并启动服务器，"
                "用正确密码登录，看看会发生什么，然后停止它",
                "on a copy in {d}, configure and start a server the course's 4.4.2 way, log in with the "
                "right password, see what happens, then stop it",
                d=self.demo,
            ),
            commands=[self.seed_argv()],
            files={str(self.seed_config): lj.seed_config_text(lj.PLANNED_HASH)},
            notes=[
                tr(
                    "环境：{e}（独立的配置目录，不碰 ~/.jupyter）",
                    "environment: {e} (its own config dir, ~/.jupyter untouched)",
                    e=" ".join(f"{k}={v}" for k, v in self.env(self.demo).items()),
                ),
                *_login_notes(lj.base_url(fields.ip, fields.port)),
                tr(
                    "jupyter_server 2 只找 jupyter_server_config.*，从不读取 jupyter_notebook_config.py："
                    "密码没有生效，服务器改用随机令牌",
                    "jupyter_server 2 looks for jupyter_server_config.* only and never reads "
                    "jupyter_notebook_config.py: the password does not take effect, the server uses a "
                    "random token instead",
                ),
            ],
        )

    def run(self, ctx: RunContext) -> dict[str, Any]:
        fields = self.seed_fields
        host = lj.connect_host(fields.ip)
        if port_accepts(host, fields.port):
            raise InvalidField(
                "port",
                fields.port,
                tr("已被别的程序占用", "is already in use by another program"),
                tr("为演示换一个端口", "choose another port for the demonstration"),
            )
        password = self.need_password()
        for sub in ("config", "runtime", "data", "notebooks"):
            (self.demo / sub).mkdir(parents=True, exist_ok=True)
        _write_private(self.seed_config, lj.seed_config_text(_hash(password)))
        argv = self.seed_argv()
        base = lj.base_url(fields.ip, fields.port)
        self._proc = proc = ctx.start(argv, env=self.env(self.demo), cwd=str(self.demo))
        info = wait_ready(ctx, proc, base, self.demo / "runtime", argv, "")
        logins = _try_logins(base, password)
        lines = [lj.mask_tokens(line) for _, line in proc.lines(timeout=0.5)]
        rc = proc.stop(grace=10)
        self._proc = None
        return {
            "config": str(self.seed_config),
            "pid": proc.pid,
            "token_set": info.get("token_set"),
            "password_set": info.get("password"),
            "token_in_log": any("token=<hidden>" in line for line in lines),
            "log_tail": lines[-15:],
            "returncode": rc,
            "stopped": True,
            "port_free": not port_accepts(host, fields.port),
            **logins,
        }

    def cleanup(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.stop(grace=5)
            self._proc = None

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        right = evidence["right_password"]
        if right["outcome"] == "accepted":
            return CheckResult.failed(
                self.check_id,
                tr(
                    "这里的 Jupyter Server 读取了 jupyter_notebook_config.py，正确密码登录成功：演示不成立",
                    "this Jupyter Server read jupyter_notebook_config.py and the right password got in: "
                    "the demonstration does not hold here",
                ),
                **evidence,
            )
        return CheckResult.passed(
            self.check_id,
            tr(
                "课程的配置没有生效：正确密码得到 {s}，服务器改用了随机令牌（{t}）；"
                "修正：把哈希写到 jupyter_server_config.py 的 c.PasswordIdentityProvider.hashed_password",
                "the course's config did not take effect: the right password got {s} and the server used a "
                "random token instead ({t}); the fix: the hash in jupyter_server_config.py as "
                "c.PasswordIdentityProvider.hashed_password",
                s=right["status"],
                t=tr("日志里印出了 ?token=…", "its log printed ?token=…")
                if evidence.get("token_in_log")
                else tr("运行信息里有令牌", "its runtime info has a token"),
            ),
            **evidence,
        )


class KernelCheck(_JupyterStep):
    """4.4.3 inside the server: a kernel through the REST API runs the torch/CUDA check."""

    check_id = "ch4.jupyter.kernel"
    timeout = 300.0

    def __init__(self, *args: Any, kernel_name: str = "python3", **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.kernel_name = kernel_name

    def plan(self) -> Plan:
        return Plan(
            step=self.check_id,
            reason=tr(
                "经 REST API 在服务器里启动一个内核（{k}），运行课程 4.4.3 的 PyTorch/CUDA 检查，再删除内核",
                "start a kernel ({k}) in the server through its REST API, run the course's 4.4.3 "
                "PyTorch/CUDA check in it, then delete the kernel",
                k=self.kernel_name,
            ),
            notes=[
                tr(
                    "内核里运行的代码：\n{c}",
                    "the code run in the kernel:\n{c}",
                    c=lj.kernel_code(str(PROBE_FILE)),
                ),
                *_login_notes(self.base),
                tr(
                    "POST {b}api/kernels（cookie + X-XSRFToken）；"
                    "代码经 websocket {b}api/kernels/ID/channels 发送；DELETE {b}api/kernels/ID",
                    "POST {b}api/kernels (cookie + X-XSRFToken); the code goes over the websocket "
                    "{b}api/kernels/ID/channels; DELETE {b}api/kernels/ID",
                    b=self.base,
                ),
                tr(
                    "评分标准：检查确实在服务器的内核里运行并给出结果、内核已删除；"
                    "有没有 GPU 如实报告（gpu）",
                    "graded: the check really ran in a kernel of the server and gave its result, and the "
                    "kernel was deleted; whether there is a GPU is reported as found (gpu)",
                ),
            ],
        )

    def unavailable(self, ctx: RunContext) -> str | None:
        return _not_answering(self)

    def run(self, ctx: RunContext) -> dict[str, Any]:
        visitor = Browser(self.base, timeout=60)
        login = visitor.login(self.need_password())
        if login["outcome"] != "accepted":
            return {"login": login, "problem": tr("登录失败", "login failed"), "kernel_deleted": True}
        made = visitor.api("api/kernels", method="POST", body={"name": self.kernel_name})
        if made is None or made.status != 201:
            return {
                "login": login,
                "create_status": made.status if made else None,
                "problem": (made.body[-500:].decode("utf-8", "replace") if made else "no answer"),
                "kernel_deleted": True,
            }
        kernel = lj.parse_kernel(made.body)
        ev: dict[str, Any] = {
            "kernel_id": kernel.get("id"),
            "kernel_name": kernel.get("name"),
            "create_status": 201,
        }
        try:
            got = run_in_kernel(
                visitor, kernel["id"], lj.kernel_code(str(PROBE_FILE)), timeout=self.timeout - 30
            )
            ev.update(got)
            ev["lines"] = lj.torch_lines(got["stdout"])
        finally:
            gone = visitor.api(f"api/kernels/{kernel['id']}", method="DELETE")
            listed = visitor.api("api/kernels")
            ids = lj.kernel_ids(listed.body) if listed is not None and listed.status == 200 else None
            ev["delete_status"] = gone.status if gone else None
            ev["kernel_deleted"] = (
                gone is not None and gone.status == 204 and ids is not None and kernel["id"] not in ids
            )
        return ev

    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        return lj.judge_kernel(self.check_id, evidence)
