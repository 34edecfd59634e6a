"""Two "hosts" on one machine: network namespaces joined by a veth pair, and Fast DDS over UDP between them.

How users outgrow one machine (planner on one host, sim + controller on another) is tested and
benchmarked here without a second machine: each namespace has only `lo` and one end of the veth,
with a private /30. Nodes run in a namespace through ``ip netns exec``. Every participant gets a
Fast DDS XML profile (:func:`write_profile`) that turns the builtin transports off (no shared
memory, which would otherwise cross namespaces through /dev/shm), uses one UDPv4 transport allowed on
its host's veth address and loopback (Fast DDS 3 delivers to nodes on its own host only through
loopback), and finds the others by unicast to the two addresses only (no multicast).
Then the veth's byte counters (:func:`counters`) prove where the traffic went.

Needs root (CAP_NET_ADMIN) and ``ip``; :func:`netns_unavailable` says why not, for a skip. The
namespaces are removed however the ``with veth_pair()`` block ends; ones left by a killed run (their
creator's pid is gone) are removed by the next run.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "warpd2h"  # namespaces are warpd2h-<pid>-<n>-a/-b; veth ends w2h<n><pid>a/b
SUBNET = "10.213"  # 10.213.<k>.1/30 and .2: private, and only ever inside our namespaces
PARTICIPANTS_PER_HOST = 12  # unicast discovery goes to the first this many participant ports of each address
_counter = 0


@dataclass(frozen=True)
class Host:
    """One side of the pair: its namespace, its veth end and address, and the other side's address."""

    netns: str
    ifname: str
    address: str
    peer_address: str

    def wrap(self, argv: list[str], env: dict | None = None) -> list[str]:
        """`argv` run inside this host's namespace (``ip netns exec``), with `env` settings (``env K=V``)."""
        pre = ["env", "-u", "FASTDDS_BUILTIN_TRANSPORTS", "-u", "ROS_STATIC_PEERS",
               *(f"{k}={v}" for k, v in (env or {}).items())]
        return ["ip", "netns", "exec", self.netns, *pre, *argv]


@dataclass(frozen=True)
class VethPair:
    a: Host
    b: Host

    @property
    def hosts(self) -> tuple[Host, Host]:
        return self.a, self.b


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


@functools.lru_cache(maxsize=1)
def netns_unavailable() -> str | None:
    """Why two namespaces with a veth pair cannot be made here (a pytest skip reason), or None."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux only (this is {sys.platform})"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    try:
        with veth_pair():
            pass
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return f"cannot create network namespaces and a veth pair here: {detail.strip()}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces of this kind whose creating process is gone (a run that was SIGKILLed)."""
    removed = []
    for name in list_namespaces():
        parts = name.split("-")
        if len(parts) == 4 and parts[0] == PREFIX and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            if _delete(name):
                removed.append(name)
    return removed


def _delete(name: str) -> bool:
    """Kill what still runs in namespace `name` (only our nodes run there), then delete it."""
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    return _ip("netns", "delete", name, check=False).returncode == 0


def list_namespaces() -> list[str]:
    """Names of the network namespaces of this kind (``ip netns list``) now present."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX + "-")]


@contextlib.contextmanager
def veth_pair():
    """Two fresh namespaces joined by a veth pair (10.213.k.1/30 <-> .2), `lo` up, IPv6 off (so the
    counters see DDS only); yields a :class:`VethPair`. Both namespaces (and with them the veth) are
    deleted on exit, also on an error or Ctrl-C (a process still running in one is killed first)."""
    global _counter
    _counter += 1
    remove_stale()
    pid, n = os.getpid(), _counter
    k = (pid + n) % 250 + 1
    names = (f"{PREFIX}-{pid}-{n}-a", f"{PREFIX}-{pid}-{n}-b")
    ifnames = (f"w2h{n % 100}{pid}a"[:15], f"w2h{n % 100}{pid}b"[:15])
    addresses = (f"{SUBNET}.{k}.1", f"{SUBNET}.{k}.2")
    created = []
    try:
        for name in names:
            _ip("netns", "add", name)
            created.append(name)
        # created inside namespace a, so nothing of it ever appears in the caller's namespace
        _ip("-n", names[0], "link", "add", ifnames[0], "type", "veth", "peer", "name", ifnames[1], "netns", names[1])
        for name, ifname, address in zip(names, ifnames, addresses):
            _ip("netns", "exec", name, "sysctl", "-q", "-w", f"net.ipv6.conf.{ifname}.disable_ipv6=1", check=False)
            _ip("-n", name, "addr", "add", f"{address}/30", "dev", ifname)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", name, "link", "set", ifname, "up")
        _wait_running(names, ifnames)
        a = Host(names[0], ifnames[0], addresses[0], addresses[1])
        b = Host(names[1], ifnames[1], addresses[1], addresses[0])
        yield VethPair(a, b)
    finally:
        for name in reversed(created):
            _delete(name)


def _wait_running(names, ifnames, timeout: float = 5.0) -> None:
    """Wait for both veth ends to be operationally up: the kernel reports carrier up to a second after
    `link set up`, and Fast DDS, started before that, drops its only allowed interface for good."""
    deadline = time.monotonic() + timeout
    while True:
        states = [json.loads(_ip("-n", n, "-j", "link", "show", "dev", i).stdout)[0].get("operstate")
                  for n, i in zip(names, ifnames)]
        if all(s == "UP" for s in states):
            return
        if time.monotonic() > deadline:
            raise OSError(f"veth pair not up after {timeout:g} s (operstate {states})")
        time.sleep(0.02)


def counters(host: Host) -> dict:
    """The veth end's counters in its namespace: tx/rx bytes and packets."""
    out = _ip("-n", host.netns, "-s", "-j", "link", "show", "dev", host.ifname).stdout
    stats = json.loads(out)[0]["stats64"]
    return {"tx_bytes": stats["tx"]["bytes"], "rx_bytes": stats["rx"]["bytes"],
            "tx_packets": stats["tx"]["packets"], "rx_packets": stats["rx"]["packets"]}


