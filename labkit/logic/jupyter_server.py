"""Chapter 4.4 (Jupyter as PaaS): a real Jupyter Server's config, command line and login, pure.

The seed's route (4.4.2) is ``jupyter notebook --generate-config``, a hashed password from
``jupyter notebook password`` and ``c.ServerApp.password = "argon2:..."`` in
``~/.jupyter/jupyter_notebook_config.py``. With jupyter_server 2 (what ``jupyter server``,
JupyterLab 4 and Notebook 7 run on) that file is **never read**: ``ServerApp`` loads
``jupyter_server_config.py`` / ``.json`` (plus the ``jupyter_server_config.d`` folders) from the
config path, nothing named ``jupyter_notebook_config``. So the password is silently absent, the
server generates a random token (printed in its log as ``?token=...``) and a login with the right
password is answered ``401``. ``ServerApp.password`` itself is only *deprecated* (moved to
``PasswordIdentityProvider.hashed_password``; a file that *is* read still works, with a warning);
labkit writes the current name (:func:`config_text`) into ``jupyter_server_config.py`` and also
keeps the seed's file as a value (:func:`seed_config_text`) for the demonstration.

Everything here is pure: the fields (:func:`server_fields`, naming the field on bad input), the
exposure rule (:func:`exposure_findings`: no listening beyond loopback without a password or
token), the config texts and their parser (:func:`parse_config_text`), the argv and environment
(:func:`server_argv`, :func:`server_env`: its own ``JUPYTER_CONFIG_DIR``/runtime/data dirs inside
the work folder, so the student's ``~/.jupyter`` is never read or touched), the URL shown (never
with a token or password in it), the login answers (:func:`login_outcome`), ``/api/status``,
the runtime file the server writes, and the kernel messages of the 4.4.3 check.
"""

from __future__ import annotations

import ast
import ipaddress
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import InvalidField
from labkit.findings import Finding
from labkit.hidden import Hidden
from labkit.i18n import tr
from labkit.logic.gpu import parse_probe_output

__all__ = [
    "AUTH_CHOICES",
    "CONFIG_NAME",
    "DEFAULT_PORT",
    "PASSWORD_ENV",
    "PLANNED_HASH",
    "SEED_CONFIG_NAME",
    "Password",
    "ServerFields",
    "base_url",
    "config_text",
    "connect_host",
    "execute_request",
    "exposure_findings",
    "is_loopback",
    "judge_kernel",
    "kernel_code",
    "kernel_ids",
    "kernel_output",
    "login_outcome",
    "mask_hash",
    "mask_tokens",
    "parse_config_text",
    "parse_kernel",
    "parse_runtime_info",
    "parse_status",
    "require_auth",
    "require_root_choice",
    "seed_argv",
    "seed_config_text",
    "server_argv",
    "server_env",
    "server_fields",
    "shown_url",
    "torch_lines",
    "validate_hash",
]

CONFIG_NAME = "jupyter_server_config.py"
SEED_CONFIG_NAME = "jupyter_notebook_config.py"
DEFAULT_PORT = 8888
#: ``password``: the argon2 hash in the config; ``none``: no login at all (loopback only).
AUTH_CHOICES = ("password", "none")
#: A password for headless runs (CI, ``labkit validate``) instead of the panel's masked field.
PASSWORD_ENV = "LABKIT_JUPYTER_PASSWORD"
_HASH = re.compile(r"^(argon2:\$argon2id?\$v=\d+\$[^\s'\"\\]+|sha1:[0-9a-f]+:[0-9a-f]{40})$")


class Password(Hidden):
    """The Jupyter server's password (:class:`~labkit.hidden.Hidden`: never shown); a bad one is
    an error on the ``password`` field."""

    __slots__ = ()

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value or len(value) > 1024 or not value.isprintable():
            raise InvalidField(
                "password",
                "<hidden>",
                tr(
                    "不是可用的密码（空的或含有控制字符）",
                    "is not a usable password (empty, or control characters)",
                ),
                tr(
                    "换一个密码，或清空让 labkit 生成",
                    "choose another, or leave it empty for labkit to generate one",
                ),
            )
        super().__init__(value)


