"""TFLite Micro's tensor arena, planned in Python by TFLite Micro's own rules.

TFLite Micro (TFLM) runs a model inside one byte array, the *tensor arena*. It fills the
arena from both ends:

- the **head** (from the start) holds what changes while the model runs: every activation
  tensor and the scratch buffers kernels ask for. Buffers whose lifetimes do not overlap
  share bytes; a greedy planner decides who goes where.
- the **tail** (from the end, growing down) holds what lives as long as the interpreter:
  one small struct per tensor and per op, each op's parameters and "OpData", per-channel
  requantization arrays, the input/output TfLiteTensors and the allocator objects.

`arena_used_bytes()` = head + tail, and that is what a board needs (`kTensorArenaSize`).
`plan_arena` reproduces it step by step, so it runs where the tflite-micro wheel does not
(macOS, Windows, aarch64) and predicts boards (32-bit, other kernel libraries) exactly:

  1. read the model: tensors, ops, which tensors need arena memory;
  2. lifetimes: when each tensor is created and last used (`_lifetimes`);
  3. what each op's kernel asks for: parameters, OpData, persistent arrays, scratch
     (`_kernel_needs`; the kernel library matters: CMSIS-NN, ESP-NN);
  4. the greedy planner places tensors and scratch in the head (`greedy_plan`);
  5. TFLM's allocator is replayed allocation by allocation, with each one's alignment
     (`_replay`): that gives the tail, and what loading needs at its most (`minimum`).

Sizes of TFLM's structs differ by CPU (`StructSizes`): "host" is x86-64 as measured with the
tflite-micro wheel (a 2025+ TFLM built with USE_TFLM_COMPRESSION, with the
RecordingMicroAllocator); "arm" is arm-none-eabi GCC (32-bit, short enums) and "xtensa" the
ESP32-S3 (32-bit, int-sized enums), both struct layouts of a plain MicroInterpreter of
tflite-micro 90b983c2. Kernel rules follow that TFLM, CMSIS-NN 4ab83cc3 (TFLM's pin),
esp-tflite-micro 99f49e14, and esp-nn v1.1.2 and d45b843c (v1.2.3).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from ..errors import EdgekitError
from ..targets import load_board
from ..tflite_check import ITEM_BYTES
from ..tflite_file import TFLiteModel, builtin_name, is_constant, model_of, tensor_type_name, text

ALIGN = 16  # MicroArenaBufferAlignment(): every head buffer and kernel buffer is 16-aligned


def round_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------------------------
# 1. The sizes of TFLite Micro's structs on each kind of CPU, and the kernel libraries
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StructSizes:
    """What TFLM's allocator puts in the arena on one CPU: its structs' sizes and alignments."""
    name: str
    pointer: int                # sizeof(void*) = alignof of every struct holding a pointer
    allocator_objects: int      # the arena allocator, greedy planner and MicroAllocator
    builtin_allocator: int      # MicroBuiltinDataAllocator
    subgraph_allocations: int   # SubgraphAllocations, one per subgraph
    eval_tensor: int            # TfLiteEvalTensor, one per tensor (weights too)
    node: int                   # NodeAndRegistration, one per op
    tflite_tensor: int          # TfLiteTensor, one per model input and output
    affine_quantization: int    # TfLiteAffineQuantization, per quantized input/output
    scratch_handle: int         # ScratchBufferHandle, one per scratch buffer
    allocation_info: int        # AllocationInfo (temp, while planning)
    scratch_request: int        # internal::ScratchBufferRequest (head, while preparing)
    params: dict                # op -> (sizeof, alignof) of its builtin parameters
    opdata: dict                # kernel library -> op -> sizeof(OpData) allocated in Init


_PARAMS_32 = {"CONV_2D": (28, 4), "DEPTHWISE_CONV_2D": (28, 4), "AVERAGE_POOL_2D": (40, 4),
              "MAX_POOL_2D": (40, 4), "RESHAPE": (36, 4), "SOFTMAX": (4, 4),
              "CONCATENATION": (8, 4), "MEAN": (1, 1), "SUM": (1, 1), "REDUCE_MAX": (1, 1)}
# OpData of TFLM's reference kernels on 32-bit targets (no USE_TFLM_COMPRESSION).
_OPDATA_32 = {"CONV_2D": 56, "DEPTHWISE_CONV_2D": 56, "FULLY_CONNECTED": 44,
              "AVERAGE_POOL_2D": 32, "MAX_POOL_2D": 32, "SOFTMAX": 56, "ADD": 60, "MUL": 36,
              "CONCATENATION": 40, "PAD": 56, "PADV2": 56, "MEAN": 44, "SUM": 44,
              "RELU": 28, "RELU6": 8, "LOGISTIC": 16, "TANH": 16,
              "HARD_SWISH": 20}  # HardSwishParams: 3 int16, 2 int, 1 int16, padded

STRUCT_SIZES = {
    # x86-64, measured with the tflite-micro wheel (print_allocations on one-op models).
    "host": StructSizes(
        "host", pointer=8, allocator_objects=456, builtin_allocator=16, subgraph_allocations=16,
        eval_tensor=24, node=64, tflite_tensor=64, affine_quantization=24, scratch_handle=8,
        allocation_info=32, scratch_request=16,
        params={**_PARAMS_32, "FULLY_CONNECTED": (32, 8), "ADD": (8, 4), "MUL": (4, 4)},
        opdata={"reference": {"CONV_2D": 80, "DEPTHWISE_CONV_2D": 80, "FULLY_CONNECTED": 72,
                              "AVERAGE_POOL_2D": 32, "MAX_POOL_2D": 32, "SOFTMAX": 80,
                              "ADD": 60, "MUL": 36, "CONCATENATION": 80, "PAD": 56,
                              "PADV2": 56, "MEAN": 44, "SUM": 44, "RELU": 28, "RELU6": 8,
                              "LOGISTIC": 16, "TANH": 16, "HARD_SWISH": 20}}),
    # arm-none-eabi GCC, -fshort-enums: enum fields take one byte.
    "arm": StructSizes(
        "arm", pointer=4, allocator_objects=116, builtin_allocator=8, subgraph_allocations=8,
        eval_tensor=12, node=32, tflite_tensor=32, affine_quantization=12, scratch_handle=4,
        allocation_info=24, scratch_request=12,
        params={**_PARAMS_32, "FULLY_CONNECTED": (5, 1), "ADD": (2, 1), "MUL": (1, 1)},
        opdata={"reference": _OPDATA_32,
                # CMSIS-NN wrappers add a scratch-buffer index (and more for FC).
                "cmsis-nn": {**_OPDATA_32, "CONV_2D": 60, "DEPTHWISE_CONV_2D": 60,
                             "FULLY_CONNECTED": 80, "AVERAGE_POOL_2D": 36,
                             "MAX_POOL_2D": 36, "SOFTMAX": 64}}),
    # Xtensa (ESP32-S3): 32-bit, enums are int-sized.
    "xtensa": StructSizes(
        "xtensa", pointer=4, allocator_objects=116, builtin_allocator=8, subgraph_allocations=8,
        eval_tensor=12, node=32, tflite_tensor=40, affine_quantization=12, scratch_handle=4,
        allocation_info=24, scratch_request=12,
        params={**_PARAMS_32, "FULLY_CONNECTED": (16, 4), "ADD": (8, 4), "MUL": (4, 4)},
        opdata={"reference": _OPDATA_32,
                # esp-tflite-micro: conv allocates sizeof(OpDataConv), depthwise and softmax
                # a NodeData with one more int (the scratch index).
                "esp-nn": {**_OPDATA_32, "DEPTHWISE_CONV_2D": 60, "SOFTMAX": 64}}),
}

KERNELS = {"host": ("reference",), "arm": ("reference", "cmsis-nn-dsp", "cmsis-nn-m0"),
           "xtensa": ("reference", "esp-nn-1.2", "esp-nn-1.1")}
# A board descriptor's `kernels` (targets/*.toml) -> the kernel library its TFLM build links:
# CMSIS-NN for a Cortex-M4/M7 (with DSP), ESP-NN 1.2 as esp-tflite-micro resolves it today.
# Boards with TFLM's reference kernels have none.
LIBRARY = {"cmsis-nn": "cmsis-nn-dsp", "esp-nn": "esp-nn-1.2"}


def kernel_library(kernels: str) -> str | None:
    """The arena kernel library for a descriptor's `kernels` name ("cmsis-nn" -> "cmsis-nn-dsp");
    None when the board runs TFLM's reference kernels."""
    return LIBRARY.get(kernels)


