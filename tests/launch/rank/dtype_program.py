"""A 2-device local program: all_reduce + all_gather for every supported dtype."""
import numpy as np

import comm_cases

TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
         "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "bool": "i1"}


def program() -> str:
    args, res, body, rets = [], [], [], []
    for k, (name, t) in enumerate(TYPES.items()):
        op = "or" if t == "i1" else "add"
        args.append(f'%a{k}: tensor<2x3x{t}> {{sdy.sharding = #sdy.sharding<@mesh, [{{"x"}}, {{}}]>, '
                    f'rhino.global_type = tensor<4x3x{t}>}}')
        res += [f'tensor<2x3x{t}> {{sdy.sharding = #sdy.sharding<@mesh, [{{}}, {{}}]>}}',
                f'tensor<4x3x{t}> {{sdy.sharding = #sdy.sharding<@mesh, [{{}}, {{}}]>}}']
        body.append(f'''
    %r{k} = "stablehlo.all_reduce"(%a{k}) ({{
    ^bb0(%p: tensor<{t}>, %q: tensor<{t}>):
      %s = stablehlo.{op} %p, %q : tensor<{t}>
      stablehlo.return %s : tensor<{t}>
    }}) {{replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = {2 * k + 1}, type = 1>, use_global_device_ids}} : (tensor<2x3x{t}>) -> tensor<2x3x{t}>
    %g{k} = "stablehlo.all_gather"(%a{k}) {{all_gather_dim = 0 : i64, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>, channel_handle = #stablehlo.channel_handle<handle = {2 * k + 2}, type = 1>, use_global_device_ids}} : (tensor<2x3x{t}>) -> tensor<4x3x{t}>''')
        rets += [(f"%r{k}", f"tensor<2x3x{t}>"), (f"%g{k}", f"tensor<4x3x{t}>")]
    return f'''module @dtypes attributes {{mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32}} {{
  sdy.mesh @mesh = <["x"=2]>
  func.func public @main({", ".join(args)}) -> ({", ".join(res)}) {{{"".join(body)}
    return {", ".join(v for v, _ in rets)} : {", ".join(t for _, t in rets)}
  }}
}}
'''


def inputs() -> list[np.ndarray]:
    return [comm_cases.value(k, (4, 3), name) for k, name in enumerate(TYPES)]


def check(outs: list[np.ndarray], xs: list[np.ndarray]) -> None:
    """outs: global outputs (r0, g0, r1, g1, ...)."""
    for k, name in enumerate(TYPES):
        x = xs[k]
        want = comm_cases.reduce_ref("sum", [x[:2], x[2:]])
        assert outs[2 * k].dtype == x.dtype, name
        assert np.array_equal(outs[2 * k].astype(np.float64), want.astype(np.float64)), name
        assert np.array_equal(outs[2 * k + 1], x), name
