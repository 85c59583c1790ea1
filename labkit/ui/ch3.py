"""Chapter 3 (hyper-convergence and virtual LANs): one panel factory per notebook cell.

Each factory only wires widget fields to a step: the HCI exercise (:mod:`labkit.ui.exercise`),
the nested-virtualization check (:mod:`labkit.steps.nested`), chapter 1's PVE panels under
chapter 3's check ids, ZeroTier (:mod:`labkit.steps.zerotier`), reachability
(:mod:`labkit.steps.reach`), iperf3 throughput (:mod:`labkit.steps.throughput`) and the
compression measurement (:mod:`labkit.steps.compression`) with its transfer-time plot.

Which ZeroTier daemon the panels talk to is decided once per factory call by
:func:`labkit.steps.zerotier.find_target`: with ``LABKIT_ZT_LAB`` set to a lab folder of
``lab.sh up DIR``, the lab's node 2 (and its network id as the join default); otherwise this
machine's ``zerotier-one`` (``zerotier-cli`` on PATH, ``/var/lib/zerotier-one``), planned with the
reason where it is not installed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from labkit.i18n import tr
from labkit.ui import Session
from labkit.ui.panel import StepPanel, blank_is_none, step_factory

__all__ = [
    "compression",
    "hci_quiz",
    "measured_links",
    "nested_check",
    "pve_destroy",
    "pve_kvm_off",
    "zerotier_target",
    "zt_join",
    "zt_leave",
    "zt_networks",
    "zt_reach",
    "zt_status",
    "zt_throughput",
]


# -- 3.1 / 3.2 hyper-convergence ------------------------------------------------------------------
def hci_quiz(answers: Mapping[str, Any] | None = None) -> StepPanel:
    """The course's HCI pros and cons as a checked exercise (``ch3.hci.quiz``); ``answers``
    pre-selects choices, e.g. ``{"q1": "A", "q3": "ABD"}``."""
    from labkit.ui.exercise import exercise_panel

    return exercise_panel("ch3.hci", answers)


# -- 3.1 PVE inside VirtualBox ------------------------------------------------------------------------
def nested_check(vm: str = "PVE") -> StepPanel:
    from labkit.steps.nested import NestedVirtCheck

    return StepPanel(
        tr("嵌套虚拟化检查（vmx/svm 与 KVM）", "Nested virtualization check (vmx/svm and KVM)"),
        step_factory(NestedVirtCheck),
        {"vm": (vm, tr("VirtualBox 中 PVE 虚拟机的名字", "name of the PVE VM in VirtualBox"))},
        console=False,
    )


def pve_kvm_off(work: Session, vmid: int = 100, consent: bool = False) -> StepPanel:
    """Chapter 1's safe ``kvm: no`` edit (practice copy in the work folder), as ``ch3.pve.kvm_off``."""
    from labkit.ui import ch1

    return ch1.pve_kvm_off(work, vmid, consent, check="ch3.pve.kvm_off")


def pve_destroy(vmid: int = 100) -> StepPanel:
    """``qm stop`` + ``qm destroy`` after the id is typed again; runs only where ``qm`` exists."""
    from labkit.ui import ch1

    return ch1.pve_destroy(vmid, check="ch3.pve.destroy")


# -- 3.3 ZeroTier ---------------------------------------------------------------------------------------
def _target() -> Any:
    from labkit.steps.zerotier import find_target

    return find_target()


def zerotier_target() -> Any:
    """Show which daemon this notebook's ZeroTier panels use; returns it (a ``ZtTarget``)."""
    from IPython.display import HTML, display

    target = _target()
    if target.lab_dir:
        text = tr(
            "ZeroTier 面板连接的是实验网络（{d}）的节点 2；网络 ID {n}，对端（节点 1）地址 {p}",
            "the ZeroTier panels use node 2 of the lab network ({d}); network id {n}, peer (node 1) {p}",
            d=target.lab_dir,
            n=target.network or "-",
            p=target.peer or "-",
        )
    else:
        text = tr(
            "ZeroTier 面板连接的是本机的 zerotier-one（{h}）",
            "the ZeroTier panels use this machine's zerotier-one ({h})",
            h=target.client.home_dir,
        )
    display(HTML(f"<p>{html.escape(text)}</p>"))
    return target