# ---------------------------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------------------------

@dataclass
class Placement:
    """One buffer in the head: an activation tensor or a kernel's scratch buffer."""
    name: str
    kind: str                 # "tensor" or "scratch"
    index: int                # tensor index in the model, or scratch request number
    offset: int               # bytes from the start of the head
    size: int                 # bytes, rounded up to 16
    first: int                # first scope it is live: 0 = model inputs, op i runs in scope i+1
    last: int                 # last scope it is live (inclusive)
    op: int | None = None     # scratch only: the op that asked for it


@dataclass
class ArenaPlan:
    """TFLite Micro's arena for one model on one arch and kernel library.

    `total` = head + tail = TFLM's arena_used_bytes() (what print_allocations reports),
    measured in an arena whose end is 16-aligned.
    `minimum` is the smallest arena_size that loads and runs the model (arena start aligned).
    It is usually `total` give or take up to 15 B (where the arena ends changes the tail's
    padding), but for tiny models it is more: the temporaries TFLM needs while preparing the
    ops can exceed the head (tflite-micro PR 798). Give a board max(total, minimum).
    """
    arch: str
    kernels: str
    head: int
    tail: int
    total: int
    minimum: int
    scratch: list[int]                 # per op: scratch bytes it asked for (each rounded to 16)
    peak_op: int                       # op during which the head in use is highest
    peak_ops: list[int]                # per op: highest head byte in use while it runs
    placements: list[Placement]        # where every head buffer lives, and when
    tail_items: list[tuple[str, int]]  # (what, bytes with alignment padding), in order
    notes: list[str] = field(default_factory=list)

    def tail_summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for what, n in self.tail_items:
            out[what] = out.get(what, 0) + n
        return out

    def describe(self) -> str:
        lines = [f"arena for {self.arch} / {self.kernels}: {self.total:,} B = head {self.head:,}"
                 f" + tail {self.tail:,}"
                 + (f"; smallest working arena {self.minimum:,} B" if self.minimum != self.total
                    else "")]
        if self.peak_ops:
            lines.append(f"  head peaks during op {self.peak_op}: "
                         f"{self.peak_ops[self.peak_op]:,} B in use")
        for what, n in self.tail_summary().items():
            lines.append(f"  tail: {what:32s} {n:7,} B")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Reading the model
