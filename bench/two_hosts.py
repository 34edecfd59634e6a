"""Two hosts over DDS: the sim graph with the planner on one host and sim + controller on another,
beside the same graph on one host.

The two hosts are network namespaces joined by a veth pair (warpd_ros.testing.netns): Fast DDS
UDPv4 only between them, no shared memory, unicast discovery to the two addresses. Each layout
runs the same seeds (sim and planner); hil-check's recorder, on the controller's host, measures
swap latency (policy stamp -> first command equal to that policy's output), plan-to-command age
(how old the running policy is at each command) and state -> command latency; EpisodeEvents give
the success of the first --episodes episodes. "one host, UDP only" runs all nodes in one namespace
with the same UDP-only profile: what the transport costs without the split. Needs root (ip netns).

    sudo .venv/bin/python -m bench.two_hosts                    # 20 episodes per layout; BENCHMARKS.md
    sudo .venv/bin/python -m bench.two_hosts --episodes 3 --duration 5 --out /tmp/two_hosts.md
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench.report import machine_info, update_section
from warpd_ros.testing import netns, two_hosts
from warpd_ros.testing.processes import use_private_domain

SECTION = "two_hosts"
LAYOUTS = ("one_host", "two_hosts", "one_host_udp")


def run_layout(kind: str, args, domain_id: int) -> dict:
    """Start the graph in layout `kind`, record, stop; the recorder's numbers plus the veth counters."""
    workdir = two_hosts.workdir(f"warpd-bench-{kind}-")
    with netns.veth_pair() if kind != "one_host" else _no_pair() as pair:
        layout = {"one_host": lambda: two_hosts.one_host(), "two_hosts": lambda: two_hosts.two_hosts(pair),
                  "one_host_udp": lambda: two_hosts.one_host_udp(pair)}[kind]()
        placement = two_hosts.Placement(layout, workdir, domain_id)
        before = netns.counters(pair.a) if pair else None
        procs = two_hosts.start_graph(placement, seed=args.seed)
        try:
            result = two_hosts.record(placement, args.duration, args.episodes)
        except RuntimeError as exc:
            raise SystemExit(f"{layout.name}: {exc}\n{two_hosts.logs(workdir)}")
        finally:
            two_hosts.stop_graph(procs)
        if kind == "two_hosts":
            result["veth_a"] = netns.difference(netns.counters(pair.a), before)
    result["layout"], result["transport"] = layout.name, layout.transport
    result["load"] = os.getloadavg()[0]  # other work on the machine shows in every number here
    first = sorted(result["episodes"], key=lambda e: e["episode"])[:args.episodes]
    result["first_episodes"] = first
    print(f"{layout.name}: {_summary(result)}", flush=True)
    return result


class _no_pair:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _ms(stats: dict) -> str:
    return "-" if not stats.get("n") else f"{stats['p50']:.1f} / {stats['p99']:.1f}"


def _summary(r: dict) -> str:
    ok = sum(e["success"] for e in r["first_episodes"])
    return (f"swap latency p50/p99 {_ms(r['swap_latency_ms'])} ms ({r['swaps']['measured']}/{r['swaps']['policies_seen']}"
            f" swaps), plan-to-command age {_ms(r['plan_to_command_age_ms'])} ms, "
            f"success {ok}/{len(r['first_episodes'])}")


def section(results: list[dict], args) -> str:
    cmd = f"python -m bench.two_hosts --episodes {args.episodes} --duration {args.duration:g} --seed {args.seed}"
    lines = ["## Two hosts over DDS: planner on one host, sim + controller on another", "",
             f"`{cmd}` on {machine_info()}.", "",
             "Host A runs warpd_planner; host B runs warpd_sim, warpd_controller and the recorder (hil-check's, "
             "on the controller's host). The hosts are two network namespaces joined by a veth pair "
             "(`warpd_ros/testing/netns.py`): Fast DDS with its builtin transports off, one UDPv4 transport "
             "allowed on the host's veth address (and loopback, for nodes on the same host), discovery by "
             "unicast to the two addresses only. Same config/sim.yaml, same seeds (sim episodes "
             f"{args.seed}..{args.seed + args.episodes - 1}, planner noise seed {args.seed}) in every layout. "
             "Swap latency: a policy's stamp -> the first command received on host B equal to what that policy "
             "computes (hil-check's swap matching). Plan-to-command age: per command, the time since the stamp "
             "of the policy that computed it (replans every 0.32 s, so ~half of that is the floor). Both "
             "hosts share one clock here; real hosts need synchronised clocks (chrony/PTP) for these stamps, "
             "and the controller's max_clock_skew_s check relies on it too.", "",
             "| layout | transport | swap latency p50 / p99, ms (swaps measured) | policy received -> active p50 / p99, ms "
             "| plan-to-command age p50 / p99, ms | state -> command p50 / p99, ms | episode success | veth A->B / B->A |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ok = sum(e["success"] for e in r["first_episodes"])
        n = len(r["first_episodes"])
        veth = r.get("veth_a")
        traffic = "-" if veth is None else f"{veth['tx_bytes'] / 1e6:.1f} MB / {veth['rx_bytes'] / 1e6:.1f} MB"
        lines.append(f"| {r['layout']} | {r['transport']} | {_ms(r['swap_latency_ms'])} "
                     f"({r['swaps']['measured']}/{r['swaps']['policies_seen']}) | {_ms(r['receive_to_switch_ms'])} "
                     f"| {_ms(r['plan_to_command_age_ms'])} | {_ms(r['state_to_command_ms'])} "
                     f"| {ok}/{n} ({100.0 * ok / max(n, 1):.0f} %) | {traffic} |")
    windows = ", ".join(f"{r['layout']} {r['window_s']:.0f} s (load average {r['load']:.1f})" for r in results)
    size = max(r["policy_bytes"] for r in results)
    lines += ["", f"Measurement windows: {windows}. Policies are {size / 1000:.1f} kB of weights each "
              "(reach_around's [8, 64, 64, 3] MLP). \"policy received -> active\" is from the policy's arrival "
              "on host B to its first command: the controller's part, without the wire. The machine is shared: "
              "the load average (1 min, at the end of each layout's run) shows how much else ran."]
    notes = sorted({n for r in results for n in r["notes"]})
    if notes:
        lines += ["", "Recorder notes: " + "; ".join(notes)]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20,
                        help="episodes whose success is counted; the window lasts until they ended (default 20)")
    parser.add_argument("--duration", type=float, default=30.0, help="shortest measurement window, s (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="sim seed of episode 0 and the planner's noise seed")
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help=f"comma-separated, in order (default {','.join(LAYOUTS)})")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherited, else private)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead of BENCHMARKS.md")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.layouts.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in LAYOUTS]
    if unknown or args.episodes < 1 or args.duration <= 0:
        parser.error(f"unknown layout(s) {unknown}; known: {', '.join(LAYOUTS)}" if unknown
                     else "--episodes must be >= 1 and --duration > 0")
    if any(k != "one_host" for k in kinds):
        reason = netns.netns_unavailable()
        if reason:
            print(f"bench.two_hosts: cannot run the namespace layouts here: {reason}", file=sys.stderr)
            return 1
    env = use_private_domain(args.domain_id)
    domain_id = int(env["ROS_DOMAIN_ID"])
    results = [run_layout(kind, args, domain_id) for kind in kinds]
    written = update_section(SECTION, section(results, args), **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