def _reach_fields(target: Any, json_output: bool = False) -> dict[str, tuple[Any, ...]]:
    """``-j`` for everyone; the local JSON API only for this machine's daemon (a lab node's API
    listens inside its network namespace)."""
    fields: dict[str, tuple[Any, ...]] = {
        "json_output": (json_output, tr("使用 -j（JSON）输出", "use -j (JSON) output")),
    }
    if not target.lab_dir:
        fields["via"] = ("cli", tr("连接方式", "reach the daemon via"), ("cli", "api"))
    return fields


def zt_status() -> StepPanel:
    from labkit.steps.zerotier import ZtStatus

    target = _target()
    return StepPanel(
        tr("ZeroTier：本节点状态（info / listpeers）", "ZeroTier: this node's status (info / listpeers)"),
        step_factory(ZtStatus, **target.step_kwargs()),
        _reach_fields(target),
        console=False,
    )


def zt_networks() -> StepPanel:
    from labkit.steps.zerotier import ZtListNetworks

    target = _target()
    return StepPanel(
        tr("ZeroTier：已加入的网络（listnetworks）", "ZeroTier: joined networks (listnetworks)"),
        step_factory(ZtListNetworks, **target.step_kwargs()),
        _reach_fields(target),
        console=False,
    )


def _network(target: Any, network: str | None) -> tuple[str, str]:
    from labkit.steps.zerotier import SEED_NETWORK

    return (
        network or target.network or SEED_NETWORK,
        tr("网络 ID（16 位十六进制）", "network id (16 hex digits)"),
    )


def zt_join(network: str | None = None, wait_s: int = 60) -> StepPanel:
    """``network`` defaults to the lab's network, else the course's example id."""
    from labkit.steps.zerotier import ZtJoin

    target = _target()
    return StepPanel(
        tr("ZeroTier：加入网络并等待 OK", "ZeroTier: join a network and wait for OK"),
        step_factory(ZtJoin, **target.step_kwargs()),
        {
            "network": _network(target, network),
            "wait_s": (wait_s, tr("最多等待（秒）", "wait at most (s)")),
            **_reach_fields(target),
        },
    )


def zt_leave(network: str | None = None, confirm: bool = False) -> StepPanel:
    """Leaves only once the confirmation checkbox is ticked (``confirm``)."""
    from labkit.steps.zerotier import ZtLeave

    target = _target()
    return StepPanel(
        tr("ZeroTier：离开网络", "ZeroTier: leave a network"),
        step_factory(ZtLeave, **target.step_kwargs()),
        {
            "network": _network(target, network),
            "confirm": (confirm, tr("我确认离开这个网络", "I confirm leaving this network")),
            **_reach_fields(target),
        },
        console=False,
    )


# -- 3.3 reachability ------------------------------------------------------------------------------
def zt_reach(peers: str | None = None, port: int = 9993, count: int = 3) -> StepPanel:
    """Ping and a timed TCP connection to each peer over the virtual LAN (``ch3.zt.reach``).

    ``peers`` defaults to the lab's node 1; on a student's machine the classmates' ZeroTier
    addresses (``zerotier-cli listnetworks`` on their machines), comma-separated. Port 9993 is
    ZeroTier's own: every member's daemon listens there."""
    from labkit.steps.reach import ReachPeers

    target = _target()
    return StepPanel(
        tr("虚拟局域网连通性：ping 与 TCP 连接", "Reachability over the virtual LAN: ping and TCP"),
        step_factory(ReachPeers, client=target.client, prefix=target.client.prefix),
        {
            "peers": (
                peers or target.peer or "",
                tr("对端的 ZeroTier 地址（逗号分隔）", "peers' ZeroTier addresses (comma-separated)"),
            ),
            "network": _network(target, None),
            "port": (port, tr("TCP 端口", "TCP port")),
            "count": (count, tr("每个对端 ping 的次数", "pings per peer")),
        },
        console=False,
    )


# -- 3.4 throughput -------------------------------------------------------------------------------
def _throughput_step(*, target: Any, peer: str, underlay: str | None, **kw: Any) -> Any:
    """The targets from the two address fields; in the lab the step starts node 1's iperf3 server."""
    from labkit.logic.reach import validate_peer
    from labkit.steps.throughput import MeasureThroughput

    targets: dict[str, str] = {}
    if peer and peer.strip():  # blank: the step says which field to fill (skipped, unanswered)
        targets["ZeroTier"] = validate_peer(peer, "peer")
        if underlay:
            targets["veth" if target.lab_dir else "LAN"] = _underlay(underlay, targets["ZeroTier"])
    server = target.peer_prefix if target.lab_dir else None
    return MeasureThroughput(
        targets, client_prefix=target.client.prefix, server_prefix=server, targets_field="peer", **kw
    )