@dataclass(frozen=True)
class ServerFields:
    """The server's settings: where it listens, where notebooks live, browser, root."""

    ip: str
    port: int
    root_dir: str
    open_browser: bool = False
    allow_root: bool = False


def is_loopback(ip: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost`` are loopback; ``0.0.0.0``/``::`` (all) are not."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def server_fields(
    ip: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    root_dir: str = "",
    open_browser: bool = False,
    allow_root: bool = False,
) -> ServerFields:
    """Validate the fields (an :class:`InvalidField` names the bad one)."""
    ip = ip.strip() if isinstance(ip, str) else ip
    if not isinstance(ip, str) or not ip:
        raise InvalidField(
            "ip", ip, tr("不是地址", "is not an address"), tr("例如 127.0.0.1", "e.g. 127.0.0.1")
        )
    if ip != "localhost":
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise InvalidField(
                "ip",
                ip,
                tr("不是 IP 地址", "is not an IP address"),
                tr(
                    "例如 127.0.0.1（仅本机）或 0.0.0.0（所有网卡）",
                    "e.g. 127.0.0.1 (this machine) or 0.0.0.0 (all)",
                ),
            ) from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535:
        raise InvalidField(
            "port",
            port,
            tr("不是 1024 到 65535 之间的端口号", "is not a port number from 1024 to 65535"),
            tr("例如 8888", "e.g. 8888"),
        )
    if not isinstance(root_dir, str) or not root_dir.startswith("/") or "\n" in root_dir:
        raise InvalidField(
            "root_dir",
            root_dir,
            tr("不是绝对路径", "is not an absolute path"),
            tr("例如工作文件夹里的 notebooks", "e.g. notebooks in the work folder"),
        )
    for name, value in (("open_browser", open_browser), ("allow_root", allow_root)):
        if not isinstance(value, bool):
            raise InvalidField(
                name, value, tr("不是是/否", "is not yes/no"), tr("用 True 或 False", "use True or False")
            )
    return ServerFields(ip, port, root_dir, open_browser, allow_root)


def exposure_findings(fields: ServerFields, *, has_password: bool, has_token: bool = False) -> list[Finding]:
    """The rule: a server reachable beyond this machine must ask for a password or a token."""
    if is_loopback(fields.ip) or has_password or has_token:
        return []
    everywhere = fields.ip in ("0.0.0.0", "::")
    return [
        Finding(
            "ip",
            "error",
            tr(
                "在 {ip} 上监听{w}却没有密码或令牌：谁能连到端口 {p}，谁就能在这台机器上执行任意代码",
                "listening on {ip}{w} without a password or token: anyone who reaches port {p} can run "
                "any code on this machine",
                ip=fields.ip,
                w=tr("（所有网卡）", " (every interface)") if everywhere else "",
                p=fields.port,
            ),
            tr("设置密码，或改用 127.0.0.1", "set a password, or listen on 127.0.0.1"),
            code="jupyter-open",
        )
    ]


def require_root_choice(fields: ServerFields, *, running_as_root: bool) -> None:
    """jupyter_server refuses to start as root unless ``allow_root``: say so before it starts."""
    if running_as_root and not fields.allow_root:
        raise InvalidField(
            "allow_root",
            False,
            tr(
                "不行：内核以 root 运行，Jupyter Server 不加 --allow-root 会拒绝启动",
                "will not do: the kernel runs as root; Jupyter Server refuses to start as root "
                "without --allow-root",
            ),
            tr(
                "以普通用户运行更安全；若确实要以 root 运行，打开 allow_root"
                "（登录的人就能以 root 身份在这台机器上做任何事）",
                "running as a normal user is safer; if it has to be root, set allow_root "
                "(whoever logs in can then do anything on this machine as root)",
            ),
        )


def require_auth(fields: ServerFields, *, has_password: bool, has_token: bool = False) -> None:
    """Raise :class:`InvalidField` (``ip``) when :func:`exposure_findings` finds an error."""
    for finding in exposure_findings(fields, has_password=has_password, has_token=has_token):
        raise InvalidField("ip", fields.ip, finding.message, finding.fix)


