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
  5. the tail is replayed allocation by allocation, with each one's alignment (`_Tail`).

Sizes of TFLM's structs differ by target: "host" is x86-64 as in the tflite-micro wheel (a
2025+ TFLM built with USE_TFLM_COMPRESSION, with the RecordingMicroAllocator); "arm" is
arm-none-eabi GCC (32-bit, short enums) and "xtensa" the ESP32-S3 (32-bit, int-sized enums),
both for a plain MicroInterpreter of TFLM 90b983c2. Sources: shared/facts/tflm-arena.md.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np
from ai_edge_litert import schema_py_generated as fb

from ..errors import EdgekitError

ALIGN = 16  # MicroArenaBufferAlignment(): every head buffer and kernel buffer is 16-aligned

OP = fb.BuiltinOperator
OP_NAMES = {v: k for k, v in vars(OP).items() if not k.startswith("_")}
TYPE_BYTES = {fb.TensorType.FLOAT32: 4, fb.TensorType.FLOAT16: 2, fb.TensorType.INT32: 4,
              fb.TensorType.UINT8: 1, fb.TensorType.INT64: 8, fb.TensorType.BOOL: 1,
              fb.TensorType.INT16: 2, fb.TensorType.INT8: 1, fb.TensorType.FLOAT64: 8,
              fb.TensorType.UINT64: 8, fb.TensorType.UINT32: 4, fb.TensorType.UINT16: 2,
              fb.TensorType.COMPLEX64: 8}


def round_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


# ---------------------------------------------------------------------------------------------
# 1. Targets: the sizes of TFLite Micro's structs on each kind of CPU
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
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


_PARAMS_32 = {OP.CONV_2D: (28, 4), OP.DEPTHWISE_CONV_2D: (28, 4), OP.AVERAGE_POOL_2D: (40, 4),
              OP.MAX_POOL_2D: (40, 4), OP.RESHAPE: (36, 4), OP.SOFTMAX: (4, 4),
              OP.CONCATENATION: (8, 4), OP.MEAN: (1, 1), OP.SUM: (1, 1), OP.REDUCE_MAX: (1, 1)}
# OpData of TFLM's reference kernels on 32-bit targets (no USE_TFLM_COMPRESSION).
_OPDATA_32 = {OP.CONV_2D: 56, OP.DEPTHWISE_CONV_2D: 56, OP.FULLY_CONNECTED: 44,
              OP.AVERAGE_POOL_2D: 32, OP.MAX_POOL_2D: 32, OP.SOFTMAX: 56, OP.ADD: 60, OP.MUL: 36,
              OP.CONCATENATION: 40, OP.PAD: 56, OP.PADV2: 56, OP.MEAN: 44, OP.SUM: 44,
              OP.RELU: 28, OP.RELU6: 8, OP.LOGISTIC: 16, OP.TANH: 16}

TARGETS = {
    # x86-64, measured with the tflite-micro wheel (print_allocations on one-op models).
    "host": Target(
        "host", pointer=8, allocator_objects=456, builtin_allocator=16, subgraph_allocations=16,
        eval_tensor=24, node=64, tflite_tensor=64, affine_quantization=24, scratch_handle=8,
        allocation_info=32, scratch_request=16,
        params={**_PARAMS_32, OP.FULLY_CONNECTED: (32, 8), OP.ADD: (8, 4), OP.MUL: (4, 4)},
        opdata={"reference": {OP.CONV_2D: 80, OP.DEPTHWISE_CONV_2D: 80, OP.FULLY_CONNECTED: 72,
                              OP.AVERAGE_POOL_2D: 32, OP.MAX_POOL_2D: 32, OP.SOFTMAX: 80,
                              OP.ADD: 60, OP.MUL: 36, OP.CONCATENATION: 80, OP.PAD: 56,
                              OP.PADV2: 56, OP.MEAN: 44, OP.SUM: 44, OP.RELU: 28, OP.RELU6: 8,
                              OP.LOGISTIC: 16, OP.TANH: 16}}),
    # arm-none-eabi GCC, -fshort-enums: enum fields take one byte.
    "arm": Target(
        "arm", pointer=4, allocator_objects=116, builtin_allocator=8, subgraph_allocations=8,
        eval_tensor=12, node=32, tflite_tensor=32, affine_quantization=12, scratch_handle=4,
        allocation_info=24, scratch_request=12,
        params={**_PARAMS_32, OP.FULLY_CONNECTED: (5, 1), OP.ADD: (2, 1), OP.MUL: (1, 1)},
        opdata={"reference": _OPDATA_32,
                # CMSIS-NN wrappers add a scratch-buffer index (and more for FC).
                "cmsis-nn": {**_OPDATA_32, OP.CONV_2D: 60, OP.DEPTHWISE_CONV_2D: 60,
                             OP.FULLY_CONNECTED: 80, OP.AVERAGE_POOL_2D: 36,
                             OP.MAX_POOL_2D: 36, OP.SOFTMAX: 64}}),
    # Xtensa (ESP32-S3): 32-bit, enums are int-sized.
    "xtensa": Target(
        "xtensa", pointer=4, allocator_objects=116, builtin_allocator=8, subgraph_allocations=8,
        eval_tensor=12, node=32, tflite_tensor=40, affine_quantization=12, scratch_handle=4,
        allocation_info=24, scratch_request=12,
        params={**_PARAMS_32, OP.FULLY_CONNECTED: (16, 4), OP.ADD: (8, 4), OP.MUL: (4, 4)},
        opdata={"reference": _OPDATA_32,
                # esp-tflite-micro: conv allocates sizeof(OpDataConv), depthwise and softmax
                # a NodeData with one more int (the scratch index).
                "esp-nn": {**_OPDATA_32, OP.DEPTHWISE_CONV_2D: 60, OP.SOFTMAX: 64}}),
}

