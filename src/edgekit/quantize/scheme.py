"""The TFLite int8 quantization scheme: from float ranges to scales, zero points and int tensors.

Rules (TFLite's int8 spec, as both LiteRT and TFLite Micro accept them):
- activations: asymmetric int8, the range widened to include 0, scale = (max - min) / 255,
  zero point = round(-128 - min / scale); a range under 1e-6 is widened to [-5e-7, 5e-7] as TF's converter does;
- weights: symmetric int8 in [-127, 127], one scale per output channel
  (dimension 0 for conv and dense, 3 for depthwise);
- bias: int32, scale = input scale * weight scale per channel, zero point 0;
- max/avg pooling, reshape, pad and concatenation keep their input's parameters;
- softmax and sigmoid: scale 1/256, zero point -128; tanh: scale 1/128, zero point 0;
- gather (an embedding): the table is asymmetric int8 per tensor, and the output keeps the table's
  parameters (GATHER copies bytes); its int32 ids input is not quantized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EdgekitError
from ..graph import Graph

MIN_RANGE = np.float32(1e-9)  # a weight channel that is all 0 still needs a non-zero scale
# LiteRT and TFLite Micro quantize a fused ReLU6's bound 6.0 into the output's scale as an int32 when
# loading, and refuse the model below a scale of 6 / 2^31 (no_integer_overflow_from_quantization).
# TF's converter widens every range narrower than 1e-6 to include [-5e-7, 5e-7] (scale 1e-6 / 255 =
# 3.9e-9) "to prevent extremely small scales and large quantized integers"; so does edgekit.
NEAR_ZERO_RANGE = np.float32(1e-6)
# TFLite Micro's int8 SOFTMAX aborts the process in Prepare unless beta x input scale x 2^26 > 1
# (PreprocessSoftmaxScaling -> QuantizeMultiplierGreaterThanOne); LiteRT does not check. So logits that
# vanish get a range of at least this / beta (scale 2^-25 / beta): differences this small do not move
# a 1/256 output step anyway.
SOFTMAX_MIN_RANGE = 255 * 2.0**-25
# TFLite's int8 kernels turn ratios of scales into a 32-bit multiplier and a shift of at most 31, and
# multiply scales by 2^20 or more in float32; past these bounds LiteRT aborts the whole process
# (measured: an ADD whose input reaches 1e35 aborts in allocate_tensors). No trained model comes near.
MAX_ACTIVATION = 2.0**64   # largest |value| an activation may reach on the calibration set
MAX_MULTIPLIER = 2.0**31   # input scale x weight scale / output scale of a conv or dense layer
# TFLite's int8 ADD shifts inputs left by 20 bits, then needs 2 x max input scale / (2^20 x output scale) < 1:
# past that its Prepare aborts the whole process (QuantizeMultiplierSmallerThanOneExp), in LiteRT and TFLM.
MAX_ADD_RATIO = 2.0**19

# Ops whose output shares its input's parameters (no requantization at run time).
SAME_AS_INPUT = ("max_pool2d", "avg_pool2d", "reshape", "pad", "concat")
FIXED_OUTPUT = {"softmax": (1 / 256, -128), "sigmoid": (1 / 256, -128), "tanh": (1 / 128, 0)}


@dataclass
class QParams:
    """Quantization of one tensor. `values` is set for constants (int8 or int32 array)."""
    dtype: str                 # "int8" or "int32"
    scale: np.ndarray          # float32, one per channel or a single one
    zero_point: np.ndarray     # int64
    axis: int = 0              # the channel dimension when per-channel
    values: np.ndarray | None = None

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        shape = [1] * q.ndim
        if self.scale.size > 1:
            shape[self.axis] = -1
        return (q.astype(np.float32) - self.zero_point.reshape(shape)) * self.scale.reshape(shape)


def activation_params(rmin, rmax) -> QParams:
    rmin = np.minimum(np.float32(rmin), np.float32(0))
    rmax = np.maximum(np.float32(rmax), np.float32(0))
    if rmax - rmin <= NEAR_ZERO_RANGE:  # activations that vanish: TF's minimum range (see above)
        rmin, rmax = np.minimum(rmin, -NEAR_ZERO_RANGE / 2), np.maximum(rmax, NEAR_ZERO_RANGE / 2)
    span = rmax - rmin
    scale = np.float32(span / np.float32(255))
    zp = np.rint(np.float32(-128) - rmin / scale)
    return QParams("int8", np.array([scale], np.float32), np.array([int(zp)], np.int64))


def fixed_params(scale: float, zero_point: int) -> QParams:
    return QParams("int8", np.array([scale], np.float32), np.array([zero_point], np.int64))


def weight_params(w: np.ndarray, axis: int) -> QParams:
    """Per-channel symmetric int8 (narrow range [-127, 127])."""
    w = w.astype(np.float32, copy=False)
    other = tuple(d for d in range(w.ndim) if d != axis)
    bound = np.maximum(np.abs(w).max(axis=other), MIN_RANGE)
    scale = (bound / np.float32(127)).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return QParams("int8", scale, np.zeros(scale.size, np.int64), axis, q)


def dense_weight_params(w: np.ndarray) -> QParams:
    """Symmetric int8 with one scale for the whole tensor (narrow range [-127, 127])."""
    q = weight_params(w.reshape(1, -1), 0)
    q.values = q.values.reshape(w.shape)
    return q


def tensor_params(c: np.ndarray) -> QParams:
    """A constant operand of add/mul: asymmetric int8 per tensor from its own range."""
    p = activation_params(c.min(), c.max())
    p.values = np.clip(np.rint(c / p.scale[0] + p.zero_point[0]), -128, 127).astype(np.int8)
    return p


def bias_params(b: np.ndarray, input_scale: np.ndarray, weight_scale: np.ndarray) -> QParams:
    scale = (input_scale * weight_scale).astype(np.float32)
    q = np.rint(b.astype(np.float32) / scale)
    q = np.clip(q.astype(np.float64), -2**31, 2**31 - 1).astype(np.int32)  # float32 cannot hold 2**31-1
    return QParams("int32", scale, np.zeros(scale.size, np.int64), 0, q)


def _share_groups(graph: Graph) -> dict[str, str]:
    """Union-find: tensors that must share parameters map to one representative."""
    parent: dict[str, str] = {}

    def find(t):
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    for op in graph.ops:
        if op.kind in SAME_AS_INPUT:
            acts = [t for t in op.inputs if not graph.tensors[t].is_const] + op.outputs
            root = find(acts[0])
            for t in acts[1:]:
                parent[find(t)] = root
    return {t: find(t) for t in graph.activations()}


def _check_finite(op, what: str, values) -> None:
    """NaN or infinity has no int8 scale: name the layer instead of writing garbage."""
    values = np.asarray(values, np.float64)
    with np.errstate(over="ignore"):
        span = np.float32(values.max(initial=0)) - np.float32(values.min(initial=0))
    if not (np.isfinite(values).all() and np.isfinite(span)):
        raise EdgekitError(f"layer '{op.name}' ({op.kind}) has NaN, infinite or float32-overflowing values in "
                           f"{what}; fix the model (retrain, or check its export) before converting it")


def quantize_graph(graph: Graph, ranges: dict[str, tuple[float, float]],
                   per_tensor_dense: bool = False) -> dict[str, QParams]:
    """Parameters for every tensor of the graph, given each activation's calibrated range.

    Dense (fully connected) weights get one scale per output, as TensorFlow's converter (2.21) and
    ai-edge-quantizer write them, unless per_tensor_dense: TFLite Micro before 2024 (the Arduino
    library the Nano builds with) applies only the first scale of a per-channel dense layer."""
    producer = graph.producer()
    for t, (lo, hi) in ranges.items():
        if t in producer:
            _check_finite(producer[t], f"its output's calibrated range ({lo}, {hi})", (lo, hi))
        if max(abs(lo), abs(hi)) > MAX_ACTIVATION:
            where = f"layer '{producer[t].name}' ({producer[t].kind})" if t in producer else f"the input '{t}'"
            raise EdgekitError(f"{where} reaches {max(abs(lo), abs(hi)):.3g} on the calibration set, beyond the "
                               f"{MAX_ACTIVATION:.3g} int8 kernels can scale; check the weights for huge values "
                               "and that the inputs are scaled as in training")
    for op in graph.ops:
        for t in op.inputs:
            if graph.tensors[t].is_const and graph.tensors[t].data.dtype.kind in "fiub":
                _check_finite(op, f"'{t}'", graph.tensors[t].data)
    params: dict[str, QParams] = {}
    fixed = {op.outputs[0]: FIXED_OUTPUT[op.kind] for op in graph.ops if op.kind in FIXED_OUTPUT}
    for op in (op for op in graph.ops if op.kind == "gather"):  # rows copied as they are stored
        table = params[op.inputs[0]] = tensor_params(graph.tensors[op.inputs[0]].data)
        fixed[op.outputs[0]] = (float(table.scale[0]), int(table.zero_point[0]))
    ids = {t for t in graph.inputs if graph.tensors[t].dtype != "float32"}  # token ids stay int32
    group = {t: root for t, root in _share_groups(graph).items() if t not in ids}
    union: dict[str, list[float]] = {}
    for t, root in group.items():
        lo, hi = ranges[t]
        u = union.setdefault(root, [lo, hi])
        u[0], u[1] = min(u[0], lo), max(u[1], hi)
    for op in (op for op in graph.ops if op.kind == "softmax" and op.attrs.get("beta", 1.0) > 0):
        u = union[group[op.inputs[0]]]
        lo, hi, need = min(u[0], 0.0), max(u[1], 0.0), SOFTMAX_MIN_RANGE / op.attrs.get("beta", 1.0)
        if hi - lo < need:  # vanishing logits only: see SOFTMAX_MIN_RANGE
            u[0], u[1] = min(lo, -need / 2), max(hi, need / 2)
    fixed_root = {group[t]: v for t, v in fixed.items()}  # a reshape after softmax shares its 1/256
    for t, root in group.items():
        params[t] = fixed_params(*fixed_root[root]) if root in fixed_root else activation_params(*union[root])

    for op in graph.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            x, w, b = op.inputs
            if op.kind == "fully_connected" and per_tensor_dense:
                params[w] = dense_weight_params(graph.tensors[w].data)
            else:
                params[w] = weight_params(graph.tensors[w].data, 3 if op.kind == "depthwise_conv2d" else 0)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):  # beyond int32: clipped
                params[b] = bias_params(graph.tensors[b].data, params[x].scale, params[w].scale)
            multiplier = float((params[x].scale.astype(np.float64) * params[w].scale / params[op.outputs[0]].scale).max())
            if multiplier >= MAX_MULTIPLIER:
                raise EdgekitError(f"layer '{op.name}' ({op.kind}) needs a rescaling by {multiplier:.3g}, beyond the "
                                   f"2^31 int8 kernels represent: a channel of '{w}' is huge next to what the layer "
                                   "outputs; check the weights")
        else:
            for t in op.inputs:
                if graph.tensors[t].is_const and t not in params:
                    params[t] = tensor_params(graph.tensors[t].data)
    for op in graph.ops:
        if op.kind == "add":
            ratio = max(float(params[t].scale.max()) for t in op.inputs) / float(params[op.outputs[0]].scale.max())
            if ratio >= MAX_ADD_RATIO:
                raise EdgekitError(f"layer '{op.name}' (add): an input's int8 scale is {ratio:.3g}x its output's, "
                                   "beyond the 2^19 TFLite's int8 ADD can rescale (the input is huge next to what the "
                                   "layer outputs); check the weights feeding it for huge values")
    return params
