"""Chapter 3's panels (``labkit.ui.ch3``) and how they find the ZeroTier daemon: the lab of
``lab.sh`` through ``LABKIT_ZT_LAB`` (its ``lab.env``), else this machine's ``zerotier-one``."""

from __future__ import annotations

import pytest

from labkit.errors import InvalidField
from labkit.i18n import use_lang
from labkit.logic import zerotier as zt
from labkit.steps.base import Plan
from labkit.steps.zerotier import LAB_ENV_VAR, SEED_NETWORK, find_target
from labkit.ui import ch3, session

pytest_plugins = ["zerotier_lab"]

#: What ``lab.sh env DIR`` prints (the shape of its write_env), paths as on a CI machine.
LAB_ENV = """# ZeroTier two-node lab, written by lab.sh up 2026-12-02T10:00:00Z
ZT_BIN='/root/.cache/labkit/zerotier/bin'
NWID='1d9a9f65a7d10e71'
ADDR1='10.244.0.1'
ADDR2='10.244.0.2'
ZT_LAB_DIR='/tmp/ztlab'
ZT_CLI1='ip netns exec ztlab-0a1b2c3d-1 /root/.cache/labkit/zerotier/bin/zerotier-cli -D/tmp/ztlab/node1'
ZT_CLI2='ip netns exec ztlab-0a1b2c3d-2 /root/.cache/labkit/zerotier/bin/zerotier-cli -D/tmp/ztlab/node2'
ZT_TOKEN2='it'\\''s secret'
"""


def test_lab_env_lines_become_a_client_for_each_node():
    env = zt.parse_lab_env(LAB_ENV)
    assert env["NWID"] == "1d9a9f65a7d10e71" and env["ZT_TOKEN2"] == "it's secret"
    node2 = zt.client_from_lab_env(env, 2)
    assert node2 == zt.Client(
        "/root/.cache/labkit/zerotier/bin/zerotier-cli",
        "/tmp/ztlab/node2",
        None,
        ("ip", "netns", "exec", "ztlab-0a1b2c3d-2"),
    )
    assert zt.cli_argv(node2, "info")[-3:] == [node2.cli, "-D/tmp/ztlab/node2", "info"]
    assert zt.client_from_lab_env(env, 1).home == "/tmp/ztlab/node1"
    with pytest.raises(InvalidField) as missing:
        zt.client_from_lab_env(env, 3)
    assert missing.value.field == "ZT_CLI3"
    assert zt.parse_lab_env("garbage\nlower='x'\nBAD='unterminated\n") == {}


def test_the_target_is_the_labs_node_2_or_this_machines_daemon(tmp_path):
    (tmp_path / "lab.env").write_text(LAB_ENV, encoding="utf-8")
    lab = find_target({LAB_ENV_VAR: str(tmp_path)})
    assert (lab.network, lab.peer, lab.lab_dir) == ("1d9a9f65a7d10e71", "10.244.0.1", "/tmp/ztlab")
    assert lab.step_kwargs()["prefix"] == ("ip", "netns", "exec", "ztlab-0a1b2c3d-2")
    assert find_target({LAB_ENV_VAR: str(tmp_path / "lab.env")}) == lab
    own = find_target({})
    assert own.client == zt.Client() and own.client.home_dir == "/var/lib/zerotier-one"
    assert own.network is None and own.lab_dir is None
    with pytest.raises(InvalidField) as gone:
        find_target({LAB_ENV_VAR: str(tmp_path / "nope")})
    assert gone.value.field == LAB_ENV_VAR and "lab.sh up" in str(gone.value)


CHECK_IDS = {
    "nested_check": "ch3.nested.check",
    "pve_kvm_off": "ch3.pve.kvm_off",
    "pve_destroy": "ch3.pve.destroy",
    "zt_status": "ch3.zt.status",
    "zt_networks": "ch3.zt.listnetworks",
    "zt_join": "ch3.zt.join",
    "zt_leave": "ch3.zt.leave",
    "zt_reach": "ch3.zt.reach",
    "zt_throughput": "ch3.zt.throughput",
    "compression": "ch3.compression",
    "hci_quiz": "ch3.hci.quiz",
}


