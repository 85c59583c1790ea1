"""ZeroTier One client of chapter 3 (virtual LANs): pure argv builders, parsers and explanations.

labkit talks to the local ``zerotier-one`` daemon two ways, both built here:

* ``zerotier-cli`` (:func:`cli_argv`): ``info``, ``join``, ``leave``, ``listnetworks``,
  ``listpeers``, text or ``-j`` (JSON). The parsers read what ZeroTier One 1.14.1 really prints
  (``../shared/FINDINGS.md``): an empty network name is printed as two spaces, ``-`` means "no
  address", several addresses are comma-separated, ``listpeers`` prints ``-`` and ``-1`` for
  unknown paths and latencies. Exit codes lie (``leave`` of a network not joined prints ``200 leave
  OK``, a bad token exits 1 with ``401 info {}``, an unknown command exits 0), so
  :func:`cli_problem` judges the *output*, never the exit code alone.
* the local JSON API (:func:`api_request`): ``http://127.0.0.1:<port>`` with the header
  ``X-ZT1-Auth: <authtoken.secret>``; the port comes from ``zerotier-one.port`` in the home folder.
  An unreadable token is the course's "missing authentication token" case
  (:func:`token_unreadable`), with a fix that needs ``sudo`` once, not for every command.

Nothing here does I/O; ``labkit.steps.zerotier`` runs the commands and the HTTP calls.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from labkit.errors import InvalidField
from labkit.i18n import tr

__all__ = [
    "API_HEADER",
    "DEFAULT_HOME",
    "DEFAULT_PORT",
    "JOIN_STATES",
    "ApiRequest",
    "Client",
    "Network",
    "NodeInfo",
    "Peer",
    "api_request",
    "cli_argv",
    "cli_problem",
    "client_from_lab_env",
    "explain_state",
    "find_network",
    "parse_info",
    "parse_info_json",
    "parse_json",
    "parse_lab_env",
    "parse_listnetworks",
    "parse_listpeers",
    "parse_networks_json",
    "parse_peers_json",
    "parse_port",
    "parse_token",
    "token_unreadable",
    "validate_network_id",
]

#: Where ZeroTier's Linux packages keep the daemon's home (identity, token, port file).
DEFAULT_HOME = "/var/lib/zerotier-one"
DEFAULT_PORT = 9993
API_HEADER = "X-ZT1-Auth"
#: The join states the course meets, in the order a join normally passes through them.
JOIN_STATES = ("REQUESTING_CONFIGURATION", "ACCESS_DENIED", "NOT_FOUND", "PORT_ERROR", "OK")

_NWID = re.compile(r"^[0-9a-f]{16}$")
_NODE = re.compile(r"^[0-9a-f]{10}$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def validate_network_id(value: object, field_name: str = "network") -> str:
    """A ZeroTier network id: exactly 16 hex digits (lower-cased); else :class:`InvalidField`."""
    text = value.strip().lower() if isinstance(value, str) else value
    if not isinstance(text, str) or not _NWID.match(text):
        raise InvalidField(
            field_name,
            value,
            tr(
                "不是 ZeroTier 网络 ID（应为 16 位十六进制数字）",
                "is not a ZeroTier network id (16 hex digits)",
            ),
            tr(
                "从 my.zerotier.com 或控制器复制网络 ID，例如 1d9a9f65a7d10e71",
                "copy the network id from my.zerotier.com or your controller, e.g. 1d9a9f65a7d10e71",
            ),
        )
    return text


# ------------------------------------------------------------------------------ zerotier-cli


@dataclass(frozen=True)
class Client:
    """How to reach one daemon: the CLI program, its home folder and port, an argv prefix.

    ``prefix`` runs the CLI somewhere else, e.g. ``("ip", "netns", "exec", "ztlab-…-2")`` for
    ``lab.sh``'s node 2 (its API listens only inside that network namespace). ``home`` and
    ``port`` become ``-D<home>`` / ``-p<port>``; ``None`` keeps the CLI's own defaults.
    """

    cli: str = "zerotier-cli"
    home: str | None = None
    port: int | None = None
    prefix: tuple[str, ...] = ()

    @property
    def home_dir(self) -> str:
        return self.home or DEFAULT_HOME


def cli_argv(client: Client, *args: str, as_json: bool = False) -> list[str]:
    """``[prefix…] zerotier-cli [-D<home>] [-p<port>] [-j] ARGS``; network ids in ARGS are checked."""
    if len(args) > 1 and args[0] in ("join", "leave"):
        args = (args[0], validate_network_id(args[1]), *args[2:])
    argv = [*client.prefix, client.cli]
    if client.home:
        argv.append(f"-D{client.home}")
    if client.port is not None:
        argv.append(f"-p{int(client.port)}")
    if as_json:
        argv.append("-j")
    return [*argv, *args]


def cli_problem(command: str, stdout: str, stderr: str, home: str = DEFAULT_HOME) -> str | None:
    """What went wrong with a ``zerotier-cli`` run, judged from its output (``None``: it worked).

    ``command`` is the CLI verb (``info``, ``join``, ``listnetworks`` …). The exit code is not
    consulted: the daemon's own answers (``200 …``) or the JSON tell success.
    """
    out, err = stdout.strip(), stderr.strip()
    if "authtoken.secret not found or readable" in err:
        return token_unreadable(home)
    if re.search(r"^401\b", out, re.M):
        return tr(
            "守护进程拒绝了认证令牌（401）：令牌与 {h}/authtoken.secret 不一致",
            "the daemon rejected the authentication token (401): it does not match {h}/authtoken.secret",
            h=home,
        )
    both = f"{out}\n{err}"
    if "invalid network id" in both or re.search(r"^404 (join|leave)", out, re.M):
        return tr("守护进程不接受这个网络 ID", "the daemon does not accept this network id")
    down = ("Error connecting to the ZeroTier service", "zerotier-one.port not found")
    if any(d in both for d in down) or re.search(r"connection refused", err, re.I):
        return tr(
            "连不上 zerotier-one 守护进程：它没有运行？（sudo systemctl start zerotier-one）",
            "cannot reach the zerotier-one daemon: is it running? (sudo systemctl start zerotier-one)",
        )
    if out.startswith(("[", "{")) or re.search(rf"^200 {re.escape(command)}\b", out, re.M):
        return None
    detail = (err or out).splitlines()[-1] if (err or out) else tr("没有输出", "no output")
    return tr(
        "zerotier-cli {c} 没有给出预期的回答：{d}",
        "zerotier-cli {c} did not give the expected answer: {d}",
        c=command,
        d=detail[:300],
    )


@dataclass(frozen=True)
class NodeInfo:
    """``info``/``status``: this node's 10-hex address, the version and ONLINE/OFFLINE/TUNNELED."""

    address: str
    version: str
    state: str

    @property
    def online(self) -> bool:
        return self.state in ("ONLINE", "TUNNELED")