def _underlay(value: Any, zerotier: str) -> str:
    """The peer's address on the network underneath: an address, and not the ZeroTier one again
    (that would measure the overlay twice and call one of them the underlay)."""
    from labkit.errors import InvalidField
    from labkit.logic.reach import validate_peer

    hint = tr(
        "填对端在底层网络（局域网）上的地址，不是它的 ZeroTier 地址；实验环境里是 10.241.0.1，也可以留空",
        "give the peer's address on the underlying network (the LAN), not its ZeroTier address; "
        "10.241.0.1 in the lab; or leave it blank",
    )
    try:
        address = validate_peer(value, "underlay")
    except InvalidField:
        raise InvalidField(
            "underlay", value, tr("不是 IPv4 或 IPv6 地址", "is not an IPv4 or IPv6 address"), hint
        ) from None
    if address == zerotier:
        raise InvalidField(
            "underlay", value, tr("和 ZeroTier 地址相同", "is the ZeroTier address again"), hint
        )
    return address


def zt_throughput(peer: str | None = None, underlay: str | None = None, seconds: int = 3) -> StepPanel:
    """iperf3 throughput to a peer over ZeroTier, and over the network underneath for comparison
    (``ch3.zt.throughput``). In the lab the step runs the server on node 1 itself; on a student's
    machine a classmate runs ``iperf3 -s`` (the plan shows it). ``measured_links(panel)`` gives the
    measured speeds to the compression plot."""
    from labkit.steps.throughput import MeasureThroughput

    target = _target()
    return StepPanel(
        tr(
            "测量带宽：ZeroTier 与底层网络（iperf3）",
            "Measure throughput: ZeroTier vs the underlay (iperf3)",
        ),
        step_factory(
            MeasureThroughput,
            build=_throughput_step,
            convert={"underlay": blank_is_none},
            target=target,
        ),
        {
            "peer": (peer or target.peer or "", tr("对端的 ZeroTier 地址", "peer's ZeroTier address")),
            "underlay": (
                underlay or target.peer_underlay or "",
                tr("对端在底层网络上的地址（可留空）", "peer's address on the underlying network (optional)"),
            ),
            "seconds": (seconds, tr("每条链路测量秒数", "seconds per link")),
        },
    )


def measured_links(panel: StepPanel) -> dict[str, float]:
    """``{link: bit/s}`` the throughput panel measured (empty when it did not pass), for
    ``compression(work, links=...)``."""
    from labkit.logic.throughput import links

    result = panel.result
    if result is None or result.status != "pass":
        return {}
    return links(result.evidence.get("rows") or [])


# -- 3.4 bandwidth and compression ---------------------------------------------------------------
def compression(work: Session, size: str = "4M", links: Mapping[str, float | str] | None = None) -> StepPanel:
    """Measure gzip / zstd / lz4 on course-like data in the work folder, then plot the time to move
    1 GiB against link speed. ``links`` marks measured link speeds on the plot (name → bit/s or
    ``"85M"``), e.g. the ZeroTier and veth throughput of the bandwidth cell."""
    from labkit.steps.compression import MeasureCompression

    def figure(step: Any, result: Any) -> Any:
        """The transfer plot as a PNG (saved in the notebook, shown without pyplot)."""
        if result.status != "pass":
            return None
        import io

        from IPython.display import Image

        from labkit.logic.compression import plot_transfer

        buf = io.BytesIO()
        fig = plot_transfer(result.evidence["rows"], links=dict(links or {}))
        fig.savefig(buf, format="png", bbox_inches="tight", dpi=96)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return Image(buf.getvalue())

    return StepPanel(
        tr("测量压缩：gzip、zstd、lz4", "Measure compression: gzip, zstd, lz4"),
        step_factory(MeasureCompression, workdir=str(work.path)),
        {"size": (size, tr("每个数据集的大小", "size of each data set"))},
        extra=figure,
    )