@pytest.mark.parametrize(("name", "check"), sorted(CHECK_IDS.items()))
def test_chapter3_factories_keep_their_check_ids_and_plan_headless(tmp_path, monkeypatch, name, check):
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    work = session(tmp_path)
    factory = getattr(ch3, name)
    panel = factory(work) if name in ("pve_kvm_off", "compression") else factory()
    assert panel.check_id == check
    plan = panel.plan()
    assert isinstance(plan, Plan) and plan.reason
    assert panel.widget() is not None


def test_zerotier_panels_default_to_the_course_network_and_label_their_fields(monkeypatch):
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    join = ch3.zt_join()
    assert join.values()["network"] == SEED_NETWORK and join.values()["via"] == "cli"
    bad = join.set(network="8056c2e21c00000").plan()
    assert bad.status == "error" and bad.message.startswith("网络 ID（16 位十六进制）：'8056c2e21c00000' ")
    leave = ch3.zt_leave()
    assert "勾选「我确认离开这个网络」" in " ".join(leave.plan().notes)


def test_zerotier_panels_run_against_the_labs_node_2(ztlab, monkeypatch, tmp_path):
    monkeypatch.setenv(LAB_ENV_VAR, ztlab["ZT_LAB_DIR"])
    session(tmp_path)
    status = ch3.zt_status().run("auto")
    assert (status.status, status.mode) == ("pass", "run"), status
    assert status.evidence["node"] == ztlab["NODE2"]
    join = ch3.zt_join()
    assert "via" not in join.values()  # a lab node's API listens inside its namespace: CLI only
    joined = join.run("auto")
    assert joined.status == "pass" and joined.evidence["nwid"] == ztlab["NWID"], joined
    assert f"{ztlab['ADDR2']}/24" in joined.evidence["addresses"]
    listed = ch3.zt_networks().set(json_output=True).run("auto")
    assert listed.status == "pass" and listed.evidence["networks"][0]["status"] == "OK", listed
    kept = ch3.zt_leave().run("auto")  # not confirmed: waits for the checkbox, still joined
    assert kept.status == "skipped" and kept.evidence["skip_reason"] == "consent", kept


def test_reach_and_throughput_panels_measure_the_lab_for_real(ztlab, monkeypatch, tmp_path):
    """Node 2 reaches node 1; iperf3 over ZeroTier and the veth, its server started on node 1 by
    the step; the measured speeds go to the compression plot."""
    monkeypatch.setenv(LAB_ENV_VAR, ztlab["ZT_LAB_DIR"])
    work = session(tmp_path)
    reach = ch3.zt_reach()
    assert reach.values()["peers"] == ztlab["ADDR1"] and reach.values()["network"] == ztlab["NWID"]
    reached = reach.run("auto")
    assert reached.status == "pass", reached
    assert reached.evidence["node"] == ztlab["NODE2"] and reached.evidence["peers"][0]["reached"]
    throughput = ch3.zt_throughput(seconds=1)
    assert throughput.values()["underlay"] == ztlab["UNDERLAY1"]
    measured = throughput.run("auto")
    assert measured.status == "pass", measured
    links = ch3.measured_links(throughput)
    assert set(links) == {"ZeroTier", "veth"} and all(v > 0 for v in links.values())
    assert measured.evidence["ratio"] is not None and measured.evidence["server"] == "started"
    plot = ch3.compression(work, size="256K", links=links).run("auto")
    assert plot.status == "pass", plot


def test_reach_and_throughput_without_an_address_ask_for_it_by_label(monkeypatch):
    """A student's machine with no classmate's address typed yet: skipped as not filled in, the
    message naming the field; a bad address names the field and which entry."""
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    empty = ch3.zt_throughput().run("auto")
    assert (empty.status, empty.evidence["skip_reason"]) == ("skipped", "unanswered"), empty
    assert "「对端的 ZeroTier 地址」" in empty.message
    bad = ch3.zt_reach("10.244.0.1, 10.244.0.x").plan()
    assert bad.status == "error" and "（第 2 个）" in bad.message and "对端的 ZeroTier 地址" in bad.message
    with use_lang("en"):
        wrong = ch3.zt_throughput("10.244.0.1", underlay="lan-host").plan()
    assert wrong.status == "error" and "optional" in wrong.message and "lan-host" in wrong.message


