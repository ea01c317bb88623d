"""Clusters: groups of nodes x devices x type, and the links between devices.

    1x4xcpu               one node, 4 cpu ranks
    2x8xH100              2 nodes of 8 H100s
    1x8xA100+1x8xV100     heterogeneous: groups in device order

Devices are numbered node-major: group by group, node by node, device by device.
A mesh lays its axes major -> minor over that order (device index = row-major position,
or its entry in the mesh's device_ids), so whether an axis spans nodes follows from the
mesh shape: in a 2x8 mesh on 2x8xH100 the major axis crosses nodes, the minor does not.

Links (alpha-beta: latency per ring step, bandwidth per device and direction):
    intra-node   the device's own interconnect (devices.py): NVLink4 450 GB/s (H100,
                 H200 SXM), NVLink3 300 GB/s (A100), NVLink2 150 GB/s (V100), PCIe4
                 32 GB/s (L4), Infinity Fabric 448 GB/s (MI300X); cpu: MPI over shared
                 memory, measured by `rhino calibrate`
    inter-node   GPUs: InfiniBand NDR 400 Gb/s = 50 GB/s per GPU (one NIC per GPU, as in
                 DGX/HGX nodes), 5 us; cpu: 10 Gb/s Ethernet = 1.25 GB/s, 50 us (TCP)
A JSON file overrides them (`--cluster FILE.json`):
    {"spec": "2x8xA100", "inter_node": {"bandwidth": "25Gb/s", "latency": "10us"},
     "intra_node": {"bandwidth": "200GB/s"}, "memory": "40GiB"}
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .devices import DeviceProfile, get_profile
from .errors import RhinoError

SPEC_HELP = "expected NODESxDEVICESxTYPE[+...], e.g. 2x8xH100"


class ClusterError(RhinoError):
    """Malformed cluster spec, cluster file or size string."""


# ---------------------------------------------------------------- size strings

_NUM = r"(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)"
_PREFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15,
           "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40, "pi": 2**50}


def parse_size(text, what: str = "memory size") -> int:
    """Bytes from '80GiB' (2^30), '80GB' (10^9), '512MiB', '80G' (binary, as in slurm
    and docker), or a plain number of bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return int(text)
    m = re.fullmatch(_NUM + r"\s*(?P<pre>[kmgtp]?)(?P<i>i?)(?P<b>b?)", str(text).strip(),
                     re.IGNORECASE)
    if not m or (m["i"] and not m["pre"]):
        raise ClusterError(f"malformed {what} '{text}': expected a number of bytes with an "
                           "optional unit (KB, KiB, MB, MiB, GB, GiB, TB, TiB), e.g. 80GiB")
    pre = m["pre"].lower()
    binary = bool(m["i"]) or (pre and not m["b"])      # '80G' means GiB
    return int(round(float(m["num"]) * _PREFIX[pre + ("i" if binary else "")]))


