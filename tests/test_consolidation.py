"""The course's server-consolidation example as a first-fit-decreasing planner (chapter 1.2)."""

from __future__ import annotations

import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planmatch import execute_and_match

from labkit.errors import InvalidField
from labkit.logic.consolidation import (
    Host,
    Workload,
    identical_hosts,
    parse_workloads,
    plan_placement,
    plot_placement,
    seed_example,
)
from labkit.steps.consolidation import Consolidate


def test_seed_example_mail_and_web_share_one_server_at_60_percent():
    hosts, work = seed_example()
    placement = plan_placement(hosts, work)
    assert placement.assignment["mail"] == placement.assignment["web"]
    shared = placement.per_host[placement.assignment["mail"]]
    assert math.isclose(shared.cpu_utilization, 0.6)
    assert math.isclose(shared.memory_utilization, 0.6)
    business_host = placement.assignment["business"]
    assert business_host != placement.assignment["mail"]
    assert len(placement.hosts_freed) == 1
    assert placement.all_placed
    # the course's punch line: two machines are now available to the business application
    assert len([h for h in hosts if h.name != placement.assignment["mail"]]) == 2
    assert business_host not in placement.hosts_freed


def test_doubling_the_business_still_fits_and_leaves_a_server_free():
    placement = plan_placement(*seed_example(business_doubled=True))
    assert placement.all_placed
    assert len(placement.hosts_freed) == 1
    assert all(ld.utilization <= 0.8 + 1e-9 for ld in placement.loads)


def test_target_utilization_decides_how_tightly_servers_are_packed():
    hosts, work = seed_example()
    loose = plan_placement(hosts, work, target_utilization=0.5)
    assert len(loose.hosts_freed) == 0  # 30 % + 30 % would exceed 50 %
    tight = plan_placement(hosts, work, target_utilization=1.0)
    assert len(tight.hosts_freed) == 2
    assert math.isclose(tight.loads[0].cpu_utilization, 0.9)


def test_memory_can_be_the_binding_resource_and_big_workloads_are_reported():
    hosts = [Host("a", 32, 16), Host("b", 32, 16)]
    work = [Workload("db", 2, 12), Workload("cache", 2, 12), Workload("huge", 40, 1)]
    placement = plan_placement(hosts, work, 0.8)
    assert placement.assignment["db"] != placement.assignment["cache"]  # 24 GB > 80 % of 16 GB
    assert placement.unplaceable == ["huge"]
    assert not placement.all_placed
    assert "huge" in placement.summary()


def test_fraction_of_a_host():
    ref = Host("ref", 8, 32)
    w = Workload.fraction_of("web", ref, 0.25, 0.5)
    assert (w.cpu_demand, w.memory_gb) == (2.0, 16.0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Host("", 8, 32), "host name"),
        (lambda: Host("a", 0, 32), "cores"),
        (lambda: Host("a", 8, float("nan")), "memory_gb"),
        (lambda: Workload("w", -1), "cpu_demand"),
        (lambda: plan_placement([], []), "hosts"),
        (lambda: plan_placement([Host("a", 1, 1)], [], 1.5), "target_utilization"),
        (lambda: plan_placement([Host("a", 1, 1)], [], 0), "target_utilization"),
        (lambda: plan_placement([Host("a", 1, 1)], [], 0.8, "best-fit"), "strategy"),
        (lambda: plan_placement([Host("a", 1, 1), Host("a", 2, 2)], []), "hosts"),
        (lambda: plan_placement([Host("a", 1, 1)], [Workload("w", 1), Workload("w", 1)]), "workloads"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InvalidField) as err:
        call()
    assert err.value.field == field


hosts_st = st.lists(
    st.builds(Host, st.just("h"), st.integers(1, 64), st.floats(1, 512, allow_nan=False)),
    min_size=1,
    max_size=6,
).map(lambda hs: [Host(f"h{i}", h.cores, h.memory_gb) for i, h in enumerate(hs)])
work_st = st.lists(
    st.tuples(st.floats(0, 80, allow_nan=False), st.floats(0, 600, allow_nan=False)), max_size=15
).map(lambda ws: [Workload(f"w{i}", c, m) for i, (c, m) in enumerate(ws)])


