"""Fuzzing the policy-swap path, the long run: malformed PolicyWeights must all be refused, for a counted reason.

The cases and the runs live in warpd_ros/testing/fuzz.py (test/test_fuzz_swap.py runs 10,000 cases
per CI run from the same code, fixed seed); this script runs more and reports them:

    .venv/bin/python -m bench.fuzz_swap --minutes 120          # nightly; writes BENCHMARKS.md
    .venv/bin/python -m bench.fuzz_swap --cases 20000 --no-write
    .venv/bin/python -m bench.fuzz_swap --cases 2000 --dds-per-kind 0    # no ROS graph

After the validation-level cases it sends --dds-per-kind messages of each kind over real DDS to a
controller process (``dds_fuzz``), paced and then as a burst, and reports both."""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from warpd_ros.testing.fuzz import (DDS_ACCELERATION_LIMIT, DDS_VELOCITY_LIMIT, LAST_ID, FuzzStats, dds_fuzz, dds_ok,
                                    fuzz)


def report_section(stats: FuzzStats, seconds: float, command: str, dds: dict | None = None) -> str:
    from bench.report import machine_info

    pct = 100.0 * stats.rejected / stats.cases if stats.cases else 0.0
    reasons = ", ".join(f"{k} {v}" for k, v in stats.reasons.most_common())
    lines = [
        "## Reliability: fuzzing the policy-swap path",
        "",
        f"`{command}` — {machine_info()}.",
        "",
        "Malformed PolicyWeights (warpd_ros/testing/fuzz.py: wrong lengths and layer sizes, absurd sizes, NaN/Inf,"
        " zero/negative scales, stale/future stamps, expired or negative valid_for, unknown activations,"
        " wrong joint names, replayed ids, missing/bad auth tags; one to three faults per message) passed"
        " through the controller's own admission (`admit_policy`: conversion, auth tag, validation, clocks,"
        " replay), against a running policy. Every case must be refused for a reason it allows.",
        "",
        "| cases | refused | refused % | accepted | crashes (other exceptions) | wrong reason "
        "| running policy changed | time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {stats.cases:,} | {stats.rejected:,} | {pct:.2f} % | {stats.accepted} | {stats.crashes} | "
        f"{stats.wrong_reason} | {stats.active_changed} | {seconds:.0f} s |",
        "",
        f"Refusal reasons: {reasons}.",
    ]
    if stats.failures:
        lines += ["", "First failures:", *[f"- {f}" for f in stats.failures]]
    if dds is not None:
        d = dds
        lines += [
            "",
            f"Over real DDS (`dds_fuzz`): the same kinds of messages, all signed with the right key unless the"
            f" signature is the fault, sent to a controller process that requires signatures (limits"
            f" |v| <= {DDS_VELOCITY_LIMIT}, {DDS_ACCELERATION_LIMIT} rad/s^2), first paced 10 ms apart, then again as"
            f" one burst. The policy topic is keep-last 1, so a burst is mostly superseded before it is read;"
            f" what is read is refused.",
            "",
            "| sent (paced + burst) | refused (paced + burst) | accepted | active policy changed | commands published |"
            " non-finite | beyond limits | equal to the running policy's |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {d['paced_sent']} + {d['burst_sent']} | {d['paced_refused']} + {d['burst_refused']} | "
            f"{d['accepted']} | "
            f"{'no' if d['active_policy_ids'] == [LAST_ID] else d['active_policy_ids']} | {d['commands']} | "
            f"{d['nonfinite_commands']} | {d['commands_beyond_limits']} | {100 * d['running_policy_share']:.1f} % |",
            "",
            "Refusal reasons there: " + ", ".join(f"{k} {v}" for k, v in sorted(d["reasons"].items(),
                                                                            key=lambda kv: -kv[1])) + ".",
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=None, help="stop after this many cases (default: 10,000 "
                        "unless --minutes is given)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this many minutes")
    parser.add_argument("--seed", type=int, default=None, help="first Hypothesis seed (default: time-based)")
    parser.add_argument("--chunk", type=int, default=2000, help="cases per Hypothesis run (one seed each)")
    parser.add_argument("--dds-per-kind", type=int, default=20,
                        help="messages of each kind sent over real DDS to a controller process afterwards "
                             "(default 20, i.e. 320 paced + 320 in a burst; 0 = skip; needs ROS)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    from tqdm import tqdm

    limit = args.cases if args.cases is not None else (None if args.minutes else 10_000)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else math.inf
    first_seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    stats, start, k = FuzzStats(), time.monotonic(), 0
    bar = tqdm(total=limit, unit="case", desc="fuzzing")
    try:
        while time.monotonic() < deadline and (limit is None or stats.cases < limit):
            n = args.chunk if limit is None else min(args.chunk, limit - stats.cases)
            done = stats.cases
            fuzz(n, first_seed + k, stats=stats)
            bar.update(stats.cases - done)
            bar.set_postfix(crashes=stats.crashes, accepted=stats.accepted, wrong=stats.wrong_reason)
            k += 1
    except KeyboardInterrupt:
        print("interrupted: reporting what ran so far")
    finally:
        bar.close()
    seconds = time.monotonic() - start
    dds = None
    if args.dds_per_kind > 0:
        print(f"over DDS: {args.dds_per_kind} messages per kind to a controller process ...")
        with tempfile.TemporaryDirectory() as workdir:
            dds = dds_fuzz(args.dds_per_kind, Path(workdir), seed_value=first_seed)
    command = "python -m bench.fuzz_swap " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report_section(stats, seconds, command.strip() + f" (seeds {first_seed}..{first_seed + k - 1})", dds)
    print(text)
    if not args.no_write:
        from bench.report import update_section

        print(f"wrote {update_section('fuzz_swap', text)}")
    return 0 if stats.ok() and (dds is None or dds_ok(dds)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