@dataclass(frozen=True)
class Network:
    """One joined network (a ``listnetworks`` row or a ``/network`` object)."""

    nwid: str
    name: str
    mac: str
    status: str
    type: str
    device: str
    addresses: tuple[str, ...] = ()
    port_error: int = 0

    def to_evidence(self) -> dict[str, Any]:
        return {
            "nwid": self.nwid,
            "name": self.name,
            "status": self.status,
            "type": self.type,
            "device": self.device,
            "addresses": list(self.addresses),
        }


@dataclass(frozen=True)
class Peer:
    """One ``listpeers`` row: address, preferred path (``None`` = ``-``), latency (``None`` = -1)."""

    address: str
    role: str
    path: str | None = None
    latency_ms: int | None = None
    version: str | None = None
    paths: tuple[str, ...] = field(default=())


def _rows(text: str, verb: str) -> list[str]:
    prefix = f"200 {verb} "
    rows = (line.rstrip("\r")[len(prefix) :] for line in text.splitlines() if line.startswith(prefix))
    return [row for row in rows if not row.startswith("<")]


def parse_info(text: str) -> NodeInfo:
    """``200 info <node> <version> <state>`` → :class:`NodeInfo` (ValueError if absent)."""
    for row in _rows(text, "info"):
        parts = row.split()
        if len(parts) >= 3 and _NODE.match(parts[0]):
            return NodeInfo(parts[0], parts[1], parts[2])
    raise ValueError("no '200 info' line")


