"""cluster.py: spec strings, JSON overrides, size strings, which mesh axes cross nodes."""
import json

import pytest

from rhino_mlir.cluster import (INFINIBAND, ClusterError, Link, load_cluster, parse_bandwidth,
                                parse_cluster, parse_duration, parse_size)
from rhino_mlir.sharding import AxisRef, Mesh


def test_homogeneous_spec():
    c = parse_cluster("2x8xH100")
    assert (c.num_devices, c.num_nodes, c.devices_per_node) == (16, 2, 8)
    assert c.memory_per_device == 80 * 10**9
    assert c.spec == "2x8xH100-SXM" and c.homogeneous
    assert c.node_of(7) == 0 and c.node_of(8) == 1


def test_heterogeneous_spec():
    c = parse_cluster("1x8xA100+1x8xV100")
    assert c.num_devices == 16 and not c.homogeneous
    assert c.group_of(3).profile.name == "A100-80GB"
    assert c.group_of(12).profile.name == "V100-32GB"
    assert c.memory_per_device == 32 * 10**9          # the smallest device decides
    assert c.total_memory == 8 * 80 * 10**9 + 8 * 32 * 10**9
    assert c.with_memory("16GiB").total_memory == 16 * 16 * 2**30
    uneven = parse_cluster("1x8xA100 + 2x4xL4")
    assert uneven.devices_per_node == 4 and uneven.num_nodes == 3
    assert [uneven.node_of(d) for d in (7, 8, 11, 12, 15)] == [0, 1, 1, 2, 2]


def test_cpu_ranks_split_memory_and_cores():
    c = parse_cluster("1x4xcpu-test")
    p = c.profile(0)
    assert p.peak("f32") == 0.05e12                   # 4 ranks on 2 cores
    assert c.memory_per_device == 2 * 2**30           # 8 GiB node / 4 ranks


@pytest.mark.parametrize("spec", ["2x", "", "2x8", "x8xH100", "2x8xH100+", "2*8*H100",
                                  "2x8x", "two x8xH100"])
def test_malformed_spec_is_one_line(spec):
    with pytest.raises(ClusterError) as e:
        parse_cluster(spec)
    assert str(e.value) == (f"malformed cluster spec '{spec}': expected "
                            "NODESxDEVICESxTYPE[+...], e.g. 2x8xH100")


def test_zero_count_and_unknown_device():
    with pytest.raises(ClusterError, match=r"'0x8xH100': node and device counts must be positive"):
        parse_cluster("0x8xH100")
    with pytest.raises(Exception, match=r"^unknown device 'B300'; known: .*A100-80GB"):
        parse_cluster("1x8xB300")


@pytest.mark.parametrize("text, n", [
    ("80GiB", 80 * 2**30), ("80GB", 80 * 10**9), ("512MiB", 512 * 2**20), ("1024", 1024),
    ("80G", 80 * 2**30), ("1.5 GiB", 3 * 2**29), ("2TB", 2 * 10**12), ("64kib", 65536),
    (4096, 4096),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["80XB", "GiB", "-1GB", "80 GiBs", "1iB", ""])
def test_malformed_size(text):
    with pytest.raises(ClusterError, match=rf"^malformed memory size '{text}': expected"):
        parse_size(text)


@pytest.mark.parametrize("text, bps", [
    ("25Gb/s", 25e9 / 8), ("50GB/s", 50e9), ("400Gbps", 50e9), ("1GiB/s", 2**30),
    ("1e9", 1e9), (3.5e9, 3.5e9), ("100 MB/s", 1e8),
])
def test_parse_bandwidth(text, bps):
    assert parse_bandwidth(text) == pytest.approx(bps)


@pytest.mark.parametrize("text", ["25Gb", "fast", "0GB/s", "10 GB/h"])
def test_malformed_bandwidth(text):
    with pytest.raises(ClusterError, match=rf"^malformed bandwidth '{text}'"):
        parse_bandwidth(text)


@pytest.mark.parametrize("text, s", [("10us", 1e-5), ("5µs", 5e-6), ("1ms", 1e-3),
                                     ("100ns", 1e-7), ("0.5s", 0.5), ("2e-6", 2e-6)])
def test_parse_duration(text, s):
    assert parse_duration(text) == pytest.approx(s)


def test_json_override(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"spec": "2x8xA100", "memory": "40GiB",
                             "inter_node": {"bandwidth": "25Gb/s", "latency": "10us"},
                             "intra_node": {"bandwidth": "200GB/s"}}))
    c = load_cluster(str(f))
    assert c.num_devices == 16 and c.memory_per_device == 40 * 2**30
    inter = c.axis_link((2, 8), 0)
    assert inter.bandwidth == pytest.approx(25e9 / 8) and inter.latency == pytest.approx(1e-5)
    intra = c.axis_link((2, 8), 1)
    assert intra.bandwidth == 200e9 and intra.latency == 1e-6   # latency kept from NVLink3
    again = tmp_path / "again.json"                       # to_json round-trips
    again.write_text(json.dumps(c.to_json()))
    assert load_cluster(str(again)) == c