# ---------------------------------------------------------------------------------------------

@dataclass
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    nbytes: int
    const: bool               # data in the flatbuffer: never in the arena
    variable: bool
    channels: int             # number of quantization scales (0 = not quantized)


@dataclass
class _Op:
    index: int
    name: str                 # "CONV_2D", ... (tflite_file.builtin_name)
    inputs: list[int]
    outputs: list[int]
    options: object


@dataclass
class _Model:
    """The planner's view of the main subgraph, made from the model's one parse."""
    tensors: list[_Tensor]
    ops: list[_Op]
    inputs: list[int]
    outputs: list[int]
    offline: list[int] | None  # "OfflineMemoryAllocation" offsets, -1 = plan online


def _view(m: fb.ModelT) -> _Model:
    if not m.subgraphs:
        raise EdgekitError("the model has no subgraph; export it again")
    if len(m.subgraphs) > 1:
        raise EdgekitError(f"the model has {len(m.subgraphs)} subgraphs (control flow); "
                           "the arena planner handles single-subgraph models only")
    sg = m.subgraphs[0]
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise EdgekitError(f"tensor {i} has a dynamic shape {shape}; TFLite Micro needs "
                               "fixed shapes: export with batch 1")
        q = t.quantization
        channels = len(q.scale) if (q is not None and q.scale is not None and len(q.scale)
                                    and q.zeroPoint is not None and len(q.zeroPoint)) else 0
        # TFLM unpacks sub-byte types to one byte per element; types without a size count 1
        item = max(1, ITEM_BYTES.get(tensor_type_name(t.type), 1))
        nbytes = int(np.prod(shape, dtype=np.int64)) * item
        name = text(t.name) if t.name is not None else str(i)
        tensors.append(_Tensor(i, name, shape, nbytes, is_constant(m, t), bool(t.isVariable),
                               channels))
    ints = lambda xs: [int(x) for x in (xs if xs is not None else [])]  # noqa: E731
    ops = [_Op(i, builtin_name(m, o.opcodeIndex), ints(o.inputs), ints(o.outputs), o.builtinOptions)
           for i, o in enumerate(sg.operators or [])]
    offline = None
    for md in m.metadata or []:
        if text(md.name) == "OfflineMemoryAllocation":
            words = np.frombuffer(bytes(m.buffers[md.buffer].data), dtype="<i4")
            offline = [int(x) for x in words[3:3 + int(words[2])]]
            if len(offline) != len(tensors):
                raise EdgekitError(f"the model's OfflineMemoryAllocation lists {len(offline)} "
                                   f"offsets for {len(tensors)} tensors; TFLite Micro refuses it")
    return _Model(tensors, ops, ints(sg.inputs), ints(sg.outputs), offline)


# ---------------------------------------------------------------------------------------------
# 2. Lifetimes (micro_allocation_info.cc, MarkAllocationLifetimes)
# ---------------------------------------------------------------------------------------------