def parse_json(text: str) -> Any:
    """The JSON a ``-j`` command or the API printed (ValueError when it is not JSON)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None


def parse_info_json(obj: Any) -> NodeInfo:
    """``-j info`` / ``GET /status`` → :class:`NodeInfo` (the CLI's own rule for the state)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("address"), str):
        raise ValueError("not a status object")
    state = "TUNNELED" if obj.get("tcpFallbackActive") else ("ONLINE" if obj.get("online") else "OFFLINE")
    return NodeInfo(obj["address"], str(obj.get("version", "-")), state)


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(a for a in text.split(",") if a and a != "-")


def parse_listnetworks(text: str) -> list[Network]:
    """The text ``listnetworks`` rows → :class:`Network` (header and foreign lines skipped).

    A row is ``<nwid> <name> <mac> <status> <type> <dev> <ips>`` joined by single spaces; the name
    may be empty (two spaces) or contain spaces, so the MAC column is found by its shape.
    """
    out = []
    for row in _rows(text, "listnetworks"):
        tokens = row.split(" ")
        if not _NWID.match(tokens[0]):
            continue
        macs = [i for i in range(1, len(tokens)) if _MAC.match(tokens[i]) and len(tokens) - i <= 5]
        if not macs:
            continue
        i = macs[0]
        rest = [*tokens[i + 1 :], "", "", "", ""][:4]
        out.append(
            Network(
                nwid=tokens[0],
                name=" ".join(tokens[1:i]).strip(),
                mac=tokens[i],
                status=rest[0],
                type=rest[1],
                device="" if rest[2] == "-" else rest[2],
                addresses=_addresses(rest[3]),
            )
        )
    return out


def parse_networks_json(obj: Any) -> list[Network]:
    """``-j listnetworks`` / ``GET /network`` (a list) or ``GET /network/<id>`` (one object)."""
    items = [obj] if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise ValueError("not a network list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        nwid = str(item.get("nwid") or item.get("id") or "")
        if not _NWID.match(nwid):
            continue
        addrs = item.get("assignedAddresses")
        out.append(
            Network(
                nwid=nwid,
                name=str(item.get("name") or ""),
                mac=str(item.get("mac") or ""),
                status=str(item.get("status") or ""),
                type=str(item.get("type") or ""),
                device=str(item.get("portDeviceName") or ""),
                addresses=tuple(str(a) for a in addrs) if isinstance(addrs, list) else (),
                port_error=item["portError"] if isinstance(item.get("portError"), int) else 0,
            )
        )
    return out


def parse_listpeers(text: str) -> list[Peer]:
    """``200 listpeers <ztaddr> <path> <latency> <version> <role>`` rows → :class:`Peer`."""
    out = []
    for row in _rows(text, "listpeers"):
        parts = row.split()
        if len(parts) != 5 or not _NODE.match(parts[0]):
            continue
        address, path, latency, version, role = parts
        lat = int(latency) if re.fullmatch(r"-?\d{1,9}", latency) else -1
        out.append(
            Peer(
                address=address,
                role=role,
                path=None if path == "-" else path.split(";")[0],
                latency_ms=None if lat < 0 else lat,
                version=None if version == "-" else version,
                paths=() if path == "-" else (path.split(";")[0],),
            )
        )
    return out


def parse_peers_json(obj: Any) -> list[Peer]:
    """``-j listpeers`` / ``GET /peer`` → :class:`Peer` (preferred path first)."""
    if not isinstance(obj, list):
        raise ValueError("not a peer list")
    out = []
    for item in obj:
        if not isinstance(item, dict) or not _NODE.match(str(item.get("address", ""))):
            continue
        paths = [
            p for p in item.get("paths") or [] if isinstance(p, dict) and isinstance(p.get("address"), str)
        ]
        paths.sort(key=lambda p: not p.get("preferred"))
        lat = item.get("latency")
        version = item.get("version")
        out.append(
            Peer(
                address=item["address"],
                role=str(item.get("role") or "-"),
                path=paths[0]["address"] if paths else None,
                latency_ms=lat if isinstance(lat, int) and lat >= 0 else None,
                version=None if version in (None, "", "-") or str(version).startswith("-") else str(version),
                paths=tuple(p["address"] for p in paths),
            )
        )
    return out


# ------------------------------------------------------------------------------ join states


def explain_state(status: str, nwid: str = "") -> str:
    """A join state in the course language, with what to do next."""
    n = nwid or tr("这个网络", "this network")
    texts = {
        "OK": tr(
            "OK：已加入 {n}，拿到了配置（和地址）",
            "OK: joined {n} and received its configuration (and address)",
            n=n,
        ),
        "REQUESTING_CONFIGURATION": tr(
            "REQUESTING_CONFIGURATION：正在向控制器请求配置；本机离线或控制器不可达时会一直停在这里，"
            "先用 zerotier-cli info 确认 ONLINE",
            "REQUESTING_CONFIGURATION: asking the controller for the configuration; it stays here while "
            "this node is offline or the controller is unreachable, so first check zerotier-cli info "
            "says ONLINE",
        ),
        "ACCESS_DENIED": tr(
            "ACCESS_DENIED：{n} 是私有网络，本节点还没被授权；请管理员在 my.zerotier.com 或控制器里"
            "勾选本节点（info 里的 10 位地址）的 Auth，然后等几秒",
            "ACCESS_DENIED: {n} is private and this node is not authorized yet; ask the admin to tick "
            "Auth for this node (the 10-digit address from info) at my.zerotier.com or the "
            "controller, then wait a few seconds",
            n=n,
        ),
        "NOT_FOUND": tr(
            "NOT_FOUND：控制器上没有 {n}；检查网络 ID 是否抄错，或网络已被删除",
            "NOT_FOUND: the controller has no network {n}; check the id for typos, or the network "
            "was deleted",
            n=n,
        ),
        "PORT_ERROR": tr(
            "PORT_ERROR：无法创建虚拟网卡（TUN/TAP）；检查 /dev/net/tun 存在，容器里需要 "
            "--cap-add NET_ADMIN --device /dev/net/tun，然后重启 zerotier-one",
            "PORT_ERROR: the virtual network interface (TUN/TAP) could not be created; check that "
            "/dev/net/tun exists (a container needs --cap-add NET_ADMIN --device /dev/net/tun), then "
            "restart zerotier-one",
        ),
    }
    return texts.get(
        status,
        tr(
            "{s}：未知状态，查看 zerotier-cli listnetworks",
            "{s}: unknown state, see zerotier-cli listnetworks",
            s=status or "-",
        ),
    )


# ------------------------------------------------------------------------------ local JSON API


@dataclass(frozen=True)
class ApiRequest:
    """One local API call: method, URL, headers (the token among them), JSON body."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None

    def curl_argv(self) -> list[str]:
        """The ``curl`` form shown in plans and evidence, the token masked (never printed)."""
        argv = ["curl", "-sS", "-X", self.method, "-H", f"{API_HEADER}: <authtoken.secret>"]
        if self.body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", self.body.decode()]
        return [*argv, self.url]


def parse_port(text: str) -> int:
    """``zerotier-one.port`` holds the port the API listens on (ValueError if not a port)."""
    value = text.strip()
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"not a port: {value[:20]!r}")
    return int(value)


def parse_token(text: str) -> str:
    """The token of ``authtoken.secret`` (whitespace stripped; ValueError when empty/odd)."""
    token = text.strip()
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        raise ValueError("empty or malformed token")
    return token


def api_request(port: int, token: str, path: str, method: str = "GET", body: Any = None) -> ApiRequest:
    """``GET /status``, ``/network``, ``/peer``, ``POST /network/<id>`` (join), ``DELETE`` (leave)."""
    if not path.startswith("/") or any(c in path for c in " ?#\r\n"):
        raise ValueError(f"bad API path {path!r}")
    data = None if body is None else json.dumps(body).encode()
    return ApiRequest(method, f"http://127.0.0.1:{int(port)}{path}", {API_HEADER: token}, data)


def token_unreadable(home: str = DEFAULT_HOME) -> str:
    """The "missing authentication token" explanation, with a fix that needs sudo only once."""
    return tr(
        "读不到认证令牌（missing authentication token）：{h}/authtoken.secret 只有 root 能读。"
        "只需用一次 sudo 复制给自己：sudo cp {h}/authtoken.secret ~/.zeroTierOneAuthToken && "
        "sudo chown $USER ~/.zeroTierOneAuthToken && chmod 600 ~/.zeroTierOneAuthToken"
        "（zerotier-cli 会自动读取它）；或者把自己加入一个组并让该组可读：sudo chgrp zerotier "
        "{h}/authtoken.secret && sudo chmod 640 {h}/authtoken.secret",
        "cannot read the authentication token (missing authentication token): {h}/authtoken.secret "
        "is readable by root only. Copy it to yourself with one sudo: sudo cp {h}/authtoken.secret "
        "~/.zeroTierOneAuthToken && sudo chown $USER ~/.zeroTierOneAuthToken && chmod 600 "
        "~/.zeroTierOneAuthToken (zerotier-cli reads it by itself); or give a group read access and "
        "join it: sudo chgrp zerotier {h}/authtoken.secret && sudo chmod 640 {h}/authtoken.secret",
        h=home.rstrip("/") or "/",
    )


def find_network(networks: Sequence[Network], nwid: str) -> Network | None:
    return next((n for n in networks if n.nwid == nwid), None)


# ------------------------------------------------------------------------------ the two-node lab
def parse_lab_env(text: str) -> dict[str, str]:
    """``lab.sh env DIR`` / ``DIR/lab.env``: ``KEY='value'`` lines (``#`` comments) → a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        out[key] = words[0] if words else ""
    return out


def client_from_lab_env(env: Mapping[str, str], node: int) -> Client:
    """The :class:`Client` of the lab's node ``node`` (1 or 2) from its ``ZT_CLI<n>`` line,
    ``ip netns exec NS …/zerotier-cli -D…/node<n>``: the prefix, the CLI and its home folder.

    :class:`InvalidField` (naming the key) when the line is missing or not of that form."""
    key = f"ZT_CLI{int(node)}"
    words = shlex.split(env.get(key, ""))
    cli_at = next((i for i, w in enumerate(words) if w.rsplit("/", 1)[-1] == "zerotier-cli"), None)
    if cli_at is None:
        raise InvalidField(
            key,
            env.get(key, ""),
            tr("不是 lab.sh 写出的 zerotier-cli 命令", "is not the zerotier-cli line lab.sh writes"),
            tr("重新运行 lab.sh up DIR", "run lab.sh up DIR again"),
        )
    home = next((w[2:] for w in words[cli_at + 1 :] if w.startswith("-D") and len(w) > 2), None)
    port = next((w[2:] for w in words[cli_at + 1 :] if w.startswith("-p") and w[2:].isdigit()), None)
    return Client(words[cli_at], home, int(port) if port else None, tuple(words[:cli_at]))