KERNELS = {"host": ("reference",), "arm": ("reference", "cmsis-nn-dsp", "cmsis-nn-m0"),
           "xtensa": ("reference", "esp-nn-1.2", "esp-nn-1.1")}
BOARDS = {"nano33ble": ("arm", "cmsis-nn-dsp"), "stm32l4r5": ("arm", "cmsis-nn-dsp"),
          "esp32s3": ("xtensa", "esp-nn-1.2")}


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
    """TFLite Micro's arena for one model on one target.

    `total` = head + tail = TFLM's arena_used_bytes(), the kTensorArenaSize to give a board.
    `init_bytes` is what loading needs at least: for tiny models TFLM's temporary allocations
    while preparing can exceed the head (tflite-micro PR 798), so the working minimum is
    max(total, init_bytes).
    """
    arch: str
    kernels: str
    head: int
    tail: int
    total: int
    scratch: list[int]                 # per op: scratch bytes it asked for (each rounded to 16)
    peak_op: int                       # op during which the head in use is highest
    peak_ops: list[int]                # per op: highest head byte in use while it runs
    placements: list[Placement]
    tail_items: list[tuple[str, int]]  # (what, bytes with alignment padding), in order
    init_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def minimum(self) -> int:
        """The smallest arena that loads and runs the model (PR 798 taken into account)."""
        return max(self.total, self.init_bytes)

    def tail_summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for what, n in self.tail_items:
            out[what] = out.get(what, 0) + n
        return out

    def describe(self) -> str:
        lines = [f"arena for {self.arch} / {self.kernels}: {self.total:,} B = head {self.head:,}"
                 f" + tail {self.tail:,}" + (f" (loading needs {self.init_bytes:,})"
                                             if self.init_bytes > self.total else "")]
        lines.append(f"  head peaks during op {self.peak_op} ({self.peak_ops[self.peak_op]:,} B)"
                     if self.peak_ops else "  no ops")
        for what, n in self.tail_summary().items():
            lines.append(f"  tail: {what:34s} {n:7,} B")
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
    type: int
    nbytes: int
    const: bool               # data in the flatbuffer: never in the arena
    variable: bool
    channels: int             # number of quantization scales (0 = not quantized)


@dataclass
class _Op:
    index: int
    code: int
    inputs: list[int]
    outputs: list[int]
    options: object

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.code, f"op {self.code}")


@dataclass
class _Model:
    tensors: list[_Tensor]
    ops: list[_Op]
    inputs: list[int]
    outputs: list[int]
    offline: list[int] | None  # "OfflineMemoryAllocation" offsets, -1 = plan online


