"""Two hosts over DDS: the sim graph with the planner on one host and sim + controller on another,
beside the same graph on one host.

The two hosts are network namespaces joined by a veth pair (warpd_ros.testing.netns): Fast DDS
UDPv4 only between them, no shared memory, unicast discovery to the two addresses. Each layout
runs the same seeds (sim and planner); hil-check's recorder, on the controller's host, measures
swap latency (policy stamp -> first command equal to that policy's output), plan-to-command age
(how old the running policy is at each command) and state -> command latency; EpisodeEvents give
the success of the first --episodes episodes. "one host, UDP only" runs all nodes in one namespace
with the same UDP-only profile: what the transport costs without the split. Needs root (ip netns).

    sudo .venv/bin/python -m bench.two_hosts                    # 2 rounds x 3 layouts, 10 episodes each
    sudo .venv/bin/python -m bench.two_hosts --rounds 1 --episodes 3 --duration 5 --out /tmp/two_hosts.md
"""
from __future__ import annotations

import argparse
import os
import shutil
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
    shutil.rmtree(workdir, ignore_errors=True)  # kept only when a run fails (its logs are printed)
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


def _row(name: str, r: dict, swap: dict, received: dict, age: dict, state: str, ok: int, n: int, seen: str) -> str:
    veth = r.get("veth_a")
    traffic = "-" if veth is None else f"{veth['tx_bytes'] / 1e6:.1f} MB / {veth['rx_bytes'] / 1e6:.1f} MB"
    return (f"| {name} | {_ms(swap)} ({seen}) | {_ms(received)} | {_ms(age)} | {state} "
            f"| {ok}/{n} ({100.0 * ok / max(n, 1):.0f} %) | {traffic} |")


def pooled(runs: list[dict]) -> dict:
    """One layout's runs together: the percentiles of all their swaps and commands, the episodes summed."""
    from warpd_ros.hil_check.stats import percentiles

    out = {key: percentiles([v for r in runs for v in r["raw"][key]])
           for key in ("swap_latency_ms", "receive_to_switch_ms", "plan_to_command_age_ms")}
    out["measured"] = sum(r["swaps"]["measured"] for r in runs)
    out["seen"] = sum(r["swaps"]["policies_seen"] for r in runs)
    out["ok"] = sum(e["success"] for r in runs for e in r["first_episodes"])
    out["n"] = sum(len(r["first_episodes"]) for r in runs)
    return out


