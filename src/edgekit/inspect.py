"""What is inside any .tflite (int8, uint8 or float, made by any converter): per-op shapes,
parameters, MACs and quantization, plus totals. The result is plain JSON-serializable data.

Counting rules (also in the CLI's table caption):
- params of an op: elements of its constant inputs (weights, biases, constant operands), except
  int32/int64 constants other than a bias: those are shapes, axes or paddings. Total params count each constant tensor once, even if shared.
- MACs (multiply-accumulates), batch included:
    CONV_2D            N*Ho*Wo*Cout * kh*kw*Cin   (Cin from the filter, so grouped convs count right)
    DEPTHWISE_CONV_2D  N*Ho*Wo*C*M  * kh*kw
    FULLY_CONNECTED    rows * out * in            (rows = 1 for a batch-1 model)
    TRANSPOSE_CONV     N*Hi*Wi*Cin  * kh*kw*Cout
  every other op counts 0 (pooling, adds and activations are cheap next to these).
"""
from __future__ import annotations

import math

from ai_edge_litert import schema_py_generated as fb

from .tflite_file import (builtin_name, is_constant, quantization_kind, read_model, tensor_type_name,
                          text)

WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")  # filter is input 1
BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def _shape(t: fb.TensorT) -> list[int]:
    return [int(d) for d in (t.shape if t.shape is not None else [])]


def _size(shape: list[int]) -> int:
    return math.prod(max(d, 1) for d in shape)  # -1 (unknown) counts as 1; Python ints never overflow


