"""Two hosts over DDS: the planner in one network namespace, sim + controller in another, joined by a
veth pair, Fast DDS UDPv4 only between them. How users outgrow one machine, tested without a second
one; skipped (with the reason) where namespaces cannot be created (not root, no iproute2)."""
import os

import pytest

from warpd_ros.testing import netns, two_hosts

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WINDOW_S = 8.0


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    """The split graph run once: the recorder's numbers, the veth counters, the namespaces' names."""
    reason = netns.netns_unavailable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("two_hosts")
    domain_id = int(os.environ["ROS_DOMAIN_ID"])
    with netns.veth_pair() as pair:
        placement = two_hosts.Placement(two_hosts.two_hosts(pair), workdir, domain_id)
        before = {h.netns: netns.counters(h) for h in pair.hosts}
        procs = two_hosts.start_graph(placement, seed=0)
        try:
            result = two_hosts.record(placement, WINDOW_S)
        except RuntimeError as exc:
            pytest.fail(f"{exc}\n{two_hosts.logs(workdir)}")
        finally:
            codes = two_hosts.stop_graph(procs)
        sent = {h.netns: netns.difference(netns.counters(h), before[h.netns]) for h in pair.hosts}
        present_inside = netns.list_namespaces()
        in_root = [h.ifname for h in pair.hosts if netns.visible_here(h.ifname)]
    return {"pair": pair, "result": result, "sent": sent, "codes": codes, "present_inside": present_inside, "in_root": in_root,
            "after": netns.list_namespaces(), "logs": two_hosts.logs(workdir)}


def test_the_controller_on_host_b_runs_the_policies_of_the_planner_on_host_a(split_run):
    r = split_run["result"]
    swaps, controller = r["swaps"], r["controller"]
    assert r["policy_planners"] == ["warpd_planner"], split_run["logs"]
    # commands equal to what each new policy computes (hil-check's swap matching), for nearly every swap
    assert swaps["measured"] >= 5 and swaps["measured"] >= 0.8 * swaps["policies_seen"], (swaps, split_run["logs"])
    assert controller["swaps_accepted"] >= swaps["measured"] and controller["swaps_rejected"] == 0
    assert controller["run_share"] >= 0.5, controller  # it drives (a loaded machine may hold on late states)
    assert r["swap_latency_ms"]["p50"] < 100.0, r["swap_latency_ms"]  # a 2-core machine: generous
    assert r["episodes_finished"] >= 1, r["episodes"]
    assert all(code is not None for code in split_run["codes"].values()), split_run["codes"]


def test_the_graph_traffic_crossed_the_veth(split_run):
    pair, sent, r = split_run["pair"], split_run["sent"], split_run["result"]
    a, b = sent[pair.a.netns], sent[pair.b.netns]
    # every policy went A -> B over the veth, as UDP (not through shared memory); joint states and task
    # features went back B -> A for the planner
    assert a["tx_bytes"] >= r["policies_received"] * r["policy_bytes"] > 0, (a, r["policies_received"])
    assert b["rx_bytes"] >= a["tx_bytes"] * 0.99, (a, b)  # a veth loses nothing
    assert b["tx_packets"] >= r["joint_states"]["count"], (b, r["joint_states"])


def test_the_veth_lives_only_in_the_test_namespaces_which_are_removed_afterwards(split_run):
    pair = split_run["pair"]
    assert split_run["in_root"] == []
    names = {pair.a.netns, pair.b.netns}
    assert names <= set(split_run["present_inside"])
    assert not names & set(split_run["after"])
    assert not names & set(netns.list_namespaces())


def test_the_skip_reason_says_what_is_missing(monkeypatch):
    check = netns.netns_unavailable.__wrapped__  # uncached
    monkeypatch.setattr(netns.shutil, "which", lambda name: "/sbin/ip")
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "needs root" in check()
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert "iproute2" in check()