def section(results: list[dict], args) -> str:
    cmd = (f"python -m bench.two_hosts --rounds {args.rounds} --episodes {args.episodes} "
           f"--duration {args.duration:g} --seed {args.seed}")
    lines = ["## Two hosts over DDS: planner on one host, sim + controller on another", "",
             f"`{cmd}` on {machine_info()}.", "",
             "Host A runs warpd_planner; host B runs warpd_sim, warpd_controller and the recorder (hil-check's, "
             "on the controller's host). The hosts are two network namespaces joined by a veth pair "
             "(`warpd_ros/testing/netns.py`): Fast DDS with its builtin transports off, one UDPv4 transport "
             "allowed on the host's veth address (and loopback, for nodes on the same host), discovery by "
             "unicast to the two addresses only. Same config/sim.yaml, same seeds (sim episodes "
             f"{args.seed}..{args.seed + args.episodes - 1}, planner noise seed {args.seed}) in every run; "
             "the rounds alternate the layouts, so other load on the machine falls on all of them. "
             "Swap latency: a policy's stamp -> the first command received on host B equal to what that policy "
             "computes (hil-check's swap matching). Policy received -> active: from its arrival on host B to "
             "that command, the controller's part without the wire. Plan-to-command age: per command, the time "
             "since the stamp of the policy that computed it (replans every 0.32 s, so ~160 ms is the floor). "
             "Both hosts share one clock here; real hosts need synchronised clocks (chrony/PTP) for these "
             "stamps, and the controller's max_clock_skew_s check relies on it too.", "",
             "All runs of each layout together:", "",
             "| layout | swap latency p50 / p99, ms (measured/seen) | policy received -> active p50 / p99, ms "
             "| plan-to-command age p50 / p99, ms | state -> command | episode success | veth A->B / B->A |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    layouts = list(dict.fromkeys(r["layout"] for r in results))
    for name in layouts:
        runs = [r for r in results if r["layout"] == name]
        p = pooled(runs)
        veths = [r["veth_a"] for r in runs if "veth_a" in r]
        total = {"veth_a": {k: sum(v[k] for v in veths) for k in ("tx_bytes", "rx_bytes")}} if veths else {}
        lines.append(_row(f"**{name}**", total, p["swap_latency_ms"], p["receive_to_switch_ms"],
                          p["plan_to_command_age_ms"], "per run below", p["ok"], p["n"],
                          f"{p['measured']}/{p['seen']}"))
    by = {name: pooled([r for r in results if r["layout"] == name]) for name in layouts}
    if "one host" in by and "two hosts" in by:
        one, two = by["one host"], by["two hosts"]
        lines += ["", f"Split vs one host, pooled p50: swap latency {two['swap_latency_ms']['p50'] - one['swap_latency_ms']['p50']:+.1f} ms, "
                  f"policy received -> active {two['receive_to_switch_ms']['p50'] - one['receive_to_switch_ms']['p50']:+.1f} ms, "
                  f"plan-to-command age {two['plan_to_command_age_ms']['p50'] - one['plan_to_command_age_ms']['p50']:+.1f} ms."]
    lines += ["", "Transports: " + "; ".join(f"{name}: {next(r['transport'] for r in results if r['layout'] == name)}"
                                             for name in layouts) + ".", "",
              "Each run, in the order they ran (state -> command: p50 / p99 ms; load: the 1-min load average at "
              "its end, other work on this shared machine):", "",
              "| round | layout | swap latency p50 / p99, ms | policy received -> active | plan-to-command age "
              "| state -> command | episode success | veth A->B / B->A | window | load |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ok = sum(e["success"] for e in r["first_episodes"])
        row = _row(r["layout"], r, r["swap_latency_ms"], r["receive_to_switch_ms"], r["plan_to_command_age_ms"],
                   _ms(r["state_to_command_ms"]), ok, len(r["first_episodes"]),
                   f"{r['swaps']['measured']}/{r['swaps']['policies_seen']}")
        lines.append(f"| {r['round']} {row} {r['window_s']:.0f} s | {r['load']:.1f} |")
    size = max(r["policy_bytes"] for r in results)
    lines += ["", f"Policies are {size / 1000:.1f} kB of weights each (reach_around's [8, 64, 64, 3] MLP); the veth "
              "bytes are the whole graph's traffic over the run, discovery included."]
    kinds: dict[str, int] = {}
    for r in results:
        for n in {" ".join(n.split()[:5]) for n in r["notes"]}:
            kinds[n] = kinds.get(n, 0) + 1
    if kinds:
        lines += ["", "hil-check's notes (its spans are left out of its stream numbers): "
                  + "; ".join(f"\"{k} ...\" in {c} of {len(results)} runs" for k, c in sorted(kinds.items()))]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="runs of every layout, alternating (default 2)")
    parser.add_argument("--episodes", type=int, default=10,
                        help="episodes whose success is counted; the window lasts until they ended (default 10)")
    parser.add_argument("--duration", type=float, default=20.0, help="shortest measurement window, s (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="sim seed of episode 0 and the planner's noise seed")
    parser.add_argument("--layouts", default=",".join(LAYOUTS),
                        help=f"comma-separated, in order (default {','.join(LAYOUTS)})")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherited, else private)")
    parser.add_argument("--out", type=Path, help="write the section to this file instead of BENCHMARKS.md")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.layouts.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in LAYOUTS]
    if unknown or args.episodes < 1 or args.duration <= 0 or args.rounds < 1:
        parser.error(f"unknown layout(s) {unknown}; known: {', '.join(LAYOUTS)}" if unknown
                     else "--rounds and --episodes must be >= 1, --duration > 0")
    if any(k != "one_host" for k in kinds):
        reason = netns.netns_unavailable()
        if reason:
            print(f"bench.two_hosts: cannot run the namespace layouts here: {reason}", file=sys.stderr)
            return 1
    env = use_private_domain(args.domain_id)
    domain_id = int(env["ROS_DOMAIN_ID"])
    results = []
    for round_ in range(1, args.rounds + 1):
        for kind in kinds:
            results.append(run_layout(kind, args, domain_id))
            results[-1]["round"] = round_
    written = update_section(SECTION, section(results, args), **({"path": args.out} if args.out else {}))
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
