"""Device profiles: peak FLOP/s per dtype, memory bandwidth and size, interconnect.

The planner's time model (analysis/cost.py) prices an op by roofline on one of these and
a collective by an alpha-beta model on a link (cluster.py) whose defaults come from here.

GPU numbers are vendor datasheet peaks, dense (NVIDIA quotes tensor-core rates "with
sparsity"; we halve those), at boost clock. `link_*` is the node-local interconnect per
device and direction (NVLink 900 GB/s "bidirectional" = 450 GB/s each way).
Latencies are per ring step (one hop) and `collective_overhead` per collective call:
orders of magnitude from NCCL/RCCL small-message timings, not datasheet figures.

`cpu` is this machine, measured by `rhino calibrate` (tools/calibrate.py) and cached;
without a cache it falls back to conservative defaults. Its peaks are per rank with a
core to itself: ranks share the node's cores, see `DeviceProfile.shared_by`.
`cpu-test` is fixed, so plans made in tests do not depend on the machine.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import RhinoError

CPU_PROFILE_SCHEMA = 1


class DeviceError(RhinoError):
    """Unknown device name or unreadable calibration cache."""


# canonical dtype keys; MLIR element types and numpy names map onto them
_DTYPE_KEY = {
    "f64": "f64", "float64": "f64",
    "f32": "f32", "float32": "f32",
    "tf32": "tf32",
    "f16": "f16", "float16": "f16",
    "bf16": "bf16", "bfloat16": "bf16",
    "f8": "f8", "float8": "f8",
    "i8": "i8", "si8": "i8", "ui8": "i8", "int8": "i8", "uint8": "i8",
}
# a dtype without its own peak runs at the next one (V100 has no bf16 tensor cores,
# so bf16 math is f32 math; an int8 matmul without int8 units is an f16 one, ...)
_FALLBACK = {"tf32": "f32", "bf16": "f16", "f16": "f32", "f8": "f16", "i8": "f16",
             "f64": "f32"}


def dtype_key(dtype: str) -> str:
    """Canonical peak key of an element type: 'bfloat16' -> 'bf16', 'f8E4M3FN' -> 'f8'."""
    d = str(dtype).strip().lower().removeprefix("stablehlo.")
    if d in _DTYPE_KEY:
        return _DTYPE_KEY[d]
    if d.startswith(("f8", "float8")):           # f8E4M3FN, f8E5M2, float8_e4m3fn, ...
        return "f8"
    return "f32"                                  # i1, i32, i64, complex: vector ALU rate


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    flops: tuple[tuple[str, float], ...]   # (dtype key, dense peak FLOP/s), see peak()
    hbm_bandwidth: float                   # device memory bandwidth, B/s
    memory: int                            # device memory, bytes
    launch_overhead: float                 # s per kernel (dispatch)
    link_bandwidth: float                  # node-local interconnect, B/s per direction
    link_latency: float                    # s per ring step on that link
    link_name: str = ""
    collective_overhead: float = 10e-6     # s per collective call (launch, sync)
    cores: int = 0                         # > 0: ranks on a node share this many cores
    # s per collective call added when ranks outnumber cores (a call waits for every
    # rank to be scheduled); measured by `rhino calibrate` with 2x cores ranks
    oversubscribed_overhead: float = 0.0
    aliases: tuple[str, ...] = ()
    source: str = ""                       # where the numbers come from

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`, falling back along _FALLBACK."""
        table = dict(self.flops)
        key = dtype_key(dtype)
        while key not in table:
            key = _FALLBACK.get(key, "f32")
            if key == "f32" and "f32" not in table:
                raise DeviceError(f"device '{self.name}' has no f32 peak")
        return table[key]

    def shared_by(self, ranks: int) -> "DeviceProfile":
        """The profile one of `ranks` ranks on a node sees.

        Devices with their own hardware (cores == 0) are not shared. N cpu ranks on C
        cores each get peak / max(1, N/C): with N <= C every rank keeps a core busy, past
        that they time-slice. Memory bandwidth and the shared-memory link are divided the
        same way, a step waits for the slowest (descheduled) rank, and memory is split."""
        if self.cores <= 0 or ranks <= 1:
            return self
        f = max(1.0, ranks / self.cores)
        extra = self.oversubscribed_overhead * (f - 1.0) if f > 1 else 0.0
        return replace(self, flops=tuple((k, v / f) for k, v in self.flops),
                       hbm_bandwidth=self.hbm_bandwidth / f,
                       link_bandwidth=self.link_bandwidth / f,
                       link_latency=self.link_latency * f,
                       collective_overhead=self.collective_overhead + extra,
                       memory=self.memory // ranks)

    def to_json(self) -> dict:
        return {"schema": CPU_PROFILE_SCHEMA, "name": self.name, "flops": dict(self.flops),
                "hbm_bandwidth": self.hbm_bandwidth, "memory": self.memory,
                "launch_overhead": self.launch_overhead,
                "link_bandwidth": self.link_bandwidth, "link_latency": self.link_latency,
                "link_name": self.link_name, "collective_overhead": self.collective_overhead,
                "oversubscribed_overhead": self.oversubscribed_overhead,
                "cores": self.cores, "source": self.source}

    @staticmethod
    def from_json(d: dict, where: str = "profile") -> "DeviceProfile":
        try:
            if d.get("schema") != CPU_PROFILE_SCHEMA:
                raise ValueError(f"schema {d.get('schema')!r}, expected {CPU_PROFILE_SCHEMA}")
            return DeviceProfile(
                name=str(d["name"]),
                flops=tuple((dtype_key(k), float(v)) for k, v in d["flops"].items()),
                hbm_bandwidth=float(d["hbm_bandwidth"]), memory=int(d["memory"]),
                launch_overhead=float(d["launch_overhead"]),
                link_bandwidth=float(d["link_bandwidth"]),
                link_latency=float(d["link_latency"]), link_name=str(d.get("link_name", "")),
                collective_overhead=float(d["collective_overhead"]),
                oversubscribed_overhead=float(d.get("oversubscribed_overhead", 0.0)),
                cores=int(d.get("cores", 0)), aliases=(), source=str(d.get("source", "")))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DeviceError(f"{where}: bad device profile ({type(e).__name__}: {e}); "
                              "rerun 'rhino calibrate'") from None


T, G = 1e12, 1e9
GB, GiB = 10**9, 2**30


def _f(**peaks_tflops) -> tuple[tuple[str, float], ...]:
    return tuple((k, v * T) for k, v in peaks_tflops.items())


# NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column), nvidia.com/en-us/data-center/h100:
# FP64 TC 67, FP32 67, TF32 989*, BF16/FP16 1,979*, FP8/INT8 3,958* (* with sparsity),
# 80 GB HBM3 at 3.35 TB/s, NVLink 900 GB/s.
H100 = DeviceProfile(
    "H100-SXM", _f(f64=67, f32=67, tf32=494.7, bf16=989.4, f16=989.4, f8=1978.9, i8=1978.9),
    hbm_bandwidth=3.35e12, memory=80 * GB, launch_overhead=4e-6,
    link_bandwidth=450 * G, link_latency=1e-6, link_name="NVLink4",
    aliases=("H100", "H100SXM", "H100-SXM5", "H100-80GB"),
    source="NVIDIA H100 Tensor Core GPU datasheet, SXM")
# NVIDIA H200 Tensor Core GPU datasheet (H200 SXM), nvidia.com/en-us/data-center/h200:
# same Hopper compute as H100 SXM, 141 GB HBM3e at 4.8 TB/s, NVLink 900 GB/s.
H200 = replace(H100, name="H200", hbm_bandwidth=4.8e12, memory=141 * GB,
               aliases=("H200-SXM", "H200SXM"),
               source="NVIDIA H200 Tensor Core GPU datasheet, SXM")
# NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM), nvidia.com/en-us/data-center/a100:
# FP64 TC 19.5, FP32 19.5, TF32 156, BF16/FP16 312, INT8 624 TOPS (dense),
# 80 GB HBM2e at 2,039 GB/s, NVLink 600 GB/s. No FP8.
A100 = DeviceProfile(
    "A100-80GB", _f(f64=19.5, f32=19.5, tf32=156, bf16=312, f16=312, i8=624),
    hbm_bandwidth=2.039e12, memory=80 * GB, launch_overhead=4e-6,
    link_bandwidth=300 * G, link_latency=1e-6, link_name="NVLink3",
    aliases=("A100", "A100-SXM", "A100-80G", "A100-SXM4-80GB"),
    source="NVIDIA A100 Tensor Core GPU datasheet, 80GB SXM")
# NVIDIA V100 Tensor Core GPU datasheet (V100 SXM2 32GB), nvidia.com/en-us/data-center/v100:
# FP64 7.8, FP32 15.7, Tensor (FP16) 125, 32 GB HBM2 at 900 GB/s, NVLink 300 GB/s.
# No TF32/BF16 tensor cores: bf16 math runs at the f32 rate (compilers upcast it on
# Volta), tf32 falls back to f32, int8 to the f16 tensor cores.
V100 = DeviceProfile(
    "V100-32GB", _f(f64=7.8, f32=15.7, f16=125, bf16=15.7),
    hbm_bandwidth=900 * G, memory=32 * GB, launch_overhead=5e-6,
    link_bandwidth=150 * G, link_latency=2e-6, link_name="NVLink2",
    aliases=("V100", "V100-SXM2", "V100-SXM2-32GB"),
    source="NVIDIA V100 Tensor Core GPU datasheet, SXM2 32GB")
# NVIDIA L4 Tensor Core GPU datasheet, nvidia.com/en-us/data-center/l4: FP32 30.3,
# TF32 120*, BF16/FP16 242*, FP8/INT8 485* (* with sparsity), 24 GB GDDR6 at 300 GB/s,
# PCIe Gen4 x16 64 GB/s (both directions; no NVLink, so peers talk over PCIe).
L4 = DeviceProfile(
    "L4", _f(f64=0.49, f32=30.3, tf32=60, bf16=121, f16=121, f8=242.5, i8=242.5),
    hbm_bandwidth=300 * G, memory=24 * GB, launch_overhead=5e-6,
    link_bandwidth=32 * G, link_latency=3e-6, link_name="PCIe4",
    aliases=("L4-24GB",), source="NVIDIA L4 Tensor Core GPU datasheet")
# AMD Instinct MI300X data sheet, amd.com/en/products/accelerators/instinct/mi300/mi300x:
# FP64 matrix 163.4, FP32 163.4, TF32 653.7, BF16/FP16 1,307.4, FP8/INT8 2,614.9 (dense),
# 192 GB HBM3 at 5.3 TB/s, 7 Infinity Fabric links x 128 GB/s (both directions) =
# 7 x 64 = 448 GB/s each way to the 7 peers of an 8-GPU platform.
MI300X = DeviceProfile(
    "MI300X", _f(f64=163.4, f32=163.4, tf32=653.7, bf16=1307.4, f16=1307.4, f8=2614.9,
                 i8=2614.9),
    hbm_bandwidth=5.3e12, memory=192 * GB, launch_overhead=5e-6,
    link_bandwidth=448 * G, link_latency=1.5e-6, link_name="InfinityFabric",
    aliases=("MI300", "MI300X-192GB"), source="AMD Instinct MI300X data sheet")

# cpu-test: fixed numbers (2 cores, 100 GFLOP/s and 10 GB/s per core, 1 GB/s shared-memory
# link) so that tests and their plans never depend on the machine or a cache
CPU_TEST = DeviceProfile(
    "cpu-test", _f(f32=0.1), hbm_bandwidth=10 * G, memory=8 * GiB, launch_overhead=10e-6,
    link_bandwidth=1 * G, link_latency=20e-6, link_name="shared-memory",
    collective_overhead=400e-6, cores=2, source="fixed test profile")


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * GiB


def cpu_default() -> DeviceProfile:
    """Uncalibrated cpu: conservative per-core numbers for a recent x86 core.

    20 GFLOP/s f32 (a single AVX2 core sustains 30-60 in BLAS), 5 GB/s memcpy,
    an MPI shared-memory link of 1 GB/s and 50 us per step, and 0.4 ms per runtime
    collective call (docs/benchmarks.md: IREE invocation + rhino import over MPI)."""
    return DeviceProfile(
        "cpu", _f(f32=0.02), hbm_bandwidth=5 * G, memory=_total_memory(),
        launch_overhead=10e-6, link_bandwidth=1 * G, link_latency=50e-6,
        link_name="shared-memory", collective_overhead=400e-6,
        cores=os.cpu_count() or 1, source="defaults (run 'rhino calibrate')")


def cache_path() -> Path:
    """Where `rhino calibrate` writes the cpu profile (same root as the compile cache)."""
    root = os.environ.get("RHINO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                         "rhino_mlir")
    return Path(root) / "cpu_profile.json"


def cpu_profile() -> DeviceProfile:
    """The calibrated cpu profile if cached, else `cpu_default()`."""
    p = cache_path()
    if not p.is_file():
        return cpu_default()
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DeviceError(f"cpu profile cache '{p}' is unreadable ({e}); rerun "
                          "'rhino calibrate' or delete it") from None
    return replace(DeviceProfile.from_json(data, where=f"cpu profile cache '{p}'"), name="cpu")


PROFILES: tuple[DeviceProfile, ...] = (H100, H200, A100, V100, L4, MI300X, CPU_TEST)


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def known_names() -> list[str]:
    return [p.name for p in PROFILES[:-1]] + ["cpu", CPU_TEST.name]


def get_profile(name: str) -> DeviceProfile:
    """Profile by case-insensitive name or alias ('H100', 'h100-sxm', 'a100', 'cpu')."""
    key = _norm(name)
    if key == "cpu":
        return cpu_profile()
    for p in PROFILES:
        if key == _norm(p.name) or key in (_norm(a) for a in p.aliases):
            return p
    raise DeviceError(f"unknown device '{name}'; known: {', '.join(known_names())}")