def validate_hash(hashed: str) -> str:
    """An ``argon2:...`` (or legacy ``sha1:salt:hex``) hash from ``jupyter_server.auth.passwd``."""
    if not isinstance(hashed, str) or not _HASH.match(hashed):
        raise InvalidField(
            "hashed_password",
            "<hidden>",  # it may be a password typed in the wrong place
            tr("不是 jupyter_server.auth.passwd 生成的哈希", "is not a hash from jupyter_server.auth.passwd"),
            tr("让 labkit 根据密码生成", "let labkit make it from the password"),
        )
    return hashed


def mask_hash(hashed: str) -> str:
    """The algorithm and its parameters, salt and digest hidden (``argon2:$argon2id$v=19$m=…$<hidden>``)."""
    if hashed.startswith("argon2:"):
        parts = hashed.split("$")
        return "$".join(parts[:4]) + "$<hidden>" if len(parts) >= 4 else "argon2:<hidden>"
    return hashed.split(":", 1)[0] + ":<hidden>"


def _allow_root_lines(fields: ServerFields) -> list[str]:
    if not fields.allow_root:
        return []
    return [
        "# --allow-root: the server refuses to start as root unless told so; a notebook server",
        "# running as root lets every logged-in user do anything on this machine.",
        "c.ServerApp.allow_root = True",
    ]


#: Shown in a plan where the hash will be: it is made (with a fresh salt) only when the step runs.
PLANNED_HASH = "argon2:$argon2id$v=19$m=10240,t=10,p=8$<made-when-it-runs>"


def config_text(fields: ServerFields, hashed_password: str | None) -> str:
    """``jupyter_server_config.py`` for jupyter_server 2: the hash under its current name.

    ``hashed_password=None`` writes a server without any login (no password, no token): allowed
    on loopback only (:func:`require_auth`)."""
    if hashed_password is None:
        require_auth(fields, has_password=False)
        auth = [
            "# No password and no token: only this machine can reach it (loopback).",
            "c.IdentityProvider.token = ''",
        ]
    else:
        validate_hash(hashed_password)
        auth = [
            "# the password is stored as an argon2 hash (jupyter_server.auth.passwd), never in clear.",
            f"c.PasswordIdentityProvider.hashed_password = {hashed_password!r}",
        ]
    lines = [
        "# Written by labkit (chapter 4.4.2). jupyter_server 2 reads jupyter_server_config.py.",
        *auth,
        f"c.ServerApp.ip = {fields.ip!r}",
        f"c.ServerApp.port = {fields.port!r}",
        f"c.ServerApp.open_browser = {fields.open_browser!r}",
        f"c.ServerApp.root_dir = {fields.root_dir!r}",
        *_allow_root_lines(fields),
    ]
    return "\n".join(lines) + "\n"


def seed_config_text(hashed_password: str) -> str:
    """The seed's 4.4.2 file, ``jupyter_notebook_config.py`` with ``c.ServerApp.password``."""
    validate_hash(hashed_password)
    return (
        "# The course's (seed) route: jupyter notebook --generate-config, then this line.\n"
        "# c.ServerApp.password = ''\n"
        f"c.ServerApp.password = {hashed_password!r}\n"
    )


_ASSIGN = re.compile(r"^c\.(\w+)\.(\w+)\s*=\s*(.+)$")


def parse_config_text(text: str) -> dict[str, Any]:
    """``{"Class.trait": value}`` of a config file's ``c.Class.trait = <literal>`` lines."""
    out: dict[str, Any] = {}
    for line in (text or "").splitlines():
        match = _ASSIGN.match(line.strip())
        if not match:
            continue
        try:
            out[f"{match[1]}.{match[2]}"] = ast.literal_eval(match[3])
        except (ValueError, SyntaxError):
            out[f"{match[1]}.{match[2]}"] = match[3]
    return out


def server_env(config_dir: str, runtime_dir: str, data_dir: str) -> dict[str, str]:
    """The server's own Jupyter dirs (the student's ``~/.jupyter`` is neither read nor written)."""
    return {
        "JUPYTER_CONFIG_DIR": config_dir,
        "JUPYTER_RUNTIME_DIR": runtime_dir,
        "JUPYTER_DATA_DIR": data_dir,
        "JUPYTER_PLATFORM_DIRS": "1",
    }