def _lifetimes(model: _Model) -> tuple[list[int], list[int]]:
    """(first, last) scope of every tensor; -1 = never touched.

    Scope 0 is "before the first op": model inputs (and outputs) are created there. Op i runs
    in scope i+1: its outputs are created and its inputs and outputs are last used there.
    Model outputs stay live to the last scope. Intervals are inclusive, so an op's inputs and
    outputs always coexist (TFLM never computes in place).
    """
    n = len(model.tensors)
    first, last = [-1] * n, [-1] * n
    for t in model.inputs + model.outputs:   # created at scope 0
        first[t] = last[t] = 0
    scope = 0
    for op in model.ops:
        scope += 1
        for t in op.outputs:                  # created by this op (overrides scope 0)
            first[t] = last[t] = scope
        for t in op.inputs + op.outputs:      # used by this op
            if t >= 0:
                last[t] = scope
    for t in model.outputs:                   # outputs live until the end
        last[t] = scope
    return first, last


# ---------------------------------------------------------------------------------------------
# 3. What each op's kernel asks for
# ---------------------------------------------------------------------------------------------

@dataclass
class _Needs:
    """What one op's kernel allocates, in the order it does so."""
    params: tuple[int, int] | None = None   # builtin parameters (sizeof, alignof), tail
    opdata: int | None = None               # Init: its OpData, tail, 16-aligned
    # Prepare, in order: ("temp", tensor index) = a temporary TfLiteTensor for that tensor
    # (head side, freed when Prepare ends); ("keep", what, bytes) = a tail buffer, 16-aligned
    prepare: list[tuple] = field(default_factory=list)
    scratch: list[int] = field(default_factory=list)  # RequestScratchBufferInArena, in order


def _out_and_padding(stride: int, dilation: int, size: int, k: int, padding: int):
    """(output size, leading padding) as TFLM's ComputePaddingHeightWidth computes them."""
    eff = (k - 1) * dilation + 1
    if padding == fb.Padding.SAME:
        out = (size + stride - 1) // stride
    else:
        out = (size + stride - eff) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


@dataclass
class _Conv:
    H: int
    W: int
    cin: int
    kh: int
    kw: int
    cout: int
    Ho: int
    Wo: int
    sh: int
    sw: int
    ph: int
    pw: int
    dilated: bool


def _conv_geometry(op: _Op, model: _Model) -> _Conv:
    x, w, y = (model.tensors[op.inputs[0]], model.tensors[op.inputs[1]],
               model.tensors[op.outputs[0]])
    o = op.options
    sh, sw = o.strideH or 1, o.strideW or 1
    dh, dw = o.dilationHFactor or 1, o.dilationWFactor or 1
    _, H, W, cin = x.shape
    kh, kw = w.shape[1], w.shape[2]
    Ho, ph = _out_and_padding(sh, dh, H, kh, o.padding)
    Wo, pw = _out_and_padding(sw, dw, W, kw, o.padding)
    return _Conv(H, W, cin, kh, kw, y.shape[-1], Ho, Wo, sh, sw, ph, pw, dh != 1 or dw != 1)


def _esp_conv_scratch(g: _Conv, version: str) -> int:
    """esp_nn_get_conv_scratch_size() on the ESP32-S3.

    1.1.x as in esp-nn's esp_nn_conv_esp32s3.c: the filter copied with channels padded to
    16, the input padded if the conv pads, 4 B per output channel, 32 B for alignment.
    1.2.x as in esp-nn d45b843c (v1.2.3): 64 B for alignment, an im2col path for
    few input channels, and a second filter copy (rows padded to 16) and input copy (padded
    to the output's extent) on the general path. The scratch copies the filter, so it can be
    larger than the activations.
    """
    if g.kh == 1 and g.kw == 1 and g.ph == 0 and g.pw == 0 and g.sh == 1 and g.sw == 1:
        c8 = round_up(g.cin, 8)
        inp = g.W * g.H * c8 if g.cin % 8 else 0
        transpose = 16 * c8 if g.W * g.H >= 8 else 0
        return inp + c8 * g.cout + transpose + (64 if version == "1.2" else 32)
    padded = (g.W + 2 * g.pw) * (g.H + 2 * g.ph) * g.cin if (g.pw or g.ph) else 0
    filter_copy = g.kh * g.kw * round_up(g.cin, 16) * g.cout
    if version == "1.1":
        return padded + filter_copy + 4 * g.cout + 32
    row, window = g.kw * g.cin, g.kh * g.kw * g.cin
    if row < 16 <= window:  # im2col path for few input channels
        return 4 * g.cout + g.cout * round_up(window, 16) + round_up(window, 16) + 96
    right = max(0, (g.Wo - 1) * g.sw + g.kw - g.pw - g.W)
    bottom = max(0, (g.Ho - 1) * g.sh + g.kh - g.ph - g.H)
    boundary = ((g.W + g.pw + right) * (g.H + g.ph + bottom) * g.cin
                if (g.pw or g.ph or right or bottom) else 0)
    return padded + boundary + filter_copy + round_up(row, 16) * g.kh * g.cout + 4 * g.cout + 64


