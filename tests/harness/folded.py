"""A zoo train step planned the way the planner sees it: the folded graph
(analysis/fold.py) and the full graph of the same module, for tests that compare them."""
import functools

from rhino_mlir import ir as I
from rhino_mlir import zoo
from rhino_mlir.analysis import fold, graph, repeats, rules
from rhino_mlir.passes import REGISTRY, PassContext


@functools.lru_cache(maxsize=None)
def built(name: str = "gpt-tiny", fn: str = "train_step", **over):
    """(module, folded graph, full graph); the module stays alive with the graphs."""
    text, _ = zoo.get(name, **over).lower(fn)
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    REGISTRY["rhino-inline"]().apply(PassContext(ctx), m)
    printed = I.print_module(m)
    with ctx, I.ir.Location.unknown():
        rules.populate(m)
        f = I.main_func(m)
        block = f.regions[0].blocks[0]
        reps = repeats.find(printed, f.attributes["sym_name"].value, [str(a.type) for a in block.arguments],
                            len(block.operations))
        return m, fold.build(m, reps), graph.build(m)
