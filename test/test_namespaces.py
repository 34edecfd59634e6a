"""Two sim graphs, /r1 and /r2, in one ROS domain: each controller runs only its own planner's policies,
each sim gets commands only from its own controller, and each node reads its parameters from the
namespaced config. What several robots on one network need from relative topic names."""
import subprocess

import pytest

from warpd_core.runtime.command_pipeline import Mode
from warpd_ros.modes import status_mode
from warpd_ros.testing.processes import start_node, stop_process
from warpd_ros.testing.standin import TestNode, running

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NAMESPACES = ("r1", "r2")
SEEDS = {"r1": 0, "r2": 100}  # different episodes, so a mixed-up graph would show


@pytest.fixture(scope="module")
def graphs():
    from warpd_ros.bringup import plan

    procs = []
    try:
        for ns in NAMESPACES:
            overrides = [("warpd_sim", "seed", str(SEEDS[ns])),
                         ("warpd_controller", "control_rate_hz", "250.0")]  # two graphs on two cores
            for child in plan("sim", overrides=overrides, namespace=ns):
                procs.append(start_node(child.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        yield procs
    finally:
        for proc in procs:
            stop_process(proc, group=True)


class Watcher(TestNode):
    """Listens to both graphs by their full names: policies published, controller statuses, episode ends."""

    def __init__(self, context):
        from warpd_ros import qos, topics
        from warpd_ros.msg import ControllerStatus, EpisodeEvent, PolicyWeights

        super().__init__(context, "namespace_watcher")
        self.published = {ns: set() for ns in NAMESPACES}
        self.ran = {ns: set() for ns in NAMESPACES}
        self.modes = {ns: None for ns in NAMESPACES}
        self.events = {ns: [] for ns in NAMESPACES}
        for ns in NAMESPACES:
            self.node.create_subscription(PolicyWeights, f"/{ns}/{topics.POLICY_WEIGHTS}",
                                          lambda m, ns=ns: self.published[ns].add(m.policy_id),
                                          qos.policy_swap_qos(depth=50))
            self.node.create_subscription(ControllerStatus, f"/{ns}/{topics.CONTROLLER_STATUS}",
                                          lambda m, ns=ns: self._on_status(ns, m), qos.STATUS_QOS)
            self.node.create_subscription(EpisodeEvent, f"/{ns}/{topics.EPISODE_EVENTS}",
                                          self.events[ns].append, qos.EVENTS_QOS)

    def _on_status(self, ns, msg) -> None:
        self.modes[ns] = status_mode(msg)
        if msg.has_active_policy:
            self.ran[ns].add(msg.active_policy_id)

    def endpoints(self, topic: str) -> tuple[set, set]:
        """({(namespace, node) publishing}, {(namespace, node) subscribing}) on `topic`, this watcher left out."""
        def nodes(infos):
            return {(i.node_namespace, i.node_name) for i in infos if i.node_name != self.node.get_name()}
        return nodes(self.node.get_publishers_info_by_topic(topic)), nodes(self.node.get_subscriptions_info_by_topic(topic))


def _finished(events):
    from warpd_ros.msg import EpisodeEvent

    return [e for e in events if e.event in (EpisodeEvent.SUCCESS, EpisodeEvent.TIMEOUT)]


def test_two_graphs_in_two_namespaces_do_not_cross_talk(graphs):
    from warpd_ros import topics

    with running(Watcher) as w:
        assert w.spin_until(lambda: all(w.modes[ns] == Mode.RUN for ns in NAMESPACES), 90), \
            f"both controllers should run their planner's policies: {w.modes}"
        assert w.spin_until(lambda: all(len(_finished(w.events[ns])) >= 2 for ns in NAMESPACES), 90), \
            {ns: len(_finished(w.events[ns])) for ns in NAMESPACES}

        for ns in NAMESPACES:
            other = next(o for o in NAMESPACES if o != ns)
            # every policy a controller ran came from its own planner, none from the other one (ids this watcher
            # saw published: it may have joined after a planner's first policies, and ids only grow)
            seen_ran = {i for i in w.ran[ns] if i >= min(w.published[ns])}
            assert seen_ran and seen_ran <= w.published[ns], (ns, seen_ran - w.published[ns])
            assert not w.ran[ns] & w.published[other], (ns, w.ran[ns] & w.published[other])
            # the graph's topics connect the graph's own nodes and nobody else's
            wiring = {
                topics.JOINT_COMMANDS: ({"warpd_controller"}, {"warpd_sim"}),
                topics.POLICY_WEIGHTS: ({"warpd_planner"}, {"warpd_controller"}),
                topics.JOINT_STATES: ({"warpd_sim"}, {"warpd_controller", "warpd_planner"}),
            }
            for topic, (publishers, subscribers) in wiring.items():
                pubs, subs = w.endpoints(f"/{ns}/{topic}")
                assert pubs == {(f"/{ns}", n) for n in publishers}, (topic, pubs)
                assert subs == {(f"/{ns}", n) for n in subscribers}, (topic, subs)
            # each sim runs its own seeds: its parameters came from the namespaced config and overrides
            seeds = {e.seed for e in _finished(w.events[ns])}
            assert all(SEEDS[ns] <= s < SEEDS[ns] + 50 for s in seeds), (ns, seeds)
            values = w.get_parameters(f"/{ns}/warpd_sim", ["seed", "episode_start"])
            assert values == {"seed": SEEDS[ns], "episode_start": "controller_runs"}  # sim.yaml's, not the default
            assert w.get_parameters(f"/{ns}/warpd_controller", ["control_rate_hz", "action_limit"]) == \
                {"control_rate_hz": 250.0, "action_limit": 1.5}
