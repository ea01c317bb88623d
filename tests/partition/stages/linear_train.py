"""A hand-written training step of a linear network, for the stage-planning tests.

    h0 = tanh(x);  h_{l+1} = h_l @ w_l              forward, x (B, D), w_l (D, D)
    loss = sum(h_L * h_L)                           so dy = h_L (the 1/2 dropped)
    dw_l = h_l^T @ g_{l+1};  g_l = g_{l+1} @ w_l^T   backward, g_L = h_L
    u_l = w_l - 0.1 * dw_l                          the update
Every op has a known name (its result's), so tests can address ops by name; the top-level
op order is `names`.
"""
from rhino_mlir import ir as I
from rhino_mlir.analysis import rules


def train_step(layers: int = 3, batch: int = 8, width: int = 16) -> tuple[str, list[str]]:
    T, W = f"tensor<{batch}x{width}xf32>", f"tensor<{width}x{width}xf32>"
    lines, names = [], []

    def op(name, text):
        lines.append(f"  %{name} = {text}")
        names.append(name)

    def dot(a, b, ca, cb, ta, tb, tr):
        return f"stablehlo.dot_general %{a}, %{b}, contracting_dims = [{ca}] x [{cb}] : ({ta}, {tb}) -> {tr}"

    op("h0", f"stablehlo.tanh %x : {T}")
    for l in range(layers):
        op(f"h{l + 1}", dot(f"h{l}", f"w{l}", 1, 0, T, W, T))
    op("sq", f"stablehlo.multiply %h{layers}, %h{layers} : {T}")
    op("zero", "stablehlo.constant dense<0.0> : tensor<f32>")
    op("loss", f"stablehlo.reduce(%sq init: %zero) applies stablehlo.add across dimensions = [0, 1] "
               f": ({T}, tensor<f32>) -> tensor<f32>")
    g = f"h{layers}"
    for l in reversed(range(layers)):
        op(f"dw{l}", dot(f"h{l}", g, 0, 0, T, T, W))           # sums over the batch
        if l:
            op(f"g{l}", dot(g, f"w{l}", 1, 1, T, W, T))
            g = f"g{l}"
    op("lr", f"stablehlo.constant dense<0.1> : {W}")
    for l in range(layers):
        op(f"s{l}", f"stablehlo.multiply %lr, %dw{l} : {W}")
        op(f"u{l}", f"stablehlo.subtract %w{l}, %s{l} : {W}")
    args = ", ".join([f"%w{l}: {W}" for l in range(layers)] + [f"%x: {T}"])
    rt = ", ".join([W] * layers + ["tensor<f32>"])
    res = ", ".join([f"%u{l}" for l in range(layers)] + ["%loss"])
    return f"func.func @main({args}) -> ({rt}) {{\n" + "\n".join(lines) + f"\n  return {res} : {rt}\n}}\n", names


def parse(text: str):
    """The module with Shardy's rules attached (what microbatch.analyze expects)."""
    ctx = I.new_context()
    m = I.parse_module(text, ctx)
    with ctx, I.ir.Location.unknown():
        rules.populate(m)
    return m
