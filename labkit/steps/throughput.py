"""Measure throughput with iperf3 over each link (course 3.4, ``ch3.zt.throughput``).

:class:`MeasureThroughput` runs ``iperf3 -c ADDR -p PORT -t SECS -J`` once per target (e.g.
``{"ZeroTier": "10.244.0.1", "veth": "10.241.0.1"}``: the same peer over the overlay and over the
link underneath) and records what arrived in bit/s, the sender's retransmits, and the ratio
ZeroTier ÷ veth, the overlay's cost (encryption, encapsulation, a user-space daemon in the path).

The server side:

* ``server_prefix`` given (``lab.sh``'s lab: ``("ip", "netns", "exec", NS1)``; ``()`` for this
  machine): the step starts ``iperf3 -s -1 -B ADDR -p PORT --forceflush`` itself through the runner,
  waits for "Server listening", runs the client, and stops the server (it also ends by itself after
  its one test); :meth:`cleanup` stops whatever is left whatever happened. No server outlives the step.
* ``server_prefix=None``: the peer runs ``iperf3 -s`` (the plan shows that command for the peer).

The rows feed :func:`labkit.logic.compression.plot_transfer` through
:func:`labkit.logic.throughput.links`, so the transfer-time figure marks the *measured* links.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks import CheckResult
from labkit.errors import CommandFailed, InvalidField
from labkit.i18n import tr
from labkit.logic import compression as cz
from labkit.logic import throughput as tp
from labkit.steps.base import Plan, RunContext, Step
from labkit.steps.runner import Process

__all__ = ["MeasureThroughput"]

#: Seconds a started server has to say "Server listening".
READY_TIMEOUT = 10.0


def _install_hint() -> str:
    return tr(
        "安装 iperf3：sudo apt install iperf3（对端也要安装并运行 iperf3 -s）",
        "install iperf3: sudo apt install iperf3 (the peer needs it too, running iperf3 -s)",
    )


class MeasureThroughput(Step):
    """iperf3 over each link; the evidence rows feed ``plot_transfer(links=...)``."""

    check_id = "ch3.zt.throughput"
    timeout = 600.0

    def __init__(
        self,
        targets: Mapping[str, str],
        *,
        port: int = tp.DEFAULT_PORT,
        seconds: int = 3,
        client_prefix: Sequence[str] = (),
        server_prefix: Sequence[str] | None = None,
        reverse: bool = False,
        targets_field: str = "targets",
    ) -> None:
        #: Empty until the student types the peer's address (:meth:`unfilled`).
        self.targets = tp.validate_targets(targets) if targets else {}
        #: The field that gives the targets (a panel's peer address field), named when it is empty.
        self.targets_field = targets_field
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidField("port", port, tr("不是端口号", "is not a port"), tr("例如 5201", "e.g. 5201"))
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 60:
            raise InvalidField(
                "seconds", seconds, tr("应为 1 到 60 秒", "must be 1 to 60 seconds"), tr("例如 3", "e.g. 3")
            )
        self.port = port
        self.seconds = seconds
        self.client_prefix = tuple(str(p) for p in client_prefix)
        self.server_prefix = None if server_prefix is None else tuple(str(p) for p in server_prefix)
        self.reverse = bool(reverse)
        self._servers: list[Process] = []

    # -- what runs ------------------------------------------------------------------------------
    def _client(self, address: str) -> list[str]:
        return tp.client_argv(
            address, self.port, seconds=self.seconds, reverse=self.reverse, prefix=self.client_prefix
        )

    def _server(self, address: str) -> list[str]:
        return tp.server_argv(address, self.port, prefix=self.server_prefix or ())

    def plan(self) -> Plan:
        cmds: list[list[str]] = []
        for address in self.targets.values():
            if self.server_prefix is not None:
                cmds.append(self._server(address))
            cmds.append(self._client(address))
        notes = [
            tr(
                "每条链路测 {s} 秒；记录到达的比特率（bit/s）和发送端重传次数",
                "{s} s per link; records the bit rate that arrived (bit/s) and the sender's retransmits",
                s=self.seconds,
            )
        ]
        if self.server_prefix is None:
            notes.append(
                tr(
                    "先在对端运行：{c}（保持运行，测完按 Ctrl+C）",
                    "first run on the peer: {c} (keep it running; Ctrl+C when done)",
                    c=shlex.join(["iperf3", "-s", "-p", str(self.port)]),
                )
            )
        else:
            notes.append(
                tr(
                    "服务端 iperf3 -s -1 由本步骤启动，只服务一次测试，结束后本步骤确认它已退出",
                    "the iperf3 -s -1 server is started by this step, serves one test, and the step makes "
                    "sure it is gone afterwards",
                )
            )
        return Plan(
            "MeasureThroughput",
            tr(
                "用 iperf3 测量吞吐量：{t}",
                "measure throughput with iperf3: {t}",
                t=", ".join(f"{k} {v}" for k, v in self.targets.items()),
            ),
            commands=cmds,
            notes=notes,
        )

    def unfilled(self) -> tuple[str, str] | None:
        example = "{'ZeroTier': '10.244.0.1'}" if self.targets_field == "targets" else "10.244.0.1"
        return None if self.targets else (self.targets_field, example)

    def unavailable(self, ctx: RunContext) -> str | None:
        if shutil.which("iperf3") is None:
            return tr("找不到 iperf3；{h}", "iperf3 not found; {h}", h=_install_hint())
        for prefix in (self.client_prefix, self.server_prefix or ()):
            if prefix and shutil.which(prefix[0]) is None:
                return tr("找不到 {t}", "{t} not found", t=prefix[0])
        return None

    # -- run ------------------------------------------------------------------------------------
    def _start_server(self, ctx: RunContext, address: str) -> Process:
        argv = self._server(address)
        proc = ctx.start(argv)
        self._servers.append(proc)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            ctx.check_cancelled()
            if any(tp.server_ready(line) for _name, line in proc.lines(timeout=0.2)):
                return proc
            if proc.poll() is not None:
                break
        rc = proc.stop(grace=1)
        err = "\n".join(line for _name, line in proc.lines(timeout=0.2))
        raise CommandFailed(
            argv,
            rc,
            "",
            err,
            hint=tr(
                "iperf3 服务端没有开始监听：地址 {a} 不在这台机器（或命名空间）上，或端口 {p} 已被占用",
                "the iperf3 server did not start listening: {a} is not an address of this machine (or "
                "namespace), or port {p} is taken",
                a=address,
                p=self.port,
            ),
        )

    def _end_server(self, proc: Process) -> None:
        """Let a one-test server end by itself (a few seconds), then stop it anyway."""
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.stop(grace=2)
        if proc in self._servers:
            self._servers.remove(proc)

    def _measure(self, ctx: RunContext, address: str) -> tp.IperfResult:
        proc = self._start_server(ctx, address) if self.server_prefix is not None else None
        try:
            done = ctx.run(self._client(address), check=False, timeout=self.seconds + 30)
        finally:
            if proc is not None:
                self._end_server(proc)
        result = tp.parse_iperf_json(done.stdout)
        if result.error and not done.stdout.strip() and done.stderr.strip():
            return tp.IperfResult(error=done.stderr.strip().splitlines()[-1][:300])
        return result

    def run(self, ctx: RunContext) -> dict[str, Any]:
        rows, errors = [], {}
        for i, (label, address) in enumerate(self.targets.items()):
            ctx.check_cancelled()
            result = self._measure(ctx, address)
            rows.append(tp.result_row(label, address, result))
            if result.error:
                errors[label] = result.error
            else:
                ctx.say(f"{label} {address}: {cz.format_bps(result.bps or 0.0)}")
            ctx.progress((i + 1) / len(self.targets))
        return {
            "rows": rows,
            "ratio": tp.ratio(rows),
            "errors": errors,
            "seconds": self.seconds,
            "reverse": self.reverse,
            "server": "started" if self.server_prefix is not None else "peer",
        }

    def cleanup(self) -> None:
        while self._servers:
            self._servers.pop().stop(grace=1)

    # -- judge ----------------------------------------------------------------------------------
    def check(self, ctx: RunContext, evidence: dict[str, Any]) -> CheckResult:
        ok = [r for r in evidence["rows"] if r["link"] not in evidence["errors"]]
        measured = ", ".join(f"{r['link']} {cz.format_bps(r['bps'])}" for r in ok)
        if evidence["ratio"] is not None:
            under = next((r["link"] for r in evidence["rows"] if r["link"] != "ZeroTier"), "-")
            measured += tr(
                "；ZeroTier/{u} = {r:.2f}（叠加网络的开销：加密、封装、用户态转发）",
                "; ZeroTier/{u} = {r:.2f} (the overlay's cost: encryption, encapsulation, user-space "
                "forwarding)",
                u=under,
                r=evidence["ratio"],
            )
        if evidence["errors"]:
            failed = "; ".join(f"{k}: {v}" for k, v in evidence["errors"].items())
            hint = tr(
                "对端要运行 iperf3 -s -p {p}，防火墙放行 TCP {p}，地址要能到达（先做连通性检查）",
                "the peer must run iperf3 -s -p {p}, its firewall must let TCP {p} in, and the address "
                "must be reachable (run the reachability check first)",
                p=self.port,
            )
            return CheckResult.failed(
                self.check_id,
                tr("没有测到：{f}。{h}", "not measured: {f}. {h}", f=failed, h=hint)
                + (tr("（已测到：{m}）", " (measured: {m})", m=measured) if measured else ""),
                **evidence,
            )
        return CheckResult.passed(self.check_id, tr("吞吐量：{m}", "throughput: {m}", m=measured), **evidence)
