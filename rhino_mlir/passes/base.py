"""Pass base: a frozen dataclass whose fields are its options.

    @register
    @dataclass(frozen=True)
    class SpmdPartition(ModulePass):
        '''Global annotated program -> one local program with explicit collectives.'''
        name: ClassVar[str] = "rhino-spmd-partition"
        mesh: str = ""

`rhino-spmd-partition{mesh=m}` sets `mesh`; tuple fields take comma lists.
The docstring's first line is the summary shown by `rhino-opt --list-passes`.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import PassError, PipelineError


@dataclass
class PassContext:
    """What a pass may use besides the module: the MLIR context and a place for remarks."""
    ctx: Any
    debug: bool = False
    remarks: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)     # pass name -> structured report

    def remark(self, text: str) -> None:
        self.remarks.append(text)
        if self.debug:
            print(f"remark: {text}", file=sys.stderr)


@dataclass(frozen=True)
class ModulePass:
    name: ClassVar[str] = ""

    def apply(self, pctx: PassContext, module) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fail(self, msg: str, op=None) -> PassError:
        """The pass's error; `op` (the culprit) gives it a source location."""
        return PassError(f"{self.name}: {msg}", op)

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        return list(dataclasses.fields(cls))

    @classmethod
    def from_options(cls, opts: dict[str, str]) -> "ModulePass":
        fields = {f.name.replace("_", "-"): f for f in cls.options()}
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, raw in opts.items():
            f = fields.get(key) or fields.get(key.replace("_", "-"))
            if f is None:
                known = ", ".join(sorted(fields)) or "none"
                raise PipelineError(f"unknown option '{key}' for pass '{cls.name}' (options: {known})")
            kwargs[f.name] = _convert(cls.name, key, raw, hints[f.name])
        return cls(**kwargs)


def _convert(pname: str, key: str, raw: str, typ) -> Any:
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if raw.lower() in ("true", "1", ""):
                return True
            if raw.lower() in ("false", "0"):
                return False
            raise ValueError(raw)
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if origin is tuple:
            (inner, *_) = typing.get_args(typ)
            return tuple(_convert(pname, key, x.strip(), inner) for x in raw.split(",") if x.strip())
        return raw
    except ValueError:
        raise PipelineError(f"bad value '{raw}' for option '{key}' of pass '{pname}' "
                            f"(expected {getattr(typ, '__name__', typ)})") from None


REGISTRY: dict[str, type[ModulePass]] = {}


def register(cls: type[ModulePass]) -> type[ModulePass]:
    assert cls.name and cls.name not in REGISTRY, cls.name
    REGISTRY[cls.name] = cls
    return cls