def parse_bandwidth(text, what: str = "bandwidth") -> float:
    """B/s from '50GB/s', '25Gb/s' (bits), '400Gbps', '10GiB/s' or a plain number (B/s)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text > 0:
        return float(text)
    m = re.fullmatch(_NUM + r"\s*(?:(?P<pre>[kmgtp]?)(?P<i>i?)(?P<b>[bB])(?:/s|ps))?",
                     str(text).strip(), re.IGNORECASE)
    if not m or (m["i"] and not m["pre"]) or float(m["num"]) <= 0:
        raise ClusterError(f"malformed {what} '{text}': expected a positive number with a "
                           "unit like 50GB/s, 25Gb/s (bits), 400Gbps or 10GiB/s")
    if m["b"] is None:
        return float(m["num"])
    scale = _PREFIX[m["pre"].lower() + m["i"].lower()]
    bits = m["b"] == "b"                              # case matters only here: b = bit
    return float(m["num"]) * scale / (8 if bits else 1)


_TIME = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text, what: str = "latency") -> float:
    """Seconds from '10us', '5µs', '1ms', '100ns', '0.5s' or a plain number (seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return float(text)
    m = re.fullmatch(_NUM + r"\s*(?P<unit>[mµun]?s)?", str(text).strip())
    if not m:
        raise ClusterError(f"malformed {what} '{text}': expected seconds with an optional "
                           "unit (s, ms, us, ns), e.g. 10us")
    return float(m["num"]) * _TIME[m["unit"] or ""]


# ---------------------------------------------------------------- links and groups

@dataclass(frozen=True)
class Link:
    bandwidth: float          # B/s per device and direction
    latency: float            # s per ring step
    overhead: float = 0.0     # s per collective call
    name: str = ""

    def slower(self, other: "Link") -> "Link":
        """The link a ring over both runs at: the lower bandwidth, then the higher latency."""
        return min(self, other, key=lambda k: (k.bandwidth, -k.latency, -k.overhead))


# inter-node defaults per device family (see the module docstring)
INFINIBAND = Link(50e9, 5e-6, name="InfiniBand-NDR-400Gb")
ETHERNET = Link(1.25e9, 50e-6, name="Ethernet-10Gb")


def inter_node_default(profile: DeviceProfile) -> Link:
    return ETHERNET if profile.cores > 0 else INFINIBAND


@dataclass(frozen=True)
class Group:
    nodes: int
    devices_per_node: int
    profile: DeviceProfile          # as listed (not yet shared between cpu ranks)

    @property
    def num_devices(self) -> int:
        return self.nodes * self.devices_per_node

    @property
    def device_profile(self) -> DeviceProfile:
        """What one device (rank) of this group sees: cpu ranks share a node's cores."""
        return self.profile.shared_by(self.devices_per_node)

    def spec(self) -> str:
        return f"{self.nodes}x{self.devices_per_node}x{self.profile.name}"


# ---------------------------------------------------------------- cluster

@dataclass(frozen=True)
class Cluster:
    groups: tuple[Group, ...]
    intra_override: tuple[tuple[str, float], ...] = ()   # JSON "intra_node" fields
    inter: Link | None = None                             # None: family default
    memory: int | None = None                             # per device; None: profile's

    # -- sizes
    @property
    def num_devices(self) -> int:
        return sum(g.num_devices for g in self.groups)

    @property
    def num_nodes(self) -> int:
        return sum(g.nodes for g in self.groups)

    @property
    def devices_per_node(self) -> int:
        """Devices per node (the smallest, if groups differ)."""
        return min(g.devices_per_node for g in self.groups)

    @property
    def memory_per_device(self) -> int:
        """Bytes per device: the override, else the smallest device's (cpu: node / ranks)."""
        if self.memory is not None:
            return self.memory
        return min(g.device_profile.memory for g in self.groups)

    @property
    def total_memory(self) -> int:
        """Bytes over all devices: a program whose state exceeds this fits no plan."""
        if self.memory is not None:
            return self.memory * self.num_devices
        return sum(g.device_profile.memory * g.num_devices for g in self.groups)

    @property
    def homogeneous(self) -> bool:
        return len({g.profile.name for g in self.groups}) == 1

    @property
    def spec(self) -> str:
        return "+".join(g.spec() for g in self.groups)

    def with_memory(self, memory) -> "Cluster":
        """The same cluster with `--memory` (bytes or a size string) per device."""
        return replace(self, memory=None if memory is None else parse_size(memory))

    # -- devices
    def group_of(self, device: int) -> Group:
        return self.groups[int(_layout(self)[1][self._check(device)])]

    def node_of(self, device: int) -> int:
        return int(_layout(self)[0][self._check(device)])

    def profile(self, device: int = 0) -> DeviceProfile:
        """Effective profile of `device` (cpu ranks sharing cores already accounted for)."""
        return self.group_of(device).device_profile

    def _check(self, device: int) -> int:
        if not 0 <= device < self.num_devices:
            raise ClusterError(f"device {device} is outside cluster '{self.spec}' "
                               f"({self.num_devices} devices)")
        return device

    # -- links
    def intra_link(self, group: Group) -> Link:
        p, o = group.device_profile, dict(self.intra_override)
        return Link(o.get("bandwidth", p.link_bandwidth), o.get("latency", p.link_latency),
                    o.get("overhead", p.collective_overhead), p.link_name)

    @property
    def inter_link(self) -> Link:
        """The inter-node link; its per-call overhead is the groups' largest."""
        overhead = max(g.profile.collective_overhead for g in self.groups)
        if self.inter is not None:
            return self.inter if self.inter.overhead else replace(self.inter, overhead=overhead)
        link = inter_node_default(self.groups[0].profile)
        for g in self.groups[1:]:
            link = link.slower(inter_node_default(g.profile))
        return replace(link, overhead=overhead)

    def spans_nodes(self, mesh_axes, axis, offset: int = 0) -> bool:
        """Whether collectives over mesh axis `axis` cross a node boundary."""
        return _axis_info(self, *_normalize(mesh_axes, axis), offset)[0]

    def axis_link(self, mesh_axes, axis, offset: int = 0) -> Link:
        """Link of a collective over `axis` of a mesh laid on devices [offset, offset+size).

        `mesh_axes`: a sharding.Mesh, a sequence of (name, size) or a shape; `axis`: a
        name, an index or an AxisRef (sub-axes included). Crossing nodes: the inter-node
        link (or a slower intra-node hop on the way); else the slowest intra-node link of
        the groups it runs in (all of an axis's collectives run at once: the slowest
        finishes last)."""
        spans, groups = _axis_info(self, *_normalize(mesh_axes, axis), offset)
        link = None
        for gi in groups:
            g = self.intra_link(self.groups[gi])
            link = g if link is None else link.slower(g)
        return link.slower(self.inter_link) if spans else link

    def describe(self) -> str:
        """One line for reports: spec, links and memory."""
        parts = [self.spec]
        for g in self.groups:
            link = self.intra_link(g)
            parts.append(f"{g.profile.name}: {link.name or 'intra'} {link.bandwidth / 1e9:g} GB/s")
        if self.num_nodes > 1:
            parts.append(f"inter-node {self.inter_link.bandwidth / 1e9:g} GB/s")
        parts.append(f"{self.memory_per_device / 2**30:.1f} GiB/device")
        return ", ".join(parts)

    def to_json(self) -> dict:
        out = {"spec": self.spec}
        if self.intra_override:
            out["intra_node"] = dict(self.intra_override)
        if self.inter is not None:
            out["inter_node"] = {"bandwidth": self.inter.bandwidth,
                                 "latency": self.inter.latency, "overhead": self.inter.overhead}
        if self.memory is not None:
            out["memory"] = self.memory
        return out


@lru_cache(maxsize=64)
def _layout(c: Cluster) -> tuple[np.ndarray, np.ndarray]:
    """(node id, group index) of every device, node-major."""
    nodes, groups, base = [], [], 0
    for gi, g in enumerate(c.groups):
        nodes.append(base + np.arange(g.num_devices) // g.devices_per_node)
        groups.append(np.full(g.num_devices, gi))
        base += g.nodes
    return np.concatenate(nodes), np.concatenate(groups)


def _normalize(mesh_axes, axis):
    """-> (((name, size), ...), device_ids or None, (axis index, pre, sub size or 0))."""
    ids = getattr(mesh_axes, "device_ids", None)
    axes = getattr(mesh_axes, "axes", mesh_axes)
    if isinstance(axes, dict):
        axes = list(axes.items())
    # a bare shape (2, 8) names its axes by position
    axes = tuple((str(i), int(a)) if isinstance(a, (int, np.integer)) else (str(a[0]), int(a[1]))
                 for i, a in enumerate(axes))
    names = [n for n, _ in axes]
    name = getattr(axis, "name", axis)
    pre, sub = getattr(axis, "pre", 1), getattr(axis, "size", None)
    if isinstance(name, (int, np.integer)):
        if not 0 <= name < len(axes):
            raise ClusterError(f"mesh axis index {name} out of range for a mesh of rank {len(axes)}")
        idx = int(name)
    elif str(name) in names:
        idx = names.index(str(name))
    else:
        raise ClusterError(f"unknown mesh axis '{name}' (axes: {', '.join(names) or 'none'})")
    return axes, tuple(ids) if ids is not None else None, (idx, int(pre), int(sub or 0))


@lru_cache(maxsize=4096)
def _axis_info(c: Cluster, axes, ids, axis, offset: int) -> tuple[bool, tuple[int, ...]]:
    """(spans nodes, indices of the groups its collectives run in)."""
    idx, pre, sub = axis
    size = math.prod(s for _, s in axes)
    pos = np.arange(size)
    phys = offset + (np.asarray(ids) if ids is not None else pos)
    if size and (phys.max() >= c.num_devices or phys.min() < 0):
        raise ClusterError(f"a mesh of {size} devices at offset {offset} does not fit cluster "
                           f"'{c.spec}' ({c.num_devices} devices)")
    node, group = (a[phys] for a in _layout(c))
    stride = math.prod(s for _, s in axes[idx + 1:])
    full = axes[idx][1]
    length = sub or full
    if sub:                                  # sub-axis "x":(pre)sub: stride of its minor part
        stride *= full // (pre * sub)
    coord = (pos // stride) % length
    first = pos - coord * stride             # the group's member with coordinate 0
    spans = bool(np.any(node != node[first])) if length > 1 else False
    return spans, tuple(int(g) for g in np.unique(group))


# ---------------------------------------------------------------- parsing

def parse_cluster(spec: str) -> Cluster:
    """Cluster from a spec string: NODESxDEVICESxTYPE[+NODESxDEVICESxTYPE...]."""
    text = str(spec).strip()
    groups = []
    for part in text.split("+") if text else [""]:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*([A-Za-z][\w.-]*)\s*", part)
        if not m:
            raise ClusterError(f"malformed cluster spec '{spec}': {SPEC_HELP}")
        nodes, per_node = int(m[1]), int(m[2])
        if nodes < 1 or per_node < 1:
            raise ClusterError(f"cluster spec '{spec}': node and device counts must be "
                               f"positive, got '{part.strip()}'")
        groups.append(Group(nodes, per_node, get_profile(m[3])))
    return Cluster(tuple(groups))


_LINK_KEYS = {"bandwidth": parse_bandwidth, "latency": parse_duration,
              "overhead": parse_duration}
_FILE_KEYS = ("spec", "intra_node", "inter_node", "memory", "comment")


def _link_fields(d, where: str) -> dict[str, float]:
    if not isinstance(d, dict):
        raise ClusterError(f"{where}: expected an object with bandwidth/latency/overhead")
    out = {}
    for k, v in d.items():
        if k not in _LINK_KEYS:
            raise ClusterError(f"{where}: unknown key '{k}' (expected: {', '.join(_LINK_KEYS)})")
        out[k] = _LINK_KEYS[k](v, what=f"{where}.{k}")
    return out


def cluster_from_json(data, where: str = "cluster file") -> Cluster:
    """Cluster from the JSON object of a cluster file (see the module docstring)."""
    if not isinstance(data, dict) or "spec" not in data:
        raise ClusterError(f"{where}: expected an object with a 'spec' key, e.g. "
                           '{"spec": "2x8xA100"}')
    for k in data:
        if k not in _FILE_KEYS:
            raise ClusterError(f"{where}: unknown key '{k}' (expected: {', '.join(_FILE_KEYS)})")
    c = parse_cluster(data["spec"])
    intra = _link_fields(data.get("intra_node", {}), f"{where}: intra_node")
    inter = None
    if "inter_node" in data:
        fields = _link_fields(data["inter_node"], f"{where}: inter_node")
        base = c.inter_link
        inter = Link(fields.get("bandwidth", base.bandwidth), fields.get("latency", base.latency),
                     fields.get("overhead", 0.0), name="inter-node (cluster file)")
    memory = parse_size(data["memory"], f"{where}: memory") if "memory" in data else None
    return replace(c, intra_override=tuple(sorted(intra.items())), inter=inter, memory=memory)


def load_cluster(arg: str) -> Cluster:
    """`--cluster` argument: a spec string, or a JSON cluster file (a path ending in
    .json or naming an existing file)."""
    text = str(arg).strip()
    path = Path(text)
    if text.endswith(".json") or (("/" in text or path.suffix) and path.is_file()):
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise ClusterError(f"cannot read cluster file '{text}': {e.strerror}") from None
        except ValueError as e:
            raise ClusterError(f"cluster file '{text}' is not valid JSON: {e}") from None
        return cluster_from_json(data, where=f"cluster file '{text}'")
    return parse_cluster(text)

