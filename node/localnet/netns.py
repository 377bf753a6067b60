"""Network namespaces for the e2e suite and ``localnet up --netns`` (root only).

Topology: one namespace per node. A veth pair joins each namespace to one Linux
bridge: the inner end, ``eth0``, holds 10.77.S.(i+1)/24; the outer end is a bridge
port. The bridge holds 10.77.S.254 in the root namespace, so the runner reaches every
node's HTTP API over it. There is no uplink and no default route: no packet leaves
the test subnet, which is ours alone.

Perturbations at the network level:
- disconnect: the outer veth end goes down (a pulled cable; sockets survive);
- partition: blackhole routes in each namespace towards every node of the other side;
- latency: ``tc netem`` on ``eth0``; on a kernel without sch_netem, a userspace delay
  line (delayline.py) through a TAP pair that carries the node's egress instead.

Every name carries a tag made from the runner's pid, so ``cleanup_stale`` can remove
what a killed runner left behind without touching a live run's devices.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

from node.localnet.errors import LocalnetError

PREFIX = "vsn"
IFACE = "eth0"
BRIDGE_HOST = 254
MAX_NODES = 200
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class NetnsError(LocalnetError):
    """A namespace, link or qdisc command failed; the message names the command."""


def is_root() -> bool:
    return os.geteuid() == 0


def require_root(what: str = "--netns") -> None:
    if not is_root():
        raise LocalnetError(f"{what} needs root (it creates network namespaces and a bridge); "
                       "run as root, or use the loopback scenarios")


def compute_tag(pid: int) -> str:
    """The pid in base 36 (at most 5 characters below 2^26), so names fit IFNAMSIZ."""
    digits = ""
    while True:
        pid, rest = divmod(pid, 36)
        digits = _BASE36[rest] + digits
        if pid == 0:
            return digits


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise NetnsError(f"{cmd[0]} not found: install iproute2") from None
    except subprocess.TimeoutExpired:
        raise NetnsError(f"{' '.join(cmd)}: no answer in 30 s") from None
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
    return done


def list_netns() -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def list_links() -> list[str]:
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    return [m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete namespaces and links of runs whose runner process is gone."""
    removed = []
    pattern = re.compile(rf"^{PREFIX}([0-9a-z]+)(n|h|br|dr)\d*$")
    for name in list_netns() + list_links():
        match = pattern.match(name)
        if match is None or _pid_alive(int(match.group(1), 36)):
            continue
        cmd = ["ip", "netns", "del", name] if name in list_netns() else ["ip", "link", "del", name]
        if _run(cmd, check=False).returncode == 0:
            removed.append(name)
    return removed


def pick_subnet() -> int:
    """The first 10.77.S.0/24 that no interface of this machine uses."""
    used = _run(["ip", "-o", "-4", "addr", "show"], check=False).stdout
    for s in range(256):
        if f" 10.77.{s}." not in used:
            return s
    raise NetnsError("every 10.77.S.0/24 test subnet is in use")