def server_argv(python: str, config_file: str) -> list[str]:
    """``python -m jupyter_server --config=FILE``: every setting comes from the file."""
    return [python, "-m", "jupyter_server", f"--config={config_file}"]


def seed_argv(python: str, fields: ServerFields) -> list[str]:
    """The seed's ``jupyter notebook --ip --port [--allow-root]``, as ``jupyter server``: no
    ``--config``, so the server looks for its own config file names in the config dir."""
    argv = [
        python,
        "-m",
        "jupyter_server",
        f"--ip={fields.ip}",
        f"--port={fields.port}",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={fields.root_dir}",
    ]
    return argv + (["--allow-root"] if fields.allow_root else [])


def connect_host(ip: str) -> str:
    """Where this machine reaches the server: loopback for the all-interfaces addresses."""
    if ip == "0.0.0.0":
        return "127.0.0.1"
    if ip == "::":
        return "::1"
    return ip


def base_url(ip: str, port: int) -> str:
    """``http://HOST:PORT/`` to connect to from this machine (IPv6 in brackets)."""
    host = connect_host(ip)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def shown_url(fields: ServerFields) -> str:
    """The URL for the student: never with a token or password in it (a URL ends up in browser
    history, logs and the saved notebook); 0.0.0.0 becomes ``<this machine's IP>``."""
    if fields.ip in ("0.0.0.0", "::"):
        return tr("http://<本机 IP>:{p}/", "http://<this machine's IP>:{p}/", p=fields.port)
    return base_url(fields.ip, fields.port)


_TOKEN = re.compile(r"(token=)[^&\s\"']+")


def mask_tokens(text: str) -> str:
    """``?token=abc…`` → ``?token=<hidden>`` (for log lines kept in evidence)."""
    return _TOKEN.sub(r"\1<hidden>", text or "")


def login_outcome(status: int, location: str = "") -> str:
    """``POST /login``: ``accepted`` (302 away from the login page), else ``refused``."""
    if status in (301, 302, 303) and "/login" not in (location or ""):
        return "accepted"
    return "refused"


def parse_status(body: bytes | str) -> dict[str, Any]:
    """``GET /api/status``'s JSON (``started``, ``kernels``, ``connections``…); ``{}`` if not JSON."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) and "started" in data else {}


def parse_runtime_info(text: str) -> dict[str, Any]:
    """The server's ``jpserver-PID.json``: pid, port, root_dir, url, whether a token is set.

    The token itself is dropped here: it never reaches evidence."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return {}
    keep = ("pid", "port", "root_dir", "url", "version", "password", "secure")
    out = {k: data[k] for k in keep if k in data}
    out["token_set"] = bool(data.get("token"))
    return out


def kernel_code(probe_file: str) -> str:
    """What the 4.4.3 cell runs in the kernel: the course's torch lines, then chapter 2a's probe
    without the benchmark (``--size 0``) for a machine-readable line."""
    return (
        "try:\n"
        "    import torch\n"
        '    print("PyTorch Version:", torch.__version__)\n'
        "    if torch.cuda.is_available():\n"
        '        print("CUDA is available. GPU support is enabled.")\n'
        '        print("GPU Name:", torch.cuda.get_device_name(0))\n'
        "    else:\n"
        '        print("CUDA is not available. GPU support is not enabled.")\n'
        "except ImportError as exc:\n"
        '    print("PyTorch is not installed in this kernel:", exc)\n'
        "import runpy, sys\n"
        "sys.argv = ['gpu_probe', '--size', '0']\n"
        f"runpy.run_path({probe_file!r}, run_name='__main__')\n"
    )