def _esp_dw_scratch(g: _Conv, mult: int, version: str) -> int:
    """esp_nn_get_depthwise_conv_scratch_size() on the ESP32-S3, esp-nn v1.1.2 and v1.2.3 (the
    1.2 details of the padded-channel and generic paths follow later esp-nn sources)."""
    C, v12 = g.cin, version == "1.2"
    filt = g.kh * g.kw * C * mult
    if mult == 1 and C % 8 == 0:
        if g.kh == 3 and g.kw == 3:
            if C % 16 == 0:
                if g.pw or g.ph:
                    padw, padh = 2 * g.pw, 2 * g.ph
                else:
                    padw, padh = g.Wo * g.sw + 2 - g.W, g.Ho * g.sh + 2 - g.H
                if not (padw or padh):
                    return filt + 16
                full = (g.W + padw) * (g.H + padh) * C
                if v12 and full > 40 * 1024:  # 1.2 tiles big inputs by rows
                    return filt + (g.W + padw) * g.kh * C + 16
                return filt + full + 16
            if v12 and C >= 12:  # 1.2 pads the channels to 16 and runs the int8 path
                c16 = round_up(C, 16)
                tpw = 2 * g.pw + max(0, g.Wo * g.sw + 2 - g.W)
                tph = 2 * g.ph + max(0, g.Ho * g.sh + 2 - g.H)
                return 9 * c16 + (g.W + tpw) * (g.H + tph) * c16 + g.Wo * g.Ho * c16 + 64
            return 2 * (filt + g.W * g.H * C) + (32 if v12 else 16)
        return 2 * (filt + g.W * g.H * C) + 32 if v12 else 32
    if mult == 1 and C > 3:
        if not v12:
            return 32
        c8 = round_up(C, 8)
        inp_start = round_up(2 * g.kh * g.kw * c8, 16)
        out_start = round_up(inp_start + 2 * g.W * g.H * c8, 16)
        bias_start = round_up(out_start + g.Wo * g.Ho * c8, 16)
        return bias_start + 12 * c8 + 16
    if mult % 4 == 0:
        return 2 * (filt + g.W * g.H * C) + (32 if v12 else 16)
    return 32


