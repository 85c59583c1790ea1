"""Server consolidation, the course's motivating example for virtualization, as a small planner.

Course text (1.2): three physical servers – mail, web, business application – each use about 30 %
of their capacity. Virtualized, mail and web share one machine (about 60 % busy) and the other two
machines are free for the business application, which can now double.

:func:`plan_placement` is first-fit decreasing bin packing: workloads are sorted by their largest
share of a host (CPU or memory, whichever is bigger – the resource that runs out first), then each
goes to the first host, in the order given, where CPU *and* memory stay at or below
``target_utilization``. The target leaves headroom for peaks (the course's "宕机" section: a VM
that runs out of resources goes down). Ties keep the input order, so the result is deterministic.
FFD is not optimal (bin packing is NP-hard) but is never worse than 11/9·OPT + 6/9 bins, which is
plenty for a classroom, and every step of it can be followed by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labkit.errors import InvalidField
from labkit.i18n import tr
from labkit.plotfont import plot_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "STRATEGIES",
    "Host",
    "HostLoad",
    "Placement",
    "Workload",
    "identical_hosts",
    "parse_workloads",
    "plan_placement",
    "plot_placement",
    "seed_example",
]

STRATEGIES = ("ffd",)
_EPS = 1e-9
#: How many identical servers the planner panel offers.
MAX_HOSTS = 50


def _positive(field_name: str, value: object, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    raise InvalidField(
        field_name,
        value,
        tr("不是正数", "is not a positive number") if not allow_zero else tr("不是非负数", "is not ≥ 0"),
        tr("例如 8", "e.g. 8"),
    )


def _name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or "\n" in value:
        raise InvalidField(
            field_name,
            value,
            tr("不是名字", "is not a name"),
            tr("1 到 64 个字符，例如 web", "1-64 characters, e.g. web"),
        )
    return value


@dataclass(frozen=True)
class Host:
    """A physical server: ``cores`` CPU cores and ``memory_gb`` of RAM."""

    name: str
    cores: float
    memory_gb: float

    def __post_init__(self) -> None:
        _name("host name", self.name)
        _positive("cores", self.cores)
        _positive("memory_gb", self.memory_gb)


@dataclass(frozen=True)
class Workload:
    """A service to place: it needs ``cpu_demand`` cores (fractions allowed) and ``memory_gb``."""

    name: str
    cpu_demand: float
    memory_gb: float = 0.0

    def __post_init__(self) -> None:
        _name("workload name", self.name)
        _positive("cpu_demand", self.cpu_demand, allow_zero=True)
        _positive("memory_gb", self.memory_gb, allow_zero=True)

    @classmethod
    def fraction_of(
        cls, name: str, host: Host, cpu_fraction: float, memory_fraction: float | None = None
    ) -> Workload:
        """A workload described as "uses 30 % of that server" (memory defaults to the same fraction)."""
        cpu = _positive("cpu_fraction", cpu_fraction, allow_zero=True)
        mem = (
            cpu if memory_fraction is None else _positive("memory_fraction", memory_fraction, allow_zero=True)
        )
        return cls(name, cpu * host.cores, mem * host.memory_gb)


@dataclass
class HostLoad:
    """What ended up on one host."""

    host: Host
    workloads: list[str] = field(default_factory=list)
    cpu_used: float = 0.0
    memory_used: float = 0.0

    @property
    def cpu_utilization(self) -> float:
        return self.cpu_used / self.host.cores

    @property
    def memory_utilization(self) -> float:
        return self.memory_used / self.host.memory_gb

    @property
    def utilization(self) -> float:
        """The busier of the two resources."""
        return max(self.cpu_utilization, self.memory_utilization)

    def fits(self, w: Workload, target: float) -> bool:
        return (
            self.cpu_used + w.cpu_demand <= target * self.host.cores + _EPS
            and self.memory_used + w.memory_gb <= target * self.host.memory_gb + _EPS
        )


@dataclass
class Placement:
    """The result of :func:`plan_placement`."""

    target: float
    strategy: str
    loads: list[HostLoad]
    assignment: dict[str, str]
    unplaceable: list[str]
    workloads: dict[str, Workload]

    @property
    def per_host(self) -> dict[str, HostLoad]:
        return {ld.host.name: ld for ld in self.loads}

    @property
    def hosts_used(self) -> list[str]:
        return [ld.host.name for ld in self.loads if ld.workloads]

    @property
    def hosts_freed(self) -> list[str]:
        """Hosts with nothing on them: they can be switched off or given new work."""
        return [ld.host.name for ld in self.loads if not ld.workloads]

    @property
    def all_placed(self) -> bool:
        return not self.unplaceable

    def table(self) -> list[dict[str, Any]]:
        """One row per host, for display and as check evidence."""
        return [
            {
                "host": ld.host.name,
                "workloads": ", ".join(ld.workloads) or "—",
                "cpu": f"{ld.cpu_used:g}/{ld.host.cores:g}",
                "cpu_%": round(100 * ld.cpu_utilization, 1),
                "memory_gb": f"{ld.memory_used:g}/{ld.host.memory_gb:g}",
                "memory_%": round(100 * ld.memory_utilization, 1),
            }
            for ld in self.loads
        ]

    def summary(self) -> str:
        freed = ", ".join(self.hosts_freed) or tr("无", "none")
        text = tr(
            "{n} 台主机中用了 {u} 台，空出：{f}",
            "{u} of {n} hosts used; freed: {f}",
            n=len(self.loads),
            u=len(self.hosts_used),
            f=freed,
        )
        if self.unplaceable:
            text += tr("；放不下：{w}", "; could not place: {w}", w=", ".join(self.unplaceable))
        return text


def _check_unique(kind: str, names: list[str]) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidField(
            kind, dupes, tr("名字重复", "has duplicate names"), tr("每个名字只用一次", "use each name once")
        )


def plan_placement(
    hosts: list[Host] | tuple[Host, ...],
    workloads: list[Workload] | tuple[Workload, ...],
    target_utilization: float = 0.8,
    strategy: str = "ffd",
) -> Placement:
    """Place ``workloads`` on ``hosts`` so no host exceeds ``target_utilization`` of CPU or memory."""
    if strategy not in STRATEGIES:
        raise InvalidField("strategy", strategy, tr("不支持", "is not supported"), tr("用 ffd", "use ffd"))
    target = _positive("target_utilization", target_utilization)
    if target > 1:
        raise InvalidField(
            "target_utilization",
            target_utilization,
            tr("超过 100%", "is above 100%"),
            tr("0 到 1 之间，例如 0.8", "between 0 and 1, e.g. 0.8"),
        )
    hosts = list(hosts)
    workloads = list(workloads)
    for h in hosts:
        if not isinstance(h, Host):
            raise InvalidField("hosts", h, tr("不是 Host", "is not a Host"), "Host('srv1', 8, 32)")
    for w in workloads:
        if not isinstance(w, Workload):
            raise InvalidField(
                "workloads", w, tr("不是 Workload", "is not a Workload"), "Workload('web', 2.4, 8)"
            )
    if not hosts:
        raise InvalidField(
            "hosts", hosts, tr("为空", "is empty"), tr("至少一台主机", "give at least one host")
        )
    _check_unique("hosts", [h.name for h in hosts])
    _check_unique("workloads", [w.name for w in workloads])

    ref_cores = max(h.cores for h in hosts)
    ref_mem = max(h.memory_gb for h in hosts)

    def size(w: Workload) -> float:
        return max(w.cpu_demand / ref_cores, w.memory_gb / ref_mem)

    order = sorted(range(len(workloads)), key=lambda i: (-size(workloads[i]), i))
    loads = [HostLoad(h) for h in hosts]
    assignment: dict[str, str] = {}
    unplaceable: list[str] = []
    for i in order:
        w = workloads[i]
        for ld in loads:
            if ld.fits(w, target):
                ld.workloads.append(w.name)
                ld.cpu_used += w.cpu_demand
                ld.memory_used += w.memory_gb
                assignment[w.name] = ld.host.name
                break
        else:
            unplaceable.append(w.name)
    return Placement(target, strategy, loads, assignment, unplaceable, {w.name: w for w in workloads})


def identical_hosts(count: int, cores: float, memory_gb: float) -> list[Host]:
    """``server-1`` … ``server-N``, all alike (the planner panel's "N servers of C cores, M GB").

    Errors name the panel's fields (``hosts``, ``host_cores``, ``host_memory_gb``).
    """
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_HOSTS:
        raise InvalidField("hosts", count, tr("超出范围", "is out of range"), f"1 … {MAX_HOSTS}")
    _positive("host_cores", cores)
    _positive("host_memory_gb", memory_gb)
    return [Host(f"server-{i}", cores, memory_gb) for i in range(1, count + 1)]


def parse_workloads(text: str, ref: Host, field_name: str = "workloads") -> list[Workload]:
    """``"mail=30%, web=30%"`` (each a share of the reference host ``ref``) → workloads.

    A part that is not ``name=percent`` with 0 < percent ≤ 100 raises :class:`InvalidField` naming
    ``field_name`` (the panel's field) and the part.
    """
    if not isinstance(text, str):
        raise InvalidField(field_name, text, tr("不是文字", "is not text"), "mail=30%, web=30%")
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, share = part.partition("=")
        try:
            fraction = float(share.strip().rstrip("%")) / 100
        except ValueError:
            fraction = -1.0
        if not sep or not name.strip() or not 0 < fraction <= 1:
            raise InvalidField(
                field_name, part, tr("不是 名称=百分比", "is not name=percent"), "mail=30%, web=30%"
            )
        out.append(Workload.fraction_of(name.strip(), ref, fraction))
    return out


def seed_example(*, business_doubled: bool = False) -> tuple[list[Host], list[Workload]]:
    """The course's scenario: three identical servers, mail/web/business each using 30 %.

    Planned with the default target (80 %), mail and web share ``server-1`` (60 %), business runs
    on ``server-2`` and ``server-3`` is freed. ``business_doubled=True`` adds a second business
    instance – the course's "业务规模的翻倍" – and both instances still fit next to mail + web,
    with ``server-3`` still free.
    """
    servers = [Host(f"server-{i}", 8, 32) for i in (1, 2, 3)]
    ref = servers[0]
    work = [
        Workload.fraction_of("mail", ref, 0.3),
        Workload.fraction_of("web", ref, 0.3),
        Workload.fraction_of("business", ref, 0.3),
    ]
    if business_doubled:
        work.append(Workload.fraction_of("business-2", ref, 0.3))
    return servers, work


def plot_placement(placement: Placement, ax: Axes | None = None, *, resource: str = "cpu") -> Figure:
    """Stacked bars, one per host, one segment per workload, with the target as a dashed line.

    Uses :class:`matplotlib.figure.Figure` directly (no pyplot global state), so it is safe in
    threads, headless runs and the Agg backend. Pass ``ax`` to draw into an existing axes. Labels
    are Chinese when the course language is and a font with Chinese glyphs is installed
    (:func:`labkit.plotfont.plot_text`; otherwise English, with a warning that says why).
    """
    if resource not in ("cpu", "memory"):
        raise InvalidField("resource", resource, tr("不是可选值", "is not a choice"), "cpu / memory")
    from matplotlib.figure import Figure

    text = plot_text()
    label = text.label
    if ax is None:
        fig = Figure(figsize=(1.6 + 1.2 * len(placement.loads), 3.6))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    names = [ld.host.name for ld in placement.loads]
    xs = list(range(len(names)))
    palette = [f"C{i}" for i in range(10)]
    colour: dict[str, str] = {}
    for x, ld in zip(xs, placement.loads, strict=True):
        bottom = 0.0
        for wname in ld.workloads:
            w = placement.workloads[wname]
            share = w.cpu_demand / ld.host.cores if resource == "cpu" else w.memory_gb / ld.host.memory_gb
            c = colour.setdefault(wname, palette[len(colour) % len(palette)])
            ax.bar(x, 100 * share, bottom=100 * bottom, color=c, edgecolor="white", width=0.6)
            ax.text(
                x,
                100 * (bottom + share / 2),
                wname,
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
            bottom += share
        if not ld.workloads:
            ax.text(x, 4, label("空出", "freed"), ha="center", va="bottom", fontsize=9, color="grey")
    ax.axhline(100 * placement.target, linestyle="--", color="black", linewidth=1)
    ax.set_xticks(xs, names)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(0, 100)
    if resource == "cpu":
        ax.set_ylabel(label("CPU 利用率 %", "CPU utilization %"))
    else:
        ax.set_ylabel(label("内存利用率 %", "memory utilization %"))
    freed = ", ".join(placement.hosts_freed) or label("无", "none")
    ax.set_title(
        label(
            "用了 {u}/{n} 台主机，空出：{f}",
            "{u} of {n} hosts used; freed: {f}",
            u=len(placement.hosts_used),
            n=len(placement.loads),
            f=freed,
        ),
        fontsize=9,
    )
    text.apply(fig)  # type: ignore[arg-type]
    return fig  # type: ignore[return-value]
