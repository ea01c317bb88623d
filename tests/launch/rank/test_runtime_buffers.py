"""Buffer edge cases of the `rhino` VM module (issue 10 suspected them of a rank SIGSEGV).

The crash turned out to be an out-of-bounds scatter in the local program
(tests/launch/test_vocab_sharded_step.py); these are the runtime conditions that were
suspected with it, pinned down so they stay harmless: zero-element operands and results of
collectives (mapped and allocated with no bytes), arguments donated to results
(`tf.aliasing_output`) that are also handed to a collective, a collective result returned
straight from @main, and repeated calls reusing freed buffers, on both CPU drivers.
"""
from __future__ import annotations

import numpy as np
import pytest

from rhino_mlir.launch.build.iree_compile import compile_one
from rhino_mlir.launch.rank.comm import ThreadWorld
from rhino_mlir.launch.rank.runtime import Executor

_G = "replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, use_global_device_ids"


def _sum(x: str, t: str, handle: int) -> str:
    return (f'"stablehlo.all_reduce"({x}) <{{channel_handle = #stablehlo.channel_handle<handle = '
            f'{handle}, type = 1>, {_G}}}> ({{\n    ^bb0(%p: tensor<f32>, %q: tensor<f32>):\n'
            f'      %s = stablehlo.add %p, %q : tensor<f32>\n      stablehlo.return %s : tensor<f32>\n'
            f'    }}) : ({t}) -> {t}')


PROGRAM = f"""module attributes {{mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32}} {{
  func.func public @main(%a: tensor<0x4xf32> {{tf.aliasing_output = 0 : i32}},
                         %b: tensor<4xf32> {{tf.aliasing_output = 1 : i32}})
      -> (tensor<0x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<0x8xf32>) {{
    %0 = {_sum("%a", "tensor<0x4xf32>", 1)}
    %1 = {_sum("%b", "tensor<4xf32>", 2)}
    %g = "stablehlo.all_gather"(%a) <{{all_gather_dim = 1 : i64, channel_handle = #stablehlo.channel_handle<handle = 3, type = 1>, {_G}}}> : (tensor<0x4xf32>) -> tensor<0x8xf32>
    %2 = stablehlo.add %b, %1 : tensor<4xf32>
    return %0, %2, %1, %g : tensor<0x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<0x8xf32>
  }}
}}
"""


def _lowered(text: str) -> str:
    from rhino_mlir import ir as rir
    from rhino_mlir.passes import PassContext
    from rhino_mlir.passes.pass_pipeline import run_pipeline_str
    m = rir.parse_module(text, ctx := rir.new_context())
    run_pipeline_str(m, "rhino-lower-collectives,rhino-strip-sharding", PassContext(ctx))
    return str(m)


@pytest.mark.parametrize("driver", ["local-sync", "local-task"])
def test_empty_and_donated_buffers_through_collectives(driver):
    import threading
    vmfb = compile_one("buffers", _lowered(PROGRAM), "llvm-cpu").vmfb
    world = ThreadWorld(2, timeout=60)
    comms, out, errs = world.communicators(), [[], []], []

    def body(r):
        try:
            with Executor(vmfb, comms[r], driver=driver) as ex:
                for _ in range(3):                     # freed buffers come back
                    out[r].append(ex(np.zeros((0, 4), np.float32), np.full(4, r + 1.0, np.float32)))
        except Exception as e:                         # noqa: BLE001 (re-raised below)
            errs.append(e)
            world.barrier_.abort()
    threads = [threading.Thread(target=body, args=(r,)) for r in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errs, errs
    for r in range(2):
        for empty, b2, total, gathered in out[r]:
            assert empty.shape == (0, 4) and gathered.shape == (0, 8)
            np.testing.assert_array_equal(total, np.full(4, 3.0))          # 1 + 2
            np.testing.assert_array_equal(b2, np.full(4, r + 1.0 + 3.0))   # donated b + sum