@pytest.mark.parametrize("wait_s", ["abc", "", 0, -1, 99999, None, True])
def test_join_wait_is_checked_and_named_by_its_label(monkeypatch, wait_s):
    """What a student types in 最多等待（秒）: an error naming the field, never a ValueError."""
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    bad = ch3.zt_join().set(wait_s=wait_s).plan()
    assert bad.status == "error" and bad.message.startswith("最多等待（秒）："), bad
    assert "1 到 600 秒" in bad.message
    assert isinstance(ch3.zt_join(wait_s=1).plan(), Plan) and isinstance(ch3.zt_join(wait_s=600).plan(), Plan)


def test_underlay_must_be_another_address_than_the_zerotier_one(monkeypatch):
    """The ZeroTier address typed again as the underlay would measure the overlay twice and call
    one of them the underlay; the hint for that field speaks of the underlying network."""
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    same = ch3.zt_throughput("10.244.0.1", underlay="10.244.0.1/24").plan()
    assert same.status == "error" and "和 ZeroTier 地址相同" in same.message
    assert same.message.startswith("对端在底层网络上的地址（可留空）：")
    junk = ch3.zt_throughput("10.244.0.1", underlay="lan-host").plan()
    assert junk.status == "error" and "底层网络（局域网）上的地址" in junk.message
    assert "虚拟网络里的地址" not in junk.message
    ok = ch3.zt_throughput("10.244.0.1", underlay="192.168.1.20").plan()
    assert isinstance(ok, Plan) and "192.168.1.20" in " ".join(" ".join(c) for c in ok.commands)


def test_labels_quoted_in_the_notebook_are_the_panels_labels(tmp_path, monkeypatch):
    """Every 「…」 in chapter 3's narrative is a field label, a button, or part of a panel's title."""
    import json
    import re
    from pathlib import Path

    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    work = session(tmp_path)
    shown = {"运行", "停止", "记录这次结果（用于评分）"}
    titles = []
    for name in CHECK_IDS:
        factory = getattr(ch3, name)
        panel = factory(work) if name in ("pve_kvm_off", "compression") else factory()
        shown.update(panel.labels().values())
        titles.append(panel.title)
    nb = json.loads(
        (Path(__file__).parents[1] / "notebooks" / "04-distributed-vlan.ipynb").read_text("utf-8")
    )
    quoted = {
        q
        for cell in nb["cells"]
        if cell["cell_type"] == "markdown"
        for q in re.findall("「([^」]+)」", "".join(cell["source"]))
    }
    assert quoted, "the narrative quotes no labels?"
    unknown = {q for q in quoted if q not in shown and not any(q in t for t in titles)}
    assert not unknown, f"quoted in the notebook but not on any panel: {unknown}"


@pytest.mark.parametrize("size", ["0", "1T", "-1", "abc", "", "0.0001K"])
def test_compression_size_hint_is_about_this_field(tmp_path, monkeypatch, size):
    """Nonsense in 每个数据集的大小: the label, and this field's own range, not a disk size of 120G."""
    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    bad = ch3.compression(session(tmp_path)).set(size=size).plan()
    assert bad.status == "error" and bad.message.startswith("每个数据集的大小："), bad
    assert "最多 256M" in bad.message and "120G" not in bad.message and "磁盘" not in bad.message


def test_the_narrative_counts_the_graded_cells_that_need_zerotier(tmp_path, monkeypatch):
    """ "没有安装时 … ZeroTier 的N个计分单元格拿不到分": N is how many graded cells really skip
    (reason host) on a machine without zerotier-cli."""
    import json
    import re
    from pathlib import Path

    monkeypatch.delenv(LAB_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no zerotier-cli, whatever this machine has
    nb = json.loads(
        (Path(__file__).parents[1] / "notebooks" / "04-distributed-vlan.ipynb").read_text("utf-8")
    )
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    said = re.search("ZeroTier 的(.)个计分单元格", text)
    assert said, "the narrative no longer says how many graded cells need ZeroTier"
    graded = [
        c["metadata"]["labkit"]["check"] for c in nb["cells"] if "points" in c["metadata"].get("labkit", {})
    ]
    by_check = {check: name for name, check in CHECK_IDS.items()}
    skipped = []
    for check in graded:
        if check.startswith("ch3.zt."):
            result = getattr(ch3, by_check[check])().run("auto")
            if result.status == "skipped":  # no daemon; no ZeroTier peer to measure either
                skipped.append(check)
    assert {"两": 2, "三": 3, "四": 4}[said.group(1)] == len(skipped), skipped