def _quant(t: fb.TensorT) -> dict | None:
    """The tensor's quantization, or None for a float tensor."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = [float(s) for s in q.scale]
    zps = [int(z) for z in (q.zeroPoint if q.zeroPoint is not None else [])] or [0]
    out = {"dtype": tensor_type_name(t.type)}
    if len(scale) == 1:
        return dict(out, scheme="per-tensor", scale=scale[0], zero_point=zps[0])
    # per channel: summarize (person_detect has hundreds of channels per layer)
    return dict(out, scheme="per-channel", axis=int(q.quantizedDimension), channels=len(scale),
                scale_min=min(scale), scale_max=max(scale),
                zero_point=zps[0] if len(set(zps)) == 1 else zps)


def _macs(kind: str, ins: list[list[int]], out: list[int]) -> int:
    if not out or len(ins) < 2:
        return 0
    w = ins[1]
    if kind == "CONV_2D" and len(w) == 4 and len(out) == 4:
        n, ho, wo, cout = out
        return n * ho * wo * cout * w[1] * w[2] * w[3]
    if kind == "DEPTHWISE_CONV_2D" and len(w) == 4 and len(out) == 4:
        n, ho, wo, cout = out
        return n * ho * wo * cout * w[1] * w[2]
    if kind == "FULLY_CONNECTED" and len(w) == 2:
        rows = _size(out) // max(w[0], 1)
        return rows * w[0] * w[1]
    if kind == "TRANSPOSE_CONV" and len(ins) >= 3 and len(ins[2]) == 4:  # inputs: shape, filter, x
        n, hi, wi, cin = ins[2]
        return n * hi * wi * cin * ins[1][1] * ins[1][2] * ins[1][0]
    return 0


def _tensor_info(t: fb.TensorT) -> dict:
    return {"name": text(t.name), "shape": _shape(t), "dtype": tensor_type_name(t.type), "quantization": _quant(t)}


def inspect_model(data: bytes, name: str = "model") -> dict:
    """Per-op and total facts about a .tflite file; see the module docstring for the counting rules."""
    model = read_model(data, name)
    ops, seen_consts = [], set()
    totals = {"ops": 0, "params": 0, "macs": 0}
    types: dict[str, dict[str, int]] = {"activations": {}, "constants": {}}
    for s, sg in enumerate(model.subgraphs):
        tensors = sg.tensors or []
        for t in tensors:
            group = "constants" if is_constant(model, t) else "activations"
            kind = tensor_type_name(t.type)
            types[group][kind] = types[group].get(kind, 0) + 1
        for i, op in enumerate(sg.operators or []):
            kind = builtin_name(model, op.opcodeIndex)
            inputs = [int(k) for k in (op.inputs if op.inputs is not None else [])]
            outputs = [int(k) for k in (op.outputs if op.outputs is not None else [])]
            in_shapes = [_shape(tensors[k]) if k >= 0 else None for k in inputs]
            out_shapes = [_shape(tensors[k]) for k in outputs]
            params = 0
            for pos, k in enumerate(inputs):
                t = tensors[k] if k >= 0 else None
                if t is None or not is_constant(model, t):
                    continue
                if tensor_type_name(t.type) in ("int32", "int64") and pos != BIAS_INPUT.get(kind):
                    continue  # a shape, axes or paddings, not a learned parameter
                params += _size(_shape(t))
                if (s, k) not in seen_consts:
                    seen_consts.add((s, k))
                    totals["params"] += _size(_shape(t))
            macs = _macs(kind, [x or [] for x in in_shapes], out_shapes[0] if out_shapes else [])
            weights = tensors[inputs[1]] if kind in WEIGHTED and len(inputs) > 1 and inputs[1] >= 0 else None
            if kind == "DEQUANTIZE" and inputs and is_constant(model, tensors[inputs[0]]):
                weights = tensors[inputs[0]]  # weight-only quantization: float16 or int8 weights
            ops.append({
                "index": i, "subgraph": s, "op": kind,
                "name": text(tensors[outputs[0]].name) if outputs else "",
                "input_shapes": in_shapes, "output_shapes": out_shapes,
                "params": params, "macs": macs,
                "output_quantization": _quant(tensors[outputs[0]]) if outputs else None,
                "weight_dtype": tensor_type_name(weights.type) if weights is not None else None,
                "weight_quantization": _quant(weights) if weights is not None else None,
            })
            totals["ops"] += 1
            totals["macs"] += macs
    sg = model.subgraphs[0]
    weight_bytes = sum(len(b.data) for b in model.buffers or [] if b.data is not None)
    return {
        "name": name,
        "size_bytes": len(data),
        "weight_bytes": int(weight_bytes),
        "description": text(model.description),
        "quantization": quantization_kind(model),
        "subgraphs": len(model.subgraphs),
        "inputs": [_tensor_info(sg.tensors[i]) for i in sg.inputs],
        "outputs": [_tensor_info(sg.tensors[i]) for i in sg.outputs],
        "tensor_types": types,
        "totals": totals,
        "ops": ops,
    }


# -- the CLI's view ------------------------------------------------------------------------------

def _q_text(q: dict | None) -> str:
    if q is None:
        return ""
    if q["scheme"] == "per-tensor":
        return f"s={q['scale']:.3g} zp={q['zero_point']}"
    return f"per-channel ({q['channels']}) s={q['scale_min']:.2g}..{q['scale_max']:.2g}"


def _q_cell(q: dict | None, dtype: str = "float") -> str:
    """Output cells show scale and zero point (the type is in the summary); weight cells the type too."""
    if q is None:
        return dtype
    if q["scheme"] == "per-tensor":
        return f"{q['scale']:.3g}, {q['zero_point']}" if dtype == "float" else f"{q['dtype']} s={q['scale']:.3g}"
    return f"{q['dtype']} per-ch ({q['channels']})"


def _dims(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _summary(d: dict):
    from rich.table import Table
    t = Table(title=d["name"], show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("size", f"{d['size_bytes']:,} bytes ({d['weight_bytes']:,} in buffers)")
    t.add_row("quantization", d["quantization"])
    for kind in ("inputs", "outputs"):
        for x in d[kind]:
            t.add_row(kind[:-1], f"{x['name']} {x['shape']} {x['dtype']} {_q_text(x['quantization'])}")
    tot = d["totals"]
    t.add_row("totals", f"{tot['ops']} ops, {tot['params']:,} params, {tot['macs']:,} MACs")
    t.add_row("tensors", ", ".join(f"{g}: " + " ".join(f"{k}×{v}" for k, v in sorted(c.items()))
                                   for g, c in d["tensor_types"].items() if c))
    return t


def _ops_table(d: dict, wide: bool):
    """One row per op. Narrow terminals drop the quantization columns rather than mangle numbers."""
    from rich import box
    from rich.table import Table
    caption = "params: weights + biases; MACs: conv, depthwise, fully connected, transpose conv (others 0)"
    t = Table(box=box.SIMPLE_HEAD, padding=(0, 1), caption=caption + ("; quant: scale, zero point" if wide else ""))
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("op", no_wrap=True)
    t.add_column("layer", overflow="ellipsis", no_wrap=True, max_width=28 if wide else 16)
    t.add_column("output", no_wrap=True)
    t.add_column("params", justify="right", no_wrap=True)
    t.add_column("MACs", justify="right", no_wrap=True)
    if wide:
        t.add_column("output quant", no_wrap=True)
        t.add_column("weights", no_wrap=True)
    for op in d["ops"]:
        row = [str(op["index"]) if d["subgraphs"] == 1 else f"{op['subgraph']}:{op['index']}",
               op["op"], op["name"].split(";")[0], " ".join(_dims(s) for s in op["output_shapes"]),
               f"{op['params']:,}", f"{op['macs']:,}"]
        if wide:
            row += [_q_cell(op["output_quantization"]),
                    _q_cell(op["weight_quantization"], op["weight_dtype"]) if op["weight_dtype"] else ""]
        t.add_row(*row)
    return t


class _InspectView:
    """Renders to the console's width: the per-op table needs ~130 columns for everything."""

    def __init__(self, d: dict):
        self.d = d

    def __rich_console__(self, console, options):
        yield _summary(self.d)
        yield _ops_table(self.d, wide=options.max_width >= 130)


def render_inspect(d: dict):
    """A rich renderable for `edgekit inspect`: a summary, then one table row per op."""
    return _InspectView(d)