@pytest.mark.parametrize("content, msg", [
    ('{"spec": "2x8xA100", "inter": {}}', r"unknown key 'inter' \(expected: spec, "),
    ('{"inter_node": {}}', r"expected an object with a 'spec' key"),
    ('{"spec": "2x8xA100", "inter_node": {"bandwidth": "fast"}}',
     r"malformed cluster file '.*c.json': inter_node.bandwidth 'fast'"),
    ('{"spec": "2x8xA100", "intra_node": {"speed": 1}}', r"intra_node: unknown key 'speed'"),
    ('{"spec": "2x"', r"is not valid JSON"),
    ('{"spec": "2x"}', r"malformed cluster spec '2x'"),
])
def test_bad_cluster_file(tmp_path, content, msg):
    f = tmp_path / "c.json"
    f.write_text(content)
    with pytest.raises(ClusterError, match=msg) as e:
        load_cluster(str(f))
    assert "\n" not in str(e.value)


def test_missing_cluster_file():
    with pytest.raises(ClusterError, match=r"^cannot read cluster file 'nope.json'"):
        load_cluster("nope.json")


def test_which_axes_span_nodes():
    c = parse_cluster("2x8xH100")
    # axes major -> minor over node-major devices: (2, 8) puts nodes on the major axis
    assert c.spans_nodes((2, 8), 0) and not c.spans_nodes((2, 8), 1)
    assert not c.spans_nodes((4, 4), 1) and c.spans_nodes((4, 4), 0)
    assert c.spans_nodes((8, 2), 0) and not c.spans_nodes((8, 2), 1)
    m = Mesh("m", (("dp", 2), ("tp", 8)))
    assert c.axis_link(m, "dp").name == INFINIBAND.name
    assert c.axis_link(m, "tp").name == "NVLink4"
    # a mesh that lists its devices: transposed order puts the nodes on the minor axis
    ids = tuple(r + 8 * q for r in range(8) for q in range(2))
    mt = Mesh("m", (("a", 8), ("b", 2)), device_ids=ids)
    assert c.spans_nodes(mt, "b") and not c.spans_nodes(mt, "a")


def test_sub_axes():
    c = parse_cluster("2x8xH100")
    m = Mesh("m", (("x", 16),))
    assert c.spans_nodes(m, AxisRef("x"))
    assert c.spans_nodes(m, AxisRef("x", 1, 2))       # "x":(1)2: the node index
    assert not c.spans_nodes(m, AxisRef("x", 2, 8))   # "x":(2)8: inside a node
    assert not c.spans_nodes(m, AxisRef("x", 8, 2))


def test_offset_sub_mesh_and_bounds():
    c = parse_cluster("2x4xA100")
    assert not c.spans_nodes((4,), 0, offset=4)       # the second node alone
    assert c.spans_nodes((4,), 0, offset=2)           # straddles the boundary
    with pytest.raises(ClusterError, match=r"a mesh of 16 devices at offset 0 does not fit"):
        c.axis_link((16,), 0)
    with pytest.raises(ClusterError, match=r"unknown mesh axis 'z' \(axes: x, y\)"):
        c.axis_link((("x", 2), ("y", 4)), "z")


def test_heterogeneous_link_is_the_slowest():
    c = parse_cluster("1x8xA100+1x8xV100")
    assert c.axis_link((2, 8), 1).name == "NVLink2"   # both nodes' collectives: V100 slower
    assert c.axis_link((2, 8), 1).bandwidth == 150e9
    assert c.axis_link((2, 8), 0).bandwidth == 50e9
    cpu = parse_cluster("1x4xcpu-test")
    assert cpu.axis_link((4,), 0).bandwidth == 0.5e9  # shared by 4 ranks on 2 cores


def test_link_slower():
    a, b = Link(1e9, 1e-6), Link(2e9, 1e-3)
    assert a.slower(b) is a and b.slower(a) is a
    assert Link(1e9, 5e-6).slower(Link(1e9, 1e-6)).latency == 5e-6