def execute_request(code: str, session: str, msg_id: str | None = None) -> dict[str, Any]:
    """A Jupyter messaging ``execute_request`` for the kernel websocket (JSON, channel ``shell``)."""
    return {
        "header": {
            "msg_id": msg_id or uuid.uuid4().hex,
            "username": "labkit",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def kernel_output(messages: Iterable[Mapping[str, Any]], msg_id: str) -> dict[str, Any]:
    """Collect the replies to ``msg_id``: stdout, stderr, the error, the reply status, done?"""
    out: dict[str, Any] = {"stdout": "", "stderr": "", "exception": None, "status": None, "idle": False}
    for msg in messages:
        if (msg.get("parent_header") or {}).get("msg_id") != msg_id:
            continue
        kind = (msg.get("header") or {}).get("msg_type") or msg.get("msg_type")
        content = msg.get("content") or {}
        if kind == "stream":
            name = "stdout" if content.get("name") == "stdout" else "stderr"
            out[name] += str(content.get("text", ""))
        elif kind == "error":
            out["exception"] = f"{content.get('ename')}: {content.get('evalue')}"
        elif kind == "execute_reply":
            out["status"] = content.get("status")
        elif kind == "status" and content.get("execution_state") == "idle":
            out["idle"] = True
    return out


def torch_lines(stdout: str) -> list[str]:
    """The course's printed lines (without the probe's marked JSON line)."""
    return [line for line in (stdout or "").splitlines() if line and not line.startswith("LABKIT-PROBE ")]


def judge_kernel(check_id: str, evidence: Mapping[str, Any]) -> CheckResult:
    """4.4.3's verdict. Graded: the check ran *inside the server* (a kernel started through the
    REST API answered with the probe's line) and the kernel was deleted afterwards. What it found
    (torch absent, no GPU, the GPU's name) is reported, and recorded as ``gpu`` for a grader that
    wants a GPU machine; a CUDA error is an error."""
    ev = dict(evidence)
    try:
        probe = parse_probe_output(str(ev.get("stdout", "")))
    except ValueError:
        probe = {}
    ev["probe"] = probe
    ev["gpu"] = bool(probe.get("device")) and not probe.get("error")
    problems = []
    if not probe:
        problems.append(
            tr(
                "内核没有给出检查结果：{e}",
                "the kernel gave no result: {e}",
                e=ev.get("problem") or ev.get("exception") or "—",
            )
        )
    if not ev.get("kernel_deleted"):
        problems.append(tr("内核没有被删除", "the kernel was not deleted"))
    if problems:
        return CheckResult.failed(check_id, tr("；", "; ").join(problems), **ev)
    error = probe.get("error")
    if error == "cuda-error":
        return CheckResult.errored(
            check_id, tr("CUDA 出错：{d}", "CUDA error: {d}", d=probe.get("detail")), **ev
        )
    found = {
        "no-torch": tr(
            "这个内核的环境里没有安装 PyTorch（import torch 失败），也就看不到 GPU",
            "PyTorch is not installed in this kernel's environment (import torch fails), so no GPU is seen",
        ),
        "no-gpu": tr(
            "PyTorch {v} 已安装，但 torch.cuda.is_available() 为 False：没有可用的 GPU",
            "PyTorch {v} is installed but torch.cuda.is_available() is False: no usable GPU",
            v=probe.get("torch"),
        ),
    }.get(
        error or "",
        tr(
            "PyTorch {v}，CUDA 可用，GPU：{d}",
            "PyTorch {v}, CUDA available, GPU: {d}",
            v=probe.get("torch"),
            d=probe.get("device"),
        ),
    )
    return CheckResult.passed(
        check_id,
        tr(
            "检查在服务器的内核（{k}，经 REST API 启动，之后已删除）里运行：{f}",
            "the check ran inside the server, in kernel {k} (started through the REST API, deleted "
            "afterwards): {f}",
            k=ev.get("kernel_name"),
            f=found,
        ),
        **ev,
    )


def parse_kernel(body: bytes | str) -> dict[str, Any]:
    """``POST /api/kernels``'s answer: ``{"id": ..., "name": ...}`` (``{}`` when it is not that)."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return {}
    return {"id": data["id"], "name": data.get("name")}


def kernel_ids(body: bytes | str) -> list[str]:
    """The ids in ``GET /api/kernels``'s list."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return []
    return (
        [k["id"] for k in data if isinstance(k, dict) and isinstance(k.get("id"), str)]
        if isinstance(data, list)
        else []
    )