def _read(model: bytes) -> _Model:
    try:
        m = fb.ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as e:  # noqa: BLE001  (any parse failure means: not a flatbuffer we can read)
        raise EdgekitError(f"cannot read the model as TFLite ({type(e).__name__}); "
                           "give the bytes of a .tflite file") from None
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
        buf = m.buffers[t.buffer] if m.buffers and t.buffer < len(m.buffers) else None
        const = buf is not None and buf.data is not None and len(buf.data) > 0
        q = t.quantization
        channels = len(q.scale) if (q is not None and q.scale is not None and len(q.scale)
                                    and q.zeroPoint is not None and len(q.zeroPoint)) else 0
        nbytes = int(np.prod(shape, dtype=np.int64)) * TYPE_BYTES.get(t.type, 1)
        name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else str(t.name or i)
        tensors.append(_Tensor(i, name, shape, t.type, nbytes, const, bool(t.isVariable), channels))
    ops = []
    for i, o in enumerate(sg.operators or []):
        c = m.operatorCodes[o.opcodeIndex]
        code = max(c.builtinCode, c.deprecatedBuiltinCode)
        ops.append(_Op(i, code, [int(x) for x in (o.inputs if o.inputs is not None else [])],
                       [int(x) for x in (o.outputs if o.outputs is not None else [])], o.builtinOptions))
    offline = None
    for md in m.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        if name == "OfflineMemoryAllocation":
            words = np.frombuffer(bytes(m.buffers[md.buffer].data), dtype="<i4")
            offline = [int(x) for x in words[3:3 + int(words[2])]]
            if len(offline) != len(tensors):
                raise EdgekitError(f"the model's OfflineMemoryAllocation lists {len(offline)} "
                                   f"offsets for {len(tensors)} tensors; TFLite Micro refuses it")
    return _Model(tensors, ops, [int(x) for x in (sg.inputs if sg.inputs is not None else [])],
                  [int(x) for x in (sg.outputs if sg.outputs is not None else [])], offline)


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
    params: tuple[int, int] | None = None          # builtin parameters (sizeof, alignof)
    opdata: int | None = None                      # Init: context->AllocatePersistentBuffer
    persistent: list[tuple[str, int]] = field(default_factory=list)  # Prepare, 16-aligned
    scratch: list[int] = field(default_factory=list)  # RequestScratchBufferInArena, in order


def _same_padding(stride: int, dilation: int, size: int, k: int, padding: int) -> tuple[int, int]:
    """(output size, leading padding) as TFLM's ComputePaddingHeightWidth computes them."""
    eff = (k - 1) * dilation + 1
    out = (size + stride - 1) // stride if padding == fb.Padding.SAME else (size + stride - eff) // stride
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
    Ho, ph = _same_padding(sh, dh, H, kh, o.padding)
    Wo, pw = _same_padding(sw, dw, W, kw, o.padding)
    return _Conv(H, W, cin, kh, kw, y.shape[-1], Ho, Wo, sh, sw, ph, pw, dh != 1 or dw != 1)


def _a(n: int, k: int) -> int:
    return round_up(n, k)


def _esp_conv_scratch(g: _Conv, version: str) -> int:
    """esp_nn_get_conv_scratch_size() on the ESP32-S3 (esp-nn 1.1.x or 1.2.x)."""
    if g.kh == 1 and g.kw == 1 and g.ph == 0 and g.pw == 0 and g.sh == 1 and g.sw == 1:
        c8 = _a(g.cin, 8)
        inp = g.W * g.H * c8 if g.cin % 8 else 0
        transpose = 16 * c8 if g.W * g.H >= 8 else 0
        return inp + c8 * g.cout + transpose + (64 if version == "1.2" else 32)
    padded = (g.W + 2 * g.pw) * (g.H + 2 * g.ph) * g.cin if (g.pw or g.ph) else 0
    filter_copy = g.kh * g.kw * _a(g.cin, 16) * g.cout
    if version == "1.1":
        return padded + filter_copy + 4 * g.cout + 32
    row, window = g.kw * g.cin, g.kh * g.kw * g.cin
    if row < 16 <= window:  # im2col path for few input channels
        return 4 * g.cout + g.cout * _a(window, 16) + _a(window, 16) + 96
    right = max(0, (g.Wo - 1) * g.sw + g.kw - g.pw - g.W)
    bottom = max(0, (g.Ho - 1) * g.sh + g.kh - g.ph - g.H)
    boundary = ((g.W + g.pw + right) * (g.H + g.ph + bottom) * g.cin
                if (g.pw or g.ph or right or bottom) else 0)
    return padded + boundary + filter_copy + _a(row, 16) * g.kh * g.cout + 4 * g.cout + 64