def _kernel_needs(op: _Op, model: _Model, sizes: StructSizes, kernels: str) -> tuple[_Needs, bool]:
    """What op's kernel allocates; the bool says whether edgekit knows this op's sizes."""
    library = ("cmsis-nn" if kernels.startswith("cmsis-nn") else
               "esp-nn" if kernels.startswith("esp-nn") else "reference")
    opdata = sizes.opdata.get(library, sizes.opdata["reference"])
    kind = op.name
    known = kind in opdata or kind == "RESHAPE"
    n = _Needs(params=sizes.params.get(kind), opdata=opdata.get(kind))
    t = model.tensors
    ins = [i for i in op.inputs if i >= 0]
    temps = lambda *idx: [("temp", i) for i in idx]  # noqa: E731
    per_channel = "per-channel requantization"

    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        g = _conv_geometry(op, model)
        w = t[op.inputs[1]]
        channels = w.shape[0] if kind == "CONV_2D" else w.shape[3]
        # Prepare: output, input and filter as temporaries; the per-channel multiplier and
        # shift arrays (kept); then CalculateOpData* takes input, filter, bias, output again.
        n.prepare = (temps(op.outputs[0], ins[0], ins[1])
                     + [("keep", per_channel, 4 * channels)] * 2
                     + temps(*ins, op.outputs[0]))
        dsp = kernels == "cmsis-nn-dsp"
        if kind == "CONV_2D":
            if library == "cmsis-nn":  # arm_convolve_wrapper_s8_get_buffer_size
                one_by_one = g.kh == 1 and g.kw == 1 and g.ph == 0 and g.pw == 0 and not g.dilated
                n.scratch.append(0 if one_by_one else 4 * round_up(g.kh * g.kw * g.cin, 4))
            elif library == "esp-nn":
                n.scratch.append(_esp_conv_scratch(g, kernels[-3:]))
        else:
            mult = max(1, g.cout // max(1, g.cin))
            if library == "cmsis-nn" and dsp and mult == 1 and not g.dilated:
                # arm_depthwise_conv_3x3_s8 needs no buffer; the generic _opt kernel does
                small = g.kh == 3 and g.kw == 3 and g.ph <= 1 and g.pw <= 1
                n.scratch.append(0 if small else 2 * g.cin * g.kh * g.kw)
            elif library == "esp-nn":
                n.scratch.append(_esp_dw_scratch(g, mult, kernels[-3:]))
    elif kind == "FULLY_CONNECTED":
        w = t[op.inputs[1]]
        n.prepare = temps(*ins, op.outputs[0])
        if w.channels > 1:  # per-channel weights: arrays like conv's
            n.prepare += [("keep", per_channel, 4 * w.channels)] * 2
    else:
        n.prepare = temps(*ins, *op.outputs)
        if kind == "AVERAGE_POOL_2D" and kernels == "cmsis-nn-dsp":
            n.scratch.append(4 * t[op.outputs[0]].shape[-1])   # arm_avgpool_s8 sums per channel
        elif kind == "SOFTMAX" and library == "esp-nn":
            x = t[op.inputs[0]]
            n.scratch.append(4 * (x.shape[1] if len(x.shape) > 1 else x.shape[0]))
        elif kind in ("MEAN", "SUM"):
            x, axes, y = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
            n.prepare = temps(ins[0], op.outputs[0], ins[1]) * 2
            n.scratch += [4 * len(x.shape), 4 * int(np.prod(axes.shape, dtype=np.int64)),
                          4 * int(np.prod(y.shape, dtype=np.int64))]
    # Kernels request a scratch buffer only when they need one.
    n.scratch = [s for s in n.scratch if s > 0]
    return n, known


# ---------------------------------------------------------------------------------------------
# 4. The greedy planner (memory_planner/greedy_memory_planner.cc)
# ---------------------------------------------------------------------------------------------

def greedy_plan(sizes: list[int], first: list[int], last: list[int],
                fixed: list[int | None] | None = None, ties: str = "tflm") -> list[int]:
    """Offsets for buffers given in the order TFLM adds them (tensors by index, then scratch).

    Like TFLM's GreedyMemoryPlanner:
    - offline-planned buffers (`fixed`) keep their offsets and are placed first;
    - the others are taken largest first. TFLM fills its sort array from the back, so equal
      sizes end up in reverse order of adding (the last tensor first), and its bubble sort
      is stable. The tflite-micro wheel confirms this order; ties="forward" keeps the order of
      adding instead, to show what that assumption would change;
    - each buffer goes into the first gap, in offset order, between already placed buffers
      that are live at the same time as it, that is big enough; else after the last of them.
    """
    fixed = fixed or [None] * len(sizes)
    adding = range(len(sizes)) if ties == "forward" else reversed(range(len(sizes)))
    online = [i for i in adding if fixed[i] is None]
    online.sort(key=lambda i: -sizes[i])                 # stable, like TFLM's bubble sort
    order = [i for i in range(len(sizes)) if fixed[i] is not None] + online
    offsets = [0] * len(sizes)
    placed: list[tuple[int, int]] = []                   # (offset, buffer) in offset order
    for i in order:
        if fixed[i] is not None:
            offset = fixed[i]
        else:
            offset, prior_end = 0, None
            for o, j in placed:
                if first[j] > last[i] or first[i] > last[j]:
                    continue                             # never live together: ignore
                if prior_end is not None:
                    offset = max(offset, prior_end)
                if o - offset >= sizes[i]:
                    break                                # the gap before j is big enough
                prior_end = o + sizes[j]
            else:
                if prior_end is not None:
                    offset = max(offset, prior_end)
        offsets[i] = offset
        # equal offsets go after the ones already there, as in TFLM's linked list
        k = bisect.bisect_right([o for o, _ in placed], offset)
        placed.insert(k, (offset, i))
    return offsets


# ---------------------------------------------------------------------------------------------
# 5. Replaying TFLM's allocator (arena_allocator/single_arena_buffer_allocator.cc)
# ---------------------------------------------------------------------------------------------

class _Arena:
    """TFLM's arena allocator, replayed without memory: it only counts bytes.

    The tail grows down from the arena's end; each allocation moves it down by its size and
    then down to its alignment, so a small struct (alignment 4 or 8) can leave a gap before
    the next 16-aligned buffer. The gap is charged to the allocation that needed it, as TFLM's
    recording allocator does. `end_mod16` is the arena's end modulo 16 (0 for the usual
    arena whose size is a multiple of 16).

    The head side, from the arena's start, holds in turn: the scratch-buffer requests while
    ops prepare, each op's temporary TfLiteTensors, the planner's work area, and finally the
    memory plan. `need` is the smallest arena that has held everything so far.
    """

    def __init__(self, end_mod16: int = 0):
        self.r = end_mod16
        self.used = 0             # tail bytes
        self.head = 0             # the resizable buffer at the head's start
        self.temp = 0             # end of the temporaries above it
        self.need = 0
        self.items: list[tuple[str, int]] = []

    def keep(self, what: str, size: int, align: int) -> None:
        """A persistent (tail) allocation."""
        before = self.used
        self.used += size + (self.r - self.used - size) % align
        self.items.append((what, self.used - before))
        # TFLM only checks it stays above the head; below live temporaries it would overwrite
        # them (that crashes the wheel), so a working arena keeps it above those too.
        self._fits(max(self.head, self.temp))

    def temporary(self, size: int, align: int) -> None:
        self.temp = round_up(self.temp, align) + size
        self._fits(self.temp)

    def free_temporaries(self) -> None:
        self.temp = self.head

    def resize_head(self, size: int) -> None:
        self.head = self.temp = size
        self._fits(size)

    def planner(self, buffers: int) -> None:
        """GreedyMemoryPlanner::Init gets all free memory and needs 40 B per buffer."""
        gap = (self.r - self.used) % ALIGN      # the free area's end is rounded down to 16
        self.need = max(self.need, round_up(self.temp) + round_up(40 * buffers) + gap + self.used)

    def _fits(self, head_side: int) -> None:
        self.need = max(self.need, head_side + self.used)

    def minimum(self) -> int:
        """The smallest arena size, with this end alignment, that held everything."""
        return self.need + (self.r - self.need) % ALIGN


def _replay(model: _Model, sizes: StructSizes, needs: list[_Needs], scratch: int, planned: int,
            head: int, end_mod16: int = 0) -> _Arena:
    """Every arena allocation TFLM makes while loading the model, in its order."""
    a, p = _Arena(end_mod16), sizes.pointer
    request = sizes.scratch_request
    # MicroAllocator::Create and StartModelAllocation
    a.keep("allocator objects", sizes.allocator_objects, p)
    a.keep("allocator objects", sizes.builtin_allocator, p)
    a.resize_head(request * 12)                                  # room for 12 scratch requests
    a.keep("allocator objects", sizes.subgraph_allocations, p)
    a.keep("TfLiteEvalTensor (every tensor)", sizes.eval_tensor * len(model.tensors), p)
    if model.ops:
        a.keep("NodeAndRegistration (every op)", sizes.node * len(model.ops), p)
    # PrepareNodeAndRegistrationDataFromFlatbuffer: each op's builtin parameters
    for n in needs:
        if n.params:
            a.keep("op parameters", *n.params)
    # InitSubgraphs: each kernel's OpData
    for n in needs:
        if n.opdata:
            a.keep("kernel OpData", n.opdata, ALIGN)
    # PrepareSubgraphs: temporaries, per-channel arrays; then room for 12 more requests
    requests = 0
    for n in needs:
        for step in n.prepare:
            if step[0] == "temp":
                t = model.tensors[step[1]]
                a.temporary(sizes.tflite_tensor, p)
                if t.channels:
                    a.temporary(sizes.affine_quantization, p)
                    a.temporary(4 + 4 * t.channels, 4)
            else:
                a.keep(step[1], step[2], ALIGN)
        a.free_temporaries()
        requests += len(n.scratch)
        a.resize_head(request * (requests + 12))
    # FinishModelAllocation: scratch handles, variables, then the plan is made
    if scratch:
        a.keep("scratch buffer handles", sizes.scratch_handle * scratch, p)
    for t in model.tensors:
        if t.variable and not (model.offline and model.offline[t.index] >= 0):
            a.keep("variable tensors", t.nbytes, ALIGN)
    a.temporary(p, p)                                            # subgraph offsets
    a.temporary(sizes.allocation_info * (len(model.tensors) + scratch), p)
    a.planner(planned)
    a.free_temporaries()
    a.resize_head(head)                                          # the memory plan
    # The interpreter's input and output TfLiteTensors
    for group in (model.inputs, model.outputs):
        a.keep("input/output TfLiteTensors", p * len(group), ALIGN)  # the pointer array
        for i in group:
            a.keep("input/output TfLiteTensors", sizes.tflite_tensor, p)
            if model.tensors[i].channels:
                a.keep("input/output TfLiteTensors", sizes.affine_quantization, p)
                a.keep("input/output TfLiteTensors", 4 + 4 * model.tensors[i].channels, 4)
    return a


# ---------------------------------------------------------------------------------------------
# The arena
# ---------------------------------------------------------------------------------------------

def plan_arena(model: TFLiteModel | bytes, arch: str = "host",
               kernels: str = "reference") -> ArenaPlan:
    """TFLite Micro's tensor arena for `model` (a TFLiteModel, or the bytes of an int8 .tflite).

    arch: "host" (x86-64, what the tflite-micro wheel measures), "arm" (arm-none-eabi, e.g.
    the Nano 33 BLE Sense's Cortex-M4F) or "xtensa" (ESP32-S3).
    kernels: "reference", "cmsis-nn-dsp" (Cortex-M4/M7), "cmsis-nn-m0" (no DSP),
    "esp-nn-1.2" or "esp-nn-1.1" (ESP32-S3).
    Planned once per model: asking again with the same TFLiteModel returns the same plan.
    """
    if arch not in STRUCT_SIZES:
        raise EdgekitError(f"unknown arch '{arch}'; choose one of {', '.join(STRUCT_SIZES)}")
    if kernels not in KERNELS[arch]:
        raise EdgekitError(f"kernels '{kernels}' do not run on arch '{arch}'; choose one of "
                           f"{', '.join(KERNELS[arch])}")
    model = model_of(model)
    return model.memo(("arena", arch, kernels), lambda: _plan(model, arch, kernels))


def _plan(model: TFLiteModel, arch: str, kernels: str) -> ArenaPlan:
    sizes = STRUCT_SIZES[arch]
    m = model.memo("arena view", lambda: _view(model.parsed))
    notes = []

    # 1-3: lifetimes and what every kernel asks for
    first, last = _lifetimes(m)
    needs = []
    for op in m.ops:
        n, known = _kernel_needs(op, m, sizes, kernels)
        if not known:
            notes.append(f"op {op.index} ({op.name}): its persistent sizes are not known to "
                         "edgekit; the tail may be low by up to ~100 B")
        needs.append(n)

    # 4: the head. TFLM adds buffers in this order: tensors by index, then scratch buffers
    # in request order (the order decides ties, see greedy_plan).
    placements: list[Placement] = []
    fixed: list[int | None] = []
    for t in m.tensors:
        offline = m.offline[t.index] if m.offline else -1
        if t.const or t.nbytes == 0 or (t.variable and offline < 0):
            continue  # weights stay in the flatbuffer, variables live in the tail
        placements.append(Placement(t.name, "tensor", t.index, 0, round_up(t.nbytes),
                                    first[t.index], last[t.index]))
        fixed.append(offline if offline >= 0 else None)
    scratch_per_op, s = [], 0
    for op, n in zip(m.ops, needs):
        for size in n.scratch:  # a scratch buffer lives only while its op runs
            placements.append(Placement(f"scratch {s} ({op.name.lower()} {op.index})",
                                        "scratch", s, 0, round_up(size), op.index + 1,
                                        op.index + 1, op.index))
            fixed.append(None)
            s += 1
        scratch_per_op.append(sum(round_up(x) for x in n.scratch))
    offsets = greedy_plan([p.size for p in placements], [p.first for p in placements],
                          [p.last for p in placements], fixed)
    for p, offset in zip(placements, offsets):
        p.offset = offset
    head = max((p.offset + p.size for p in placements), default=0)
    peak_ops = [max((p.offset + p.size for p in placements if p.first <= i + 1 <= p.last),
                    default=0) for i in range(len(m.ops))]
    peak_op = int(np.argmax(peak_ops)) if peak_ops else 0

    # 5: the tail, and what loading needs, by replaying the allocator
    arena = _replay(m, sizes, needs, s, len(placements), head)
    minimum = min(_replay(m, sizes, needs, s, len(placements), head, r).minimum()
                  for r in range(ALIGN))
    return ArenaPlan(arch, kernels, head, arena.used, head + arena.used, minimum,
                     scratch_per_op, peak_op, peak_ops, placements, arena.items, notes)


def device_arena(model: TFLiteModel | bytes, board) -> ArenaPlan:
    """The arena on a TFLite Micro board: a board descriptor (`edgekit.targets.load_board`) or
    its key, e.g. "nano33ble" (Cortex-M4F, CMSIS-NN) or "esp32s3" (ESP-NN)."""
    if isinstance(board, str):
        board = load_board(board)
    if board.runtime != "tflm":
        raise EdgekitError(f"board '{board.key}' runs {board.runtime}, not TFLite Micro, so it has "
                           "no tensor arena; choose a TFLite Micro board")
    return plan_arena(model, board.arch, kernel_library(board.kernels) or "reference")


def kernel_scratch(model: TFLiteModel | bytes, arch: str, kernels: str) -> int:
    """Extra arena bytes a board's optimized kernels (descriptor `kernels`, e.g. "cmsis-nn") need
    over TFLM's reference kernels; 0 for boards that run the reference kernels."""
    library = kernel_library(kernels)
    if library is None:
        return 0
    model = model_of(model)
    return max(plan_arena(model, arch, library).minimum
               - plan_arena(model, arch, "reference").minimum, 0)
