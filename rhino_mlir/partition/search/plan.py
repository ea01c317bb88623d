"""Plan: what the planner decided and what it predicts; JSON round trip.

Values are named by (op index in walk order of @main, result number), arguments by
index; `program_sha256` is the hash of the program the plan was made for (after
rhino-inline), and applying the plan to another program is an error naming both.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ...errors import RhinoError

SCHEMA = 1


@dataclass
class Prediction:
    step_time_s: float
    compute_s: float
    comm_s: float
    memory_per_device_bytes: int
    memory: dict = field(default_factory=dict)          # arguments / outputs / temporaries
    bytes_per_axis: dict = field(default_factory=dict)


@dataclass
class Plan:
    program_sha256: str
    cluster: str
    mesh: list                                  # [[axis, size], ...] major -> minor
    strategy: str                               # auto | dp | megatron | ...
    level: str
    prediction: Prediction
    args: list[str] = field(default_factory=list)          # sdy sharding text per argument
    values: dict = field(default_factory=dict)             # "op:result" -> sdy sharding text
    groups: list = field(default_factory=list)             # per decision group: summary
    baselines: list = field(default_factory=list)          # [{name, step_time_s, ...}]
    search: dict = field(default_factory=dict)             # timings of parse/rules/coarsen/solve
    memory_budget_bytes: int | None = None
    results: list[str] = field(default_factory=list)       # sdy sharding text per @main result
    microbatches: int = 1                                  # accumulated in one program (rhino-accumulate)
    remat: list = field(default_factory=list)              # [{group, layers, policy}] (rhino-remat)
    activation_bytes: int = 0                              # per device, kept forward -> backward

    def to_json(self) -> str:
        d = asdict(self)
        d["schema"] = SCHEMA
        return json.dumps(d, indent=1)

    @staticmethod
    def from_json(text: str, where: str = "plan") -> "Plan":
        try:
            d = json.loads(text)
        except ValueError as e:
            raise RhinoError(f"{where} is not valid JSON: {e}") from None
        if d.pop("schema", None) != SCHEMA:
            raise RhinoError(f"{where} has an unknown schema; re-run rhino plan with this version")
        d["prediction"] = Prediction(**d["prediction"])
        try:
            return Plan(**d)
        except TypeError as e:
            raise RhinoError(f"{where} is malformed: {e}") from None

    def check_program(self, sha: str) -> None:
        if sha != self.program_sha256:
            raise RhinoError(f"plan was made for program sha256 {self.program_sha256[:12]}… but this "
                             f"program is {sha[:12]}…; re-run rhino plan on this program")