@settings(max_examples=200)
@given(hosts_st, work_st, st.floats(0.05, 1.0))
def test_ffd_invariants(hosts, work, target):
    p = plan_placement(hosts, work, target)
    # every workload is placed exactly once or reported
    assert sorted(list(p.assignment) + p.unplaceable) == sorted(w.name for w in work)
    assert not set(p.assignment) & set(p.unplaceable)
    # no host over the target, and the per-host sums agree with the assignment
    for ld in p.loads:
        assert ld.cpu_used <= target * ld.host.cores + 1e-6
        assert ld.memory_used <= target * ld.host.memory_gb + 1e-6
        assert sorted(ld.workloads) == sorted(n for n, h in p.assignment.items() if h == ld.host.name)
    # an unplaceable workload really fits nowhere (loads only grow, so the final state is enough)
    by_name = {w.name: w for w in work}
    for name in p.unplaceable:
        assert not any(ld.fits(by_name[name], target) for ld in p.loads)
    # deterministic
    again = plan_placement(hosts, work, target)
    assert again.assignment == p.assignment
    assert again.unplaceable == p.unplaceable
    assert p.hosts_freed == [ld.host.name for ld in p.loads if not ld.workloads]


def test_plot_is_a_standalone_figure_with_one_segment_per_workload():
    from matplotlib.figure import Figure

    placement = plan_placement(*seed_example(business_doubled=True))
    fig = plot_placement(placement)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == len(placement.assignment)
    assert [t.get_text() for t in ax.get_xticklabels()] == [h.name for h in seed_example()[0]]
    heights = sorted(round(p.get_height()) for p in ax.patches)
    assert heights == [30, 30, 30, 30]
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")

    other = Figure()
    target_ax = other.add_subplot()
    assert plot_placement(placement, target_ax, resource="memory") is other
    with pytest.raises(InvalidField):
        plot_placement(placement, resource="disk")


def test_consolidate_step_passes_with_table_and_fails_when_something_does_not_fit():
    result = Consolidate(*seed_example()).execute()
    assert result.check == "ch1.consolidation"
    assert result.status == "pass"
    ev = result.evidence
    assert [row["host"] for row in ev["table"]] == ["server-1", "server-2", "server-3"]
    assert ev["table"][0]["cpu_%"] == 60.0
    assert ev["hosts_freed"] == ["server-3"]
    assert ev["unplaceable"] == []

    hosts, work = seed_example()
    result = Consolidate(hosts, [*work, Workload("batch", 100, 1)]).execute()
    assert result.status == "fail"
    assert result.evidence["unplaceable"] == ["batch"]
    assert Consolidate(hosts, work, target=2).execute().status == "error"
    planned = Consolidate(hosts, work).execute("plan")
    assert planned.status == "skipped"
    assert planned.evidence["plan"]["commands"] == []


# -- the planner panel's form ---------------------------------------------------------------------
def test_parse_workloads_reads_shares_of_the_reference_server():
    ref = Host("server-1", 8, 32)
    work = parse_workloads(" mail=30%, web = 25 ,, db=100% ", ref)
    assert [w.name for w in work] == ["mail", "web", "db"]
    assert work[0] == Workload("mail", 0.3 * 8, 0.3 * 32)
    assert work[1].cpu_demand == 2.0
    assert work[2].memory_gb == 32
    assert parse_workloads("", ref) == []


@pytest.mark.parametrize("text", ["mail", "=30%", "mail=0%", "mail=120%", "mail=lots", "mail=30%, web"])
def test_parse_workloads_names_the_field_and_the_bad_part(text):
    with pytest.raises(InvalidField) as err:
        parse_workloads(text, Host("s", 8, 32), "workloads")
    assert err.value.field == "workloads"


@pytest.mark.parametrize(
    ("args", "field"),
    [((0, 8, 32), "hosts"), ((51, 8, 32), "hosts"), ((True, 8, 32), "hosts"), ((3, 0, 32), "host_cores"),
     ((3, 8, -1), "host_memory_gb")],
)  # fmt: skip
def test_identical_hosts_range_checks_name_the_panel_fields(args, field):
    with pytest.raises(InvalidField) as err:
        identical_hosts(*args)
    assert err.value.field == field


def test_from_fields_is_the_seed_example_and_runs_no_command():
    step = Consolidate.from_fields(3, 8, 32, "mail=30%, web=30%, business=30%", 0.8)
    assert step.hosts == seed_example()[0]
    assert step.workloads == seed_example()[1]
    result, ran = execute_and_match(step)
    assert result.status == "pass", result.message
    assert ran == []