@dataclass
class Fabric:
    """The namespaces, veths and bridge of one run; ``teardown`` always undoes them."""

    count: int
    tag: str = field(default_factory=lambda: compute_tag(os.getpid()))
    subnet: int = -1
    created: bool = False
    delay_lines: dict[int, subprocess.Popen] = field(default_factory=dict)
    netem: set[int] = field(default_factory=set)
    partitioned: list[tuple[int, str]] = field(default_factory=list)

    def ns(self, i: int) -> str:
        return f"{PREFIX}{self.tag}n{i}"

    def host_if(self, i: int) -> str:
        return f"{PREFIX}{self.tag}h{i}"

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}br"

    def ip(self, i: int) -> str:
        return f"10.77.{self.subnet}.{i + 1}"

    @property
    def gateway(self) -> str:
        return f"10.77.{self.subnet}.{BRIDGE_HOST}"

    def exec_prefix(self, i: int) -> list[str]:
        """Prefix a command with this to run it inside node i's namespace."""
        return ["ip", "netns", "exec", self.ns(i)]

    def _in_ns(self, i: int, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(self.exec_prefix(i) + list(cmd), check=check)

    def setup(self) -> None:
        require_root()
        if not 1 <= self.count <= MAX_NODES:
            raise NetnsError(f"a fabric holds 1..{MAX_NODES} nodes")
        cleanup_stale()
        if self.subnet < 0:
            self.subnet = pick_subnet()
        self.created = True
        _run(["ip", "link", "add", self.bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])
        for i in range(self.count):
            self._add_node(i)

    def _add_node(self, i: int) -> None:
        ns, outer, inner = self.ns(i), self.host_if(i), f"{PREFIX}{self.tag}i{i}"
        _run(["ip", "netns", "add", ns])
        _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
        _run(["ip", "link", "set", inner, "netns", ns])
        _run(["ip", "link", "set", outer, "master", self.bridge])
        _run(["ip", "link", "set", outer, "up"])
        self._in_ns(i, "ip", "link", "set", inner, "name", IFACE)
        self._in_ns(i, "ip", "addr", "add", f"{self.ip(i)}/24", "dev", IFACE)
        self._in_ns(i, "ip", "link", "set", IFACE, "up")
        self._in_ns(i, "ip", "link", "set", "lo", "up")

    def teardown(self) -> list[str]:
        """Remove everything this fabric made; never raises, returns what it could not remove."""
        problems = []
        for i in sorted(self.delay_lines):
            self._stop_delay_line(i)
        if not self.created:
            return problems
        for i in range(self.count):
            for cmd in (["ip", "link", "del", self.host_if(i)], ["ip", "netns", "del", self.ns(i)]):
                if _run(cmd, check=False).returncode != 0 and self._exists(cmd[-1]):
                    problems.append(" ".join(cmd))
        if _run(["ip", "link", "del", self.bridge], check=False).returncode != 0 and self._exists(self.bridge):
            problems.append(f"ip link del {self.bridge}")
        self.created = False
        return problems

    def _exists(self, name: str) -> bool:
        return name in list_netns() or name in list_links()

    # ---- perturbations ----

    def set_link(self, i: int, up: bool) -> None:
        """Disconnect: the outer end of node i's veth goes down (or back up)."""
        _run(["ip", "link", "set", self.host_if(i), "up" if up else "down"])

    def set_partition(self, sides: list[list[int]]) -> None:
        """Blackhole routes from every node to every node of another side."""
        for a, side in enumerate(sides):
            for b, other in enumerate(sides):
                if a == b:
                    continue
                for i in side:
                    for j in other:
                        self._in_ns(i, "ip", "route", "add", "blackhole", f"{self.ip(j)}/32")
                        self.partitioned.append((i, f"{self.ip(j)}/32"))

    def heal_partition(self) -> None:
        for i, dst in self.partitioned:
            self._in_ns(i, "ip", "route", "del", "blackhole", dst, check=False)
        self.partitioned.clear()

    def add_latency(self, i: int, delay_ms: int, jitter_ms: int, seed: int = 1) -> str:
        """Delay everything node i sends; returns the mechanism used ("netem" or "delayline")."""
        done = self._in_ns(i, "tc", "qdisc", "add", "dev", IFACE, "root", "netem", "delay",
                           f"{delay_ms}ms", f"{jitter_ms}ms", check=False)
        if done.returncode == 0:
            self.netem.add(i)
            return "netem"
        if "unknown" not in done.stderr.lower() and "not found" not in done.stderr.lower():
            raise NetnsError(f"tc netem on {self.ns(i)}: {done.stderr.strip()}")
        self._start_delay_line(i, delay_ms, jitter_ms, seed)
        return "delayline"

    def remove_latency(self, i: int) -> None:
        if i in self.netem:
            self._in_ns(i, "tc", "qdisc", "del", "dev", IFACE, "root", check=False)
            self.netem.discard(i)
        if i in self.delay_lines:
            self._stop_delay_line(i)

    def _start_delay_line(self, i: int, delay_ms: int, jitter_ms: int, seed: int) -> None:
        root_tap, ns_tap = f"{PREFIX}{self.tag}dr{i}", "vsndelay"
        proc = subprocess.Popen(
            [sys.executable, "-m", "node.localnet.delayline", "--netns", self.ns(i), "--root-tap", root_tap,
             "--ns-tap", ns_tap, "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
             "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.stdout is None or proc.stdout.readline().strip() != b"ready":
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip()
            raise NetnsError(f"delay line for {self.ns(i)} did not start: {err[-200:]}")
        self.delay_lines[i] = proc
        mac = self._in_ns(i, "cat", f"/sys/class/net/{IFACE}/address").stdout.strip()
        _run(["ip", "link", "set", root_tap, "master", self.bridge])
        _run(["ip", "link", "set", root_tap, "up"])
        # Same MAC as eth0: peers' ARP entries stay right whichever way a frame comes in.
        self._in_ns(i, "ip", "link", "set", ns_tap, "address", mac)
        self._in_ns(i, "ip", "link", "set", ns_tap, "up")
        self._in_ns(i, "ip", "route", "replace", f"10.77.{self.subnet}.0/24", "dev", ns_tap,
                    "src", self.ip(i))

    def _stop_delay_line(self, i: int) -> None:
        proc = self.delay_lines.pop(i)
        if self.created:
            self._in_ns(i, "ip", "route", "replace", f"10.77.{self.subnet}.0/24", "dev", IFACE,
                        "proto", "kernel", "scope", "link", "src", self.ip(i), check=False)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