def _esp_dw_scratch(g: _Conv, mult: int, version: str) -> int:
    """esp_nn_get_depthwise_conv_scratch_size() on the ESP32-S3 (esp-nn 1.1.x or 1.2.x)."""
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
                c16 = _a(C, 16)
                tpw = 2 * g.pw + max(0, g.Wo * g.sw + 2 - g.W)
                tph = 2 * g.ph + max(0, g.Ho * g.sh + 2 - g.H)
                return 9 * c16 + (g.W + tpw) * (g.H + tph) * c16 + g.Wo * g.Ho * c16 + 64
            return 2 * (filt + g.W * g.H * C) + (32 if v12 else 16)
        return 2 * (filt + g.W * g.H * C) + 32 if v12 else 32
    if mult == 1 and C > 3:
        if not v12:
            return 32
        c8 = _a(C, 8)
        inp_start = _a(2 * g.kh * g.kw * c8, 16)
        out_start = _a(inp_start + 2 * g.W * g.H * c8, 16)
        bias_start = _a(out_start + g.Wo * g.Ho * c8, 16)
        return bias_start + 12 * c8 + 16
    if mult % 4 == 0:
        return 2 * (filt + g.W * g.H * C) + (32 if v12 else 16)
    return 32


def _kernel_needs(op: _Op, model: _Model, target: Target, kernels: str) -> tuple[_Needs, bool]:
    """What op's kernel allocates; the bool says whether edgekit knows this op's sizes."""
    library = ("cmsis-nn" if kernels.startswith("cmsis-nn") else
               "esp-nn" if kernels.startswith("esp-nn") else "reference")
    opdata = target.opdata.get(library, target.opdata["reference"])
    code = op.code
    known = code in opdata or code in (OP.RESHAPE,)
    n = _Needs(params=target.params.get(code), opdata=opdata.get(code))
    t = model.tensors
    per_channel = "per-channel requantization"

    if code in (OP.CONV_2D, OP.DEPTHWISE_CONV_2D):
        g = _conv_geometry(op, model)
        w = t[op.inputs[1]]
        channels = w.shape[0] if code == OP.CONV_2D else w.shape[3]
        n.persistent += [(per_channel, 4 * channels), (per_channel, 4 * channels)]
        dsp = kernels == "cmsis-nn-dsp"
        if code == OP.CONV_2D:
            if library == "cmsis-nn":
                one_by_one = g.kh == 1 and g.kw == 1 and g.ph == 0 and g.pw == 0 and not g.dilated
                n.scratch.append(0 if one_by_one else 4 * _a(g.kh * g.kw * g.cin, 4))
            elif library == "esp-nn":
                n.scratch.append(_esp_conv_scratch(g, kernels[-3:]))
        else:
            mult = max(1, g.cout // max(1, g.cin))
            if library == "cmsis-nn" and dsp and mult == 1 and not g.dilated:
                small = g.kh == 3 and g.kw == 3 and g.ph <= 1 and g.pw <= 1
                n.scratch.append(0 if small else 2 * g.cin * g.kh * g.kw)
            elif library == "esp-nn":
                n.scratch.append(_esp_dw_scratch(g, mult, kernels[-3:]))
    elif code == OP.FULLY_CONNECTED:
        w = t[op.inputs[1]]
        if w.channels > 1:  # per-channel weights: arrays like conv's
            n.persistent += [(per_channel, 4 * w.channels), (per_channel, 4 * w.channels)]
    elif code == OP.AVERAGE_POOL_2D and kernels == "cmsis-nn-dsp":
        n.scratch.append(4 * t[op.outputs[0]].shape[-1])   # arm_avgpool_s8 sums per channel
    elif code == OP.SOFTMAX and library == "esp-nn":
        x = t[op.inputs[0]]
        n.scratch.append(4 * (x.shape[1] if len(x.shape) > 1 else x.shape[0]))
    elif code in (OP.MEAN, OP.SUM):
        x, axes, y = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
        n.scratch += [4 * len(x.shape), 4 * int(np.prod(axes.shape, dtype=np.int64)),
                      4 * int(np.prod(y.shape, dtype=np.int64))]
    # Kernels request a scratch buffer only when they need one.
    n.scratch = [s for s in n.scratch if s > 0]
    return n, known


# ---------------------------------------------------------------------------------------------
# 4. The greedy planner (memory_planner/greedy_memory_planner.cc)
# ---------------------------------------------------------------------------------------------

def greedy_plan(sizes: list[int], first: list[int], last: list[int],
                fixed: list[int | None] | None = None) -> list[int]:
    """Offsets for buffers given in the order TFLM adds them (tensors by index, then scratch).

    Like TFLM's GreedyMemoryPlanner:
    - offline-planned buffers (`fixed`) keep their offsets and are placed first;
    - the others are taken largest first. TFLM fills its sort array from the back, so equal
      sizes end up in reverse order of adding (the last tensor first), and its bubble sort
      is stable;
    - each buffer goes into the first gap, in offset order, between already placed buffers
      that are live at the same time as it, that is big enough; else after the last of them.
    """
    fixed = fixed or [None] * len(sizes)
    online = [i for i in reversed(range(len(sizes))) if fixed[i] is None]
    online.sort(key=lambda i: -sizes[i])                 # stable: ties keep reversed order
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
# 5. The tail, allocation by allocation
# ---------------------------------------------------------------------------------------------

class _Tail:
    """The persistent part: grows down from the (16-aligned) end of the arena.

    Each allocation moves the tail down by its size, then down to its alignment, so small
    structs (alignment 4 or 8) can leave a gap before the next 16-aligned buffer. That gap is
    charged to the allocation that needed the alignment, as TFLM's recording allocator does.
    """

    def __init__(self):
        self.used = 0
        self.items: list[tuple[str, int]] = []

    def alloc(self, what: str, size: int, align: int) -> None:
        before = self.used
        self.used = round_up(self.used + size, align)
        self.items.append((what, self.used - before))


def _tail(model: _Model, target: Target, needs: list[_Needs], n_scratch: int,
          tail: _Tail | None = None, upto: str = "end") -> _Tail:
    """Replays TFLM's persistent allocations in its order (stopping early for `upto`)."""
    tl = tail or _Tail()
    p = target.pointer
    # MicroAllocator::Create and StartModelAllocation
    tl.alloc("allocator objects", target.allocator_objects, p)
    tl.alloc("allocator objects", target.builtin_allocator, p)
    tl.alloc("allocator objects", target.subgraph_allocations, p)
    tl.alloc("TfLiteEvalTensor (every tensor)", target.eval_tensor * len(model.tensors), p)
    if model.ops:
        tl.alloc("NodeAndRegistration (every op)", target.node * len(model.ops), p)
    # PrepareNodeAndRegistrationDataFromFlatbuffer: each op's builtin parameters
    for n in needs:
        if n.params:
            tl.alloc("op parameters", *n.params)
    # InitSubgraphs: each kernel's OpData
    for n in needs:
        if n.opdata:
            tl.alloc("kernel OpData", n.opdata, ALIGN)
    if upto == "init":
        return tl
    # PrepareSubgraphs: per-channel arrays and other kernel buffers
    for n in needs:
        for what, size in n.persistent:
            tl.alloc(what, size, ALIGN)
    # FinishModelAllocation: scratch handles, then variable tensors
    if n_scratch:
        tl.alloc("scratch buffer handles", target.scratch_handle * n_scratch, p)
    for t in model.tensors:
        if t.variable and not (model.offline and model.offline[t.index] >= 0):
            tl.alloc("variable tensors", t.nbytes, ALIGN)
    if upto == "plan":
        return tl
    # The interpreter's input and output TfLiteTensors
    for group in (model.inputs, model.outputs):
        tl.alloc("input/output TfLiteTensors", p * len(group), ALIGN)   # the pointer array
        for i in group:
            tl.alloc("input/output TfLiteTensors", target.tflite_tensor, p)
            if model.tensors[i].channels:
                tl.alloc("input/output TfLiteTensors", target.affine_quantization, p)
                tl.alloc("input/output TfLiteTensors", 4 + 4 * model.tensors[i].channels, 4)
    return tl


# ---------------------------------------------------------------------------------------------
# The arena
# ---------------------------------------------------------------------------------------------

def plan_arena(model: bytes, arch: str = "host", kernels: str = "reference") -> ArenaPlan:
    """TFLite Micro's tensor arena for `model` (the bytes of an int8 .tflite file).

    arch: "host" (x86-64, what the tflite-micro wheel measures), "arm" (arm-none-eabi, e.g.
    the Nano 33 BLE Sense's Cortex-M4F) or "xtensa" (ESP32-S3).
    kernels: "reference", "cmsis-nn-dsp" (Cortex-M4/M7), "cmsis-nn-m0" (no DSP),
    "esp-nn-1.2" or "esp-nn-1.1" (ESP32-S3).
    """
    if arch not in TARGETS:
        raise EdgekitError(f"unknown arch '{arch}'; choose one of {', '.join(TARGETS)}")
    if kernels not in KERNELS[arch]:
        raise EdgekitError(f"kernels '{kernels}' do not run on arch '{arch}'; choose one of "
                           f"{', '.join(KERNELS[arch])}")
    target = TARGETS[arch]
    m = _read(model)
    notes = []

    # 1-3: lifetimes and what every kernel asks for
    first, last = _lifetimes(m)
    needs = []
    for op in m.ops:
        n, known = _kernel_needs(op, m, target, kernels)
        if not known:
            notes.append(f"op {op.index} ({op.name}): its persistent sizes are not known to "
                         "edgekit; the tail may be low by up to ~100 B")
        needs.append(n)

    # 4: the head. Buffers in TFLM's order: tensors by index, then scratch in request order.
    names, kinds, index, sizes, firsts, lasts, fixed, owner = [], [], [], [], [], [], [], []
    for t in m.tensors:
        offline = m.offline[t.index] if m.offline else -1
        in_head = not t.const and t.nbytes > 0 and (not t.variable or offline >= 0)
        if in_head:
            names.append(t.name), kinds.append("tensor"), index.append(t.index)
            sizes.append(round_up(t.nbytes)), firsts.append(first[t.index])
            lasts.append(last[t.index]), fixed.append(offline if offline >= 0 else None)
            owner.append(None)
    scratch_per_op, s = [], 0
    for op, n in zip(m.ops, needs):
        for size in n.scratch:
            names.append(f"scratch {s} ({op.name.lower()} {op.index})"), kinds.append("scratch")
            index.append(s), sizes.append(round_up(size)), firsts.append(op.index + 1)
            lasts.append(op.index + 1), fixed.append(None), owner.append(op.index)
            s += 1
        scratch_per_op.append(sum(round_up(x) for x in n.scratch))
    offsets = greedy_plan(sizes, firsts, lasts, fixed)
    placements = [Placement(*args) for args in
                  zip(names, kinds, index, offsets, sizes, firsts, lasts, owner)]
    head = max((p.offset + p.size for p in placements), default=0)
    peak_ops = [max((p.offset + p.size for p in placements if p.first <= i + 1 <= p.last),
                    default=0) for i in range(len(m.ops))]
    peak_op = int(np.argmax(peak_ops)) if peak_ops else 0

    # 5: the tail
    tail = _tail(m, target, needs, s)
    plan = ArenaPlan(arch, kernels, head, tail.used, head + tail.used, scratch_per_op, peak_op,
                     peak_ops, placements, tail.items, notes=notes)
    plan.init_bytes = _init_bytes(m, target, needs, s, sum(1 for _ in placements))
    return plan


def device_arena(model: bytes, board: str) -> ArenaPlan:
    """The arena on a course board: "nano33ble" or "stm32l4r5" (Cortex-M4F, CMSIS-NN) or
    "esp32s3" (ESP-NN 1.2)."""
    if board not in BOARDS:
        raise EdgekitError(f"unknown board '{board}'; choose one of {', '.join(BOARDS)}")
    return plan_arena(model, *BOARDS[board])


# ---------------------------------------------------------------------------------------------
# Loading needs more than head + tail for tiny models (tflite-micro PR 798)
# ---------------------------------------------------------------------------------------------

def _init_bytes(m: _Model, target: Target, needs: list[_Needs], n_scratch: int,
                n_planned: int) -> int:
    """A lower bound on the arena that loading needs while the plan is being made.

    While planning, the head holds the scratch requests, then (as temporaries) one
    AllocationInfo per tensor and scratch buffer and the planner's 40 B per planned buffer;
    the tail is already allocated up to the variables. For tiny models this exceeds the
    head that is recorded afterwards.
    """
    tail = _tail(m, target, needs, n_scratch, upto="plan").used
    p = target.pointer
    requests = round_up(target.scratch_request * (n_scratch + 12), p)
    temp = round_up(requests + p, p)                      # subgraph offsets (one size_t)
    temp = round_up(temp + target.allocation_info * (len(m.tensors) + n_scratch), p)
    return tail + round_up(temp) + round_up(40 * n_planned)