def visible_here(ifname: str) -> bool:
    """Whether this process's own namespace has an interface `ifname`."""
    return _ip("link", "show", "dev", ifname, check=False).returncode == 0


def difference(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in after}


# ---------------------------------------------------------------------------------------- Fast DDS

def discovery_ports(domain_id: int, participants: int = PARTICIPANTS_PER_HOST) -> list[int]:
    """Unicast metatraffic ports of participants 0..n-1 of `domain_id` (RTPS 9.6.1.1: 7400 + 250 d + 10 + 2 p)."""
    return [7400 + 250 * domain_id + 10 + 2 * p for p in range(participants)]


def profile_xml(host_address: str, peers: list[str], domain_id: int) -> str:
    """A Fast DDS profile: builtin transports (SHM + UDP on every interface) off, one UDPv4 transport on
    `host_address` and loopback only, discovery by unicast to `peers` (the participant ports of `domain_id`), and a
    unicast metatraffic locator, which keeps Fast DDS from adding its default multicast one."""
    locators = "\n".join(
        f"            <locator><udpv4><address>{peer}</address><port>{port}</port></udpv4></locator>"
        for peer in peers for port in discovery_ports(domain_id))
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- written by warpd_ros.testing.netns: UDPv4 on {host_address} only, unicast discovery to {', '.join(peers)} -->
<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
<profiles>
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>warpd_udp_{host_address.replace('.', '_')}</transport_id>
      <type>UDPv4</type>
      <interfaceWhiteList><address>{host_address}</address><address>127.0.0.1</address></interfaceWhiteList>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="warpd_two_hosts" is_default_profile="true">
    <rtps>
      <useBuiltinTransports>false</useBuiltinTransports>
      <userTransports><transport_id>warpd_udp_{host_address.replace('.', '_')}</transport_id></userTransports>
      <builtin>
        <metatrafficUnicastLocatorList><locator/></metatrafficUnicastLocatorList>
        <initialPeersList>
{locators}
        </initialPeersList>
      </builtin>
    </rtps>
  </participant>
</profiles>
</dds>
"""


def write_profile(host: Host, directory: Path, domain_id: int) -> Path:
    """The profile of `host` (peers: both addresses, so participants on the same host find each other too)."""
    path = Path(directory) / f"fastdds_{host.netns}.xml"
    path.write_text(profile_xml(host.address, [host.address, host.peer_address], domain_id))
    return path


def profiles_variables() -> tuple[str, ...]:
    """The variable(s) naming the default XML profile for this interpreter's Fast DDS: FASTDDS_... for
    Fast DDS 3 (Kilted), FASTRTPS_... for Fast DDS 2 (Jazzy), which reads no other. Both when unknown:
    it works, but the Kilted rmw then warns that the old name is deprecated."""
    from importlib import metadata

    for package, variable in (("ros-fastdds", "FASTDDS_DEFAULT_PROFILES_FILE"),
                              ("ros-fastrtps", "FASTRTPS_DEFAULT_PROFILES_FILE")):
        try:
            metadata.version(package)
            return (variable,)
        except metadata.PackageNotFoundError:
            pass
    distro = os.environ.get("ROS_DISTRO", "")  # a full ROS install's setup.bash sets it
    if distro in ("humble", "jazzy"):
        return ("FASTRTPS_DEFAULT_PROFILES_FILE",)
    if distro:
        return ("FASTDDS_DEFAULT_PROFILES_FILE",)
    return ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def host_environment(profile: Path, domain_id: int) -> dict:
    """Settings for a node on a namespace host, on top of the usual (loopback) test environment.

    The discovery range stays LOCALHOST: rmw_fastrtps then clears the multicast locators and adds
    127.0.0.1 as a peer, which the veth-only transport cannot reach; transports and peers are the
    profile's. (ROS_STATIC_PEERS alone, without the profile, keeps the builtin transports.)
    RMW_FASTRTPS_USE_QOS_FROM_XML is not needed: rmw reads the participant profile without it."""
    env = {variable: str(profile) for variable in profiles_variables()}
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    return env
