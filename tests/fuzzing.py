"""A seeded mutation fuzzer for `edgekit convert`, shared by tests/test_fuzz.py (a CI slice) and
bench/fuzz.py (the long campaign).

- seeds: small valid models (int8 and float .tflite, .onnx) with matching calibration arrays;
- mutators: byte-level and structure-aware (flatbuffer object API, ONNX protobuf API) changes to
  a model, and hostile calibration files (bad headers, dtypes, shapes, NaN, truncation, bombs);
- a runner that executes each case as `edgekit.cli.main(["convert", ...])` in a forked child with
  a memory limit and a timeout, and classifies the outcome, so hangs and crashes are observed
  instead of suffered.

Everything is a pure function of the campaign seed: the same seed gives the same cases.
"""
from __future__ import annotations

import functools
import io
import json
import os
import resource
import shutil
import signal
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as fb
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parent))
import ir_models  # noqa: E402
import tflite_builders  # noqa: E402

# a case running longer is a hang; EDGEKIT_FUZZ_TIMEOUT_S for a machine far slower than a PC (the arm64
# check runs under qemu-user, where a conversion taking 1 s natively can take a minute)
TIMEOUT_S = float(os.environ.get("EDGEKIT_FUZZ_TIMEOUT_S", "20"))
MEMORY_LIMIT = 2 << 30  # RLIMIT_AS of each case: a size bomb fails here instead of taking the machine
BAD = ("internal", "memory", "hang", "crash", "messy", "partial")  # what a campaign must not see


# ----------------------------------------------------------------------------------------- seeds

@dataclass
class Seed:
    name: str
    kind: str          # "tflite" (int8 or float) or "onnx"
    model: bytes
    calib: np.ndarray  # valid calibration inputs, in the model's own layout
    suffix: str


def _onnx_pad_net(seed=0) -> bytes:
    """Pad -> Conv (stride 2) -> Relu -> Reshape -> Gemm -> Softmax: the ops of the probe's Pad bomb."""
    rng = np.random.default_rng(seed)
    init = [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
            numpy_helper.from_array(rng.normal(0, 0.3, (4, 2, 3, 3)).astype(np.float32), "w"),
            numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b"),
            numpy_helper.from_array(np.array([1, -1], np.int64), "shape"),
            numpy_helper.from_array(rng.normal(0, 0.3, (5, 36)).astype(np.float32), "fc_w"),
            numpy_helper.from_array(rng.normal(0, 0.1, 5).astype(np.float32), "fc_b")]
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], "pad"),
             helper.make_node("Conv", ["p", "w", "b"], ["c"], "conv", kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c"], ["r"], "relu"),
             helper.make_node("Reshape", ["r", "shape"], ["f"], "flatten"),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], "fc", transB=1),
             helper.make_node("Softmax", ["g"], ["y"], "softmax", axis=1)]
    graph = helper.make_graph(nodes, "pad_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _onnx_of(graph) -> bytes:
    from edgekit.export.onnx_export import graph_to_onnx
    return graph_to_onnx(graph).SerializeToString()


def _nchw(calib: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(calib.transpose(0, 3, 1, 2)) if calib.ndim == 4 else calib


def seeds() -> list[Seed]:
    """The valid models every case starts from (each converts cleanly: see test_fuzz)."""
    from edgekit.export.tflite_writer import write_tflite
    cnn, ds, res = ir_models.cnn(size=8), ir_models.ds_block(size=8), ir_models.residual()
    rng = np.random.default_rng(0)
    return [
        Seed("int8_cnn", "tflite", tflite_builders.int8_cnn(0), rng.uniform(-1, 1, (4, 8, 8, 2)).astype(np.float32), ".tflite"),
        Seed("int8_ds", "tflite", ir_models.int8(ds, 8), ir_models.calibration(ds, 4), ".tflite"),
        Seed("float_mix", "tflite", tflite_builders.float_mix(0), rng.uniform(-1, 1, (8, 6, 6, 3)).astype(np.float32), ".tflite"),
        Seed("float_residual", "tflite", write_tflite(res), ir_models.calibration(res, 8), ".tflite"),
        Seed("onnx_cnn", "onnx", _onnx_of(cnn), _nchw(ir_models.calibration(cnn, 8)), ".onnx"),
        Seed("onnx_ds", "onnx", _onnx_of(ds), _nchw(ir_models.calibration(ds, 8)), ".onnx"),
        Seed("onnx_pad", "onnx", _onnx_pad_net(), rng.uniform(-1, 1, (8, 2, 6, 6)).astype(np.float32), ".onnx"),
    ]


# ------------------------------------------------------------------------------ byte mutations

INTERESTING_U32 = (0, 1, 2, 3, 4, 7, 8, 16, 255, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC)


def flip_bytes(rng, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
    return bytes(b)


def truncate(rng, data: bytes) -> bytes:
    return data[:int(rng.integers(0, len(data)))]


def poke_word(rng, data: bytes) -> bytes:
    """Overwrite one aligned 32-bit word: flatbuffer offsets, vector lengths and indices all are one."""
    b = bytearray(data)
    at = int(rng.integers(len(b) // 4)) * 4
    old = int.from_bytes(b[at:at + 4], "little")
    choice = rng.integers(3)
    new = (int(rng.choice(INTERESTING_U32)) if choice == 0 else (old + int(rng.choice((-8, -4, 4, 8, 64)))) % 2**32
           if choice == 1 else len(b) + int(rng.integers(-16, 16)))
    b[at:at + 4] = (new % 2**32).to_bytes(4, "little")
    return bytes(b)


BYTE_MUTATORS = {"flip": flip_bytes, "truncate": truncate, "word": poke_word}


# --------------------------------------------------------------------- tflite field mutations

DIMS = (0, -1, 1, 2, 3, 5, 64, 1000, 31623, 2**20, 2**31 - 1, -2**31)
INTS = (0, -1, 1, 2, 3, 100, 2**15, 2**31 - 1, -2**31)


def _lst(v):
    return [] if v is None else [int(x) for x in v]


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _tfl_shape(rng, m):
    t = _pick(rng, m.subgraphs[0].tensors)
    shape = _lst(t.shape)
    what = rng.integers(4)
    if what == 0 and shape:
        shape[int(rng.integers(len(shape)))] = int(rng.choice(DIMS))
    elif what == 1:
        shape = shape[:-1]
    elif what == 2:
        shape = shape + [int(rng.choice(DIMS))]
    else:
        shape = [1, 31623, 31623] if rng.integers(2) else [int(rng.choice(DIMS)) for _ in range(int(rng.integers(0, 7)))]
    t.shape = shape


def _tfl_dtype(rng, m):
    _pick(rng, m.subgraphs[0].tensors).type = int(rng.integers(0, 20))


def _tfl_buffer_index(rng, m):
    _pick(rng, m.subgraphs[0].tensors).buffer = int(rng.choice((0, len(m.buffers) - 1, len(m.buffers), 2**31 - 1)))


def _tfl_buffer_data(rng, m):
    buf = _pick(rng, m.buffers[1:] or m.buffers)
    data = bytes(buf.data) if buf.data is not None else b""
    what = rng.integers(3)
    buf.data = (data[:int(rng.integers(0, len(data) + 1))] if what == 0 else data + bytes(int(rng.integers(1, 64)))
                if what == 1 else bytes(int(rng.integers(0, 8))))


def _tfl_op_index(rng, m):
    sg = m.subgraphs[0]
    op = _pick(rng, sg.operators)
    n = len(sg.tensors)
    which = "inputs" if rng.integers(2) else "outputs"
    ids = _lst(getattr(op, which))
    value = int(rng.choice((-1, n, n + 5, 2**31 - 1, int(rng.integers(n)))))
    what = rng.integers(3)
    if what == 0 and ids:
        ids[int(rng.integers(len(ids)))] = value
    elif what == 1:
        ids = ids[:-1]
    else:
        ids = ids + [value]
    setattr(op, which, ids)


def _tfl_opcode_index(rng, m):
    op = _pick(rng, m.subgraphs[0].operators)
    op.opcodeIndex = int(rng.choice((len(m.operatorCodes), len(m.operatorCodes) + 3, int(rng.integers(len(m.operatorCodes))))))


def _tfl_opcode(rng, m):
    code = _pick(rng, m.operatorCodes)
    code.builtinCode = int(rng.integers(0, 210))
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    if rng.integers(3) == 0:
        code.version = int(rng.choice((0, 1, 2, 3, 99)))


def _tfl_options_type(rng, m):
    """Swap an op's options for another op's (or none): the type says one table, the bytes are another."""
    ops = m.subgraphs[0].operators
    op, other = _pick(rng, ops), _pick(rng, ops)
    what = rng.integers(3)
    if what == 0:
        op.builtinOptionsType, op.builtinOptions = 0, None
    elif what == 1:
        op.builtinOptionsType = int(rng.integers(1, 130))
    else:
        op.builtinOptions = other.builtinOptions


def _tfl_options_field(rng, m):
    """Set one numeric option (stride, filter size, axis, depth multiplier, new shape...) to an edge value."""
    ops = [op for op in m.subgraphs[0].operators if op.builtinOptions is not None]
    if not ops:
        return _tfl_options_type(rng, m)
    opts = _pick(rng, ops).builtinOptions
    names = [k for k, v in vars(opts).items() if isinstance(v, (int, float, list, np.ndarray)) and not isinstance(v, bool)]
    if not names:
        return
    name = _pick(rng, names)
    value = getattr(opts, name)
    if isinstance(value, (list, np.ndarray)):
        value = [int(rng.choice(DIMS)) for _ in range(int(rng.integers(0, 5)))]
    elif isinstance(value, float):
        value = float(rng.choice((0.0, -1.0, np.nan, np.inf, 1e30)))
    else:
        value = int(rng.choice((0, -1, 1, 2, 3, 100, 2**15 - 1)))
    setattr(opts, name, value)


def _tfl_quantization(rng, m):
    ts = [t for t in m.subgraphs[0].tensors if t.quantization is not None and t.quantization.scale is not None]
    if not ts:
        return _tfl_dtype(rng, m)
    q = _pick(rng, ts).quantization
    what = rng.integers(4)
    if what == 0:
        q.scale = [float(rng.choice((0.0, -1.0, np.nan, np.inf, 1e-45, 1e30)))] * len(q.scale)
    elif what == 1:
        q.zeroPoint = [int(rng.choice((-129, 128, 2**31 - 1, -2**31)))] * len(_lst(q.zeroPoint))
    elif what == 2:
        q.scale = list(q.scale)[:-1] if len(q.scale) > 1 else list(q.scale) * 3
    else:
        q.quantizedDimension = int(rng.choice((-1, 1, 3, 7, 100)))


def _tfl_graph_io(rng, m):
    sg = m.subgraphs[0]
    which = "inputs" if rng.integers(2) else "outputs"
    n = len(sg.tensors)
    setattr(sg, which, [] if rng.integers(2) else [int(rng.choice((-1, n, int(rng.integers(n)))))])


def _tfl_structure(rng, m):
    sg = m.subgraphs[0]
    what = rng.integers(5)
    if what == 0:
        sg.operators = []
    elif what == 1 and sg.operators:
        del sg.operators[int(rng.integers(len(sg.operators)))]
    elif what == 2:
        m.subgraphs = []
    elif what == 3:
        sg.tensors = sg.tensors[:int(rng.integers(len(sg.tensors)))]
    else:
        m.version = int(rng.choice((0, 1, 2, 4)))


TFLITE_FIELDS = {"shape": _tfl_shape, "dtype": _tfl_dtype, "buffer_index": _tfl_buffer_index,
                 "buffer_data": _tfl_buffer_data, "op_index": _tfl_op_index, "opcode_index": _tfl_opcode_index,
                 "opcode": _tfl_opcode, "options_type": _tfl_options_type, "options_field": _tfl_options_field,
                 "quantization": _tfl_quantization, "graph_io": _tfl_graph_io, "structure": _tfl_structure}


def _pack_tflite(m) -> bytes:
    m.buffers = [_aligned(b) for b in m.buffers]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _aligned(buf):
    a = tflite_builders._Aligned()
    a.data = None if buf.data is None else np.frombuffer(bytes(bytearray(buf.data)), np.uint8)
    return a


def mutate_tflite(rng, data: bytes) -> tuple[bytes, str]:
    """One mutation of a .tflite: half structure-aware (a field of the object API), half bytes."""
    if rng.integers(2):
        name = _pick(rng, sorted(BYTE_MUTATORS))
        return BYTE_MUTATORS[name](rng, data), name
    name = _pick(rng, sorted(TFLITE_FIELDS))
    m = fb.ModelT.InitFromPackedBuf(data, 0)
    try:
        TFLITE_FIELDS[name](rng, m)
        return _pack_tflite(m), name
    except (ValueError, TypeError, OverflowError, AttributeError, IndexError, KeyError) as e:  # unpackable value
        return flip_bytes(rng, data), f"flip (after {name}: {type(e).__name__})"


# ----------------------------------------------------------------------- onnx proto mutations

ONNX_OPS = ("Conv", "Relu", "Pad", "Reshape", "Gemm", "Softmax", "Add", "MaxPool", "AveragePool", "Flatten",
            "GlobalAveragePool", "Transpose", "Concat", "Clip", "Mul", "MatMul", "Identity", "NoSuchOp")


def _onnx_attr(rng, g):
    nodes = [n for n in g.node if n.attribute]
    if not nodes:
        return _onnx_op_type(rng, g)
    a = _pick(rng, list(_pick(rng, nodes).attribute))
    if a.type == onnx.AttributeProto.INTS:
        del a.ints[:]
        a.ints.extend(int(rng.choice(DIMS)) for _ in range(int(rng.integers(0, 6))))
    elif a.type == onnx.AttributeProto.INT:
        a.i = int(rng.choice(INTS))
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = float(rng.choice((0.0, -1.0, np.nan, np.inf)))
    elif a.type == onnx.AttributeProto.STRING:
        a.s = _pick(rng, (b"", b"SAME_UPPER", b"VALID", b"bogus", b"\xff"))
    else:
        a.type = int(rng.integers(0, 15))


def _onnx_op_type(rng, g):
    _pick(rng, list(g.node)).op_type = _pick(rng, ONNX_OPS)


def _onnx_edges(rng, g):
    node = _pick(rng, list(g.node))
    names = [i.name for i in g.initializer] + [n for nd in g.node for n in nd.output] + ["", "missing"]
    which = node.input if rng.integers(3) else node.output
    what = rng.integers(3)
    if what == 0 and len(which):
        which[int(rng.integers(len(which)))] = _pick(rng, names)
    elif what == 1 and len(which):
        del which[-1]
    else:
        which.append(_pick(rng, names))


def _onnx_initializer(rng, g):
    inits = list(g.initializer)
    if not inits:
        return _onnx_edges(rng, g)
    t = _pick(rng, inits)
    arr = numpy_helper.to_array(t)
    what = rng.integers(5)
    if what == 0:  # dims that do not match the data
        dims = [int(d) for d in t.dims] or [1]
        dims[int(rng.integers(len(dims)))] = int(rng.choice((0, 1, 2, 7, 31623, 2**31 - 1)))
        del t.dims[:]
        t.dims.extend(dims)
    elif what == 1:
        t.data_type = int(rng.integers(0, 22))
    elif what == 2 and t.raw_data:
        t.raw_data = t.raw_data[:int(rng.integers(len(t.raw_data)))]
    elif what == 3 and arr.dtype.kind == "f":
        bad = arr.copy().reshape(-1)
        bad[int(rng.integers(bad.size))] = rng.choice((np.nan, np.inf, -np.inf, 3e38))
        t.CopyFrom(numpy_helper.from_array(bad.reshape(arr.shape), t.name))
    elif arr.dtype == np.int64:  # a Pad's pads or a Reshape's shape: edge values (the Pad bomb)
        bad = np.array([int(rng.choice((0, -1, -2, 3, 31623, 30000, 2**31 - 1))) for _ in range(arr.size)], np.int64)
        t.CopyFrom(numpy_helper.from_array(bad.reshape(arr.shape), t.name))
    else:
        t.CopyFrom(numpy_helper.from_array(np.zeros((0,), arr.dtype if arr.dtype != object else np.float32), t.name))


def _onnx_io(rng, g):
    what = rng.integers(4)
    if what == 0:
        del g.output[:]
    elif what == 1:
        del g.input[:]
    else:
        vi = g.input[0] if what == 2 and len(g.input) else (g.output[0] if len(g.output) else None)
        if vi is None:
            return
        tt = vi.type.tensor_type
        if rng.integers(2) and len(tt.shape.dim):
            d = tt.shape.dim[int(rng.integers(len(tt.shape.dim)))]
            if rng.integers(4):
                d.dim_value = int(rng.choice((0, 1, 3, 31623, 2**31 - 1)))
            else:
                d.dim_param = "N"
        else:
            tt.elem_type = int(rng.integers(0, 22))


def _onnx_opset(rng, model):
    model.opset_import[0].version = int(rng.choice((1, 7, 10, 11, 12, 14, 18, 21, 99, 2**31 - 1)))
    if rng.integers(4) == 0:
        model.opset_import[0].domain = "com.example"


def _onnx_structure(rng, g):
    nodes = list(g.node)
    what = rng.integers(3)
    if what == 0:
        del g.node[int(rng.integers(len(nodes)))]
    elif what == 1:
        g.node.append(_pick(rng, nodes))  # a second node writing the same output
    else:
        i, j = rng.integers(len(nodes), size=2)
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(nodes[i])
        b.CopyFrom(nodes[j])
        g.node[int(i)].CopyFrom(b)
        g.node[int(j)].CopyFrom(a)


ONNX_FIELDS = {"attribute": _onnx_attr, "op_type": _onnx_op_type, "edges": _onnx_edges,
               "initializer": _onnx_initializer, "io": _onnx_io, "structure": _onnx_structure}


def mutate_onnx(rng, data: bytes) -> tuple[bytes, str]:
    """One mutation of an .onnx: mostly through the protobuf API, sometimes bytes."""
    if rng.integers(4) == 0:
        name = _pick(rng, sorted(BYTE_MUTATORS))
        return BYTE_MUTATORS[name](rng, data), name
    model = onnx.ModelProto()
    model.ParseFromString(data)
    if rng.integers(12) == 0:
        _onnx_opset(rng, model)
        return model.SerializeToString(), "opset"
    name = _pick(rng, sorted(ONNX_FIELDS))
    ONNX_FIELDS[name](rng, model.graph)
    return model.SerializeToString(), name


# -------------------------------------------------------------------------- hostile calibration

def _npy_bytes(arr: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, arr, allow_pickle=True)
    return f.getvalue()


def _npz_bytes(members: dict[str, bytes], compress=True) -> bytes:
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return f.getvalue()


FUZZ_BOMB_BYTES = 288 << 20  # inflated size of the fuzzer's bombs: over the 256 MB default budget


@functools.lru_cache(maxsize=None)
def _bomb(sample_shape: tuple, inflated: int = 512 << 20) -> bytes:
    """A .npz whose one member is `inflated` bytes of zero samples (512 MB: 0.5 MB on disk), written
    in pieces so building it needs no more memory than one piece (cached: each is built once)."""
    samples = inflated // (4 * int(np.prod(sample_shape)))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (samples,) + tuple(sample_shape)})
    total = samples * int(np.prod(sample_shape)) * 4
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as m:
        m.write(header.getvalue())
        chunk = bytes(1 << 20)
        for _ in range(total >> 20):
            m.write(chunk)
        m.write(bytes(total & ((1 << 20) - 1)))
    return f.getvalue()


def _corrupt_header(rng, good: np.ndarray) -> bytes:
    data = bytearray(_npy_bytes(good))
    hl = int.from_bytes(data[8:10], "little")
    what = rng.integers(6)
    if what == 0:
        data[0:6] = b"\x93NUMPZ"
    elif what == 1:
        data[6] = 9  # an unknown format version
    elif what == 2:
        data[10:10 + hl] = bytes(rng.integers(32, 127, hl).astype(np.uint8))  # garbage header text
    elif what == 3:
        text = data[10:10 + hl].decode("latin1").replace("'shape': (", "'shape': (-3, ")
        data[10:10 + hl] = text[:hl].ljust(hl).encode("latin1")
    elif what == 4:
        data[8:10] = (hl + int(rng.integers(1, 500))).to_bytes(2, "little")
    else:
        text = data[10:10 + hl].decode("latin1").replace("'descr': '<f4'", "'descr': 'zz9'")
        data[10:10 + hl] = text[:hl].ljust(hl).encode("latin1")
    return bytes(data)


def hostile_calib(rng, good: np.ndarray) -> tuple[bytes, str, str]:
    """A bad calibration file derived from `good`: (bytes, suffix, what is wrong)."""
    n, shape = good.shape[0], good.shape[1:]
    kinds = ["zero_d", "corrupt_header", "truncated", "datetime", "timedelta", "complex", "bool", "object",
             "structured", "string", "nan", "inf", "wrong_rank", "wrong_shape", "empty", "no_samples",
             "npz_text_member", "npz_many", "npz_empty", "npz_corrupt", "npz_bomb", "empty_file", "not_numpy",
             "huge_header_shape", "fortran_bigendian", "int_overflow", "npz_nested", "npz_lying_size"]
    kind = _pick(rng, kinds)
    npy = lambda a: (_npy_bytes(a), ".npy", kind)  # noqa: E731
    if kind == "zero_d":
        return npy(np.array(float(rng.normal()), np.float32))
    if kind == "corrupt_header":
        return _corrupt_header(rng, good), ".npy", kind
    if kind == "truncated":
        data = _npy_bytes(good)
        return data[:int(rng.integers(0, len(data)))], ".npy", kind
    if kind == "datetime":
        return npy(np.zeros(good.shape, "datetime64[s]"))
    if kind == "timedelta":
        return npy(np.ones(good.shape, "timedelta64[ms]"))
    if kind == "complex":
        return npy(good.astype(np.complex64) + 1j)
    if kind == "bool":
        return npy(good > 0)
    if kind == "object":
        return npy(good.astype(object))
    if kind == "structured":
        return npy(np.zeros(good.shape, [("a", "<f4"), ("b", "<i2")]))
    if kind == "string":
        return npy(good.astype("U8"))
    if kind in ("nan", "inf"):
        bad = good.copy().reshape(-1)
        bad[int(rng.integers(bad.size))] = np.nan if kind == "nan" else -np.inf
        return npy(bad.reshape(good.shape))
    if kind == "wrong_rank":
        return npy(good.reshape(-1) if rng.integers(2) else good[None])
    if kind == "wrong_shape":
        return npy(np.zeros((n,) + tuple(d + int(rng.integers(1, 4)) for d in shape), np.float32))
    if kind == "empty":
        return npy(np.zeros((0,), np.float32))
    if kind == "no_samples":
        return npy(np.zeros((0,) + shape, np.float32))
    if kind == "npz_text_member":
        return _npz_bytes({"x": b"not an array at all"}), ".npz", kind
    if kind == "npz_many":
        return _npz_bytes({"a.npy": _npy_bytes(good), "b.npy": _npy_bytes(good)}), ".npz", kind
    if kind == "npz_empty":
        return _npz_bytes({}), ".npz", kind
    if kind == "npz_corrupt":
        data = bytearray(_npz_bytes({"x.npy": _npy_bytes(good)}))
        for _ in range(4):
            data[int(rng.integers(len(data)))] ^= 0xFF
        return bytes(data), ".npz", kind
    if kind == "npz_bomb":
        return _bomb(tuple(shape), FUZZ_BOMB_BYTES), ".npz", kind
    if kind == "empty_file":
        return b"", str(_pick(rng, (".npy", ".npz"))), kind
    if kind == "not_numpy":
        return bytes(rng.integers(0, 256, 300).astype(np.uint8)), ".npy", kind
    if kind == "huge_header_shape":  # a header declaring 10^12 samples over a few bytes of data
        data = _npy_bytes(good)
        hl = int.from_bytes(data[8:10], "little")
        text = data[10:10 + hl].decode("latin1").replace(f"'shape': ({n},", "'shape': (1000000000000,")
        return data[:10] + text[:hl].ljust(hl).encode("latin1") + data[10 + hl:], ".npy", kind
    if kind == "fortran_bigendian":  # valid: must be accepted (converted), never an internal error
        return npy(np.asfortranarray(good.astype(">f4")))
    if kind == "int_overflow":  # valid numbers, float32 cannot hold them: inf after the cast
        return npy(np.full(good.shape, 10**300, np.float64) if rng.integers(2) else np.full(good.shape, 2**63 - 1, np.int64))
    if kind == "npz_nested":
        return _npz_bytes({"x.npy": _npz_bytes({"x.npy": _npy_bytes(good)})}), ".npz", kind
    # npz_lying_size: a member whose .npy header claims far more data than the member holds
    data = _npy_bytes(good)
    hl = int.from_bytes(data[8:10], "little")
    text = data[10:10 + hl].decode("latin1").replace(f"'shape': ({n},", f"'shape': ({n * 50},")
    return _npz_bytes({"x.npy": data[:10] + text[:hl].ljust(hl).encode("latin1") + data[10 + hl:]}), ".npz", kind


# ------------------------------------------------------------------------------------- cases

@dataclass
class Case:
    name: str                 # e.g. "tflite-0042"
    seed: str                 # the seed model's name
    mutation: str
    model: bytes
    model_suffix: str
    calib: bytes
    calib_suffix: str
    verify: bool
    extra: list = field(default_factory=list)


def _calib_npy(arr: np.ndarray) -> bytes:
    return _npy_bytes(arr.astype(np.float32))


# The default most often; entropy rarely, as its search takes 1-4 s on these small models.
CALIB_METHODS = ("minmax",) * 12 + ("percentile",) * 3 + ("entropy",)


def make_cases(kind: str, count: int, seed: int, the_seeds: list[Seed] | None = None):
    """`count` cases of `kind` ("tflite", "onnx" or "calib"), a pure function of `seed`."""
    the_seeds = the_seeds or seeds()
    rng = np.random.default_rng([seed, ("tflite", "onnx", "calib").index(kind)])
    pool = [s for s in the_seeds if s.kind == kind] if kind != "calib" else [s for s in the_seeds if not s.name.startswith("int8")]
    for i in range(count):
        s = _pick(rng, pool)
        # Verification (LiteRT + TFLite Micro) runs for every int8 seed, whose mutants pass through
        # to it untouched, and for one case in four otherwise, where it checks edgekit's own output.
        verify = s.name.startswith("int8") or rng.integers(4) == 0
        method = CALIB_METHODS[int(rng.integers(len(CALIB_METHODS)))]  # all three calibrators see hostile graphs
        extra = [] if method == "minmax" else ["--calib-method", method]
        if kind == "tflite":
            model, what = mutate_tflite(rng, s.model)
            yield Case(f"tflite-{i:05d}", s.name, what, model, s.suffix, _calib_npy(s.calib), ".npy", verify, extra)
        elif kind == "onnx":
            model, what = mutate_onnx(rng, s.model)
            yield Case(f"onnx-{i:05d}", s.name, what, model, s.suffix, _calib_npy(s.calib), ".npy", verify, extra)
        else:
            data, suffix, what = hostile_calib(rng, s.calib)
            yield Case(f"calib-{i:05d}", s.name, what, s.model, s.suffix, data, suffix, verify, extra)


def valid_cases(the_seeds: list[Seed] | None = None):
    """Every seed unmutated: each must convert (exit 0), which shows the runner can see success."""
    for s in the_seeds or seeds():
        yield Case(f"seed-{s.name}", s.name, "none", s.model, s.suffix, _calib_npy(s.calib), ".npy", True)


# ------------------------------------------------------------------------------------ runner

@dataclass
class Outcome:
    case: Case
    status: str        # ok, clean, messy (exit 2, not one line), internal, memory, hang, crash, partial
    code: int | None   # exit code, or -signal
    message: str       # stderr's last line (or what happened)
    seconds: float

    @property
    def exception(self) -> str:
        """The exception kind of an internal error ("KeyError", ...) or the status otherwise."""
        if self.status in ("internal", "memory") and "internal error:" in self.message:
            return self.message.split("internal error:", 1)[1].strip().split(":", 1)[0]
        return self.status


def _argv(case: Case, folder: Path) -> list[str]:
    argv = ["convert", str(folder / f"model{case.model_suffix}"), "--calib", str(folder / f"calib{case.calib_suffix}"),
            "-o", str(folder / "out.tflite")]
    return argv + ([] if case.verify else ["--no-verify"]) + list(case.extra)


def write_case(case: Case, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"model{case.model_suffix}").write_bytes(case.model)
    (folder / f"calib{case.calib_suffix}").write_bytes(case.calib)
    return _argv(case, folder)


def _child(argv: list[str], folder: Path) -> None:
    """In the forked child: limits, output to files, run the CLI, exit with its code."""
    code = 1
    try:
        os.setpgid(0, 0)  # its own group, so a hang is killed with whatever it started (TFLM's child)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        out = os.open(folder / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        err = os.open(folder / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        # under pytest sys.stdout/stderr are its capture objects, not fds 1 and 2: write where we look
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.environ.pop("EDGEKIT_DEBUG", None)
        from edgekit.cli import main
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # escaped main(): as bad as an internal error
            print(f"internal error: {type(e).__name__}: escaped cli.main: {e}", file=sys.stderr)
            code = 3
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _classify(case: Case, folder: Path, code: int | None, seconds: float, hung: bool) -> Outcome:
    text = (folder / "stderr").read_text(errors="replace").strip() if (folder / "stderr").exists() else ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if hung:
        return Outcome(case, "hang", code, f"killed after {TIMEOUT_S} s", seconds)
    if code is not None and code < 0:
        return Outcome(case, "crash", code, f"killed by signal {-code} ({signal.Signals(-code).name}); {last}", seconds)
    if "MemoryError" in text:
        return Outcome(case, "memory", code, last, seconds)
    if code == 0:
        return Outcome(case, "ok", code, last, seconds)
    if code == 3 or "internal error" in text:
        return Outcome(case, "internal", code, last, seconds)
    if (folder / "out.tflite").exists():
        return Outcome(case, "partial", code, "failed but left an output file: " + last, seconds)
    if code == 2 and len(lines) == 1 and lines[0].startswith("error:"):
        return Outcome(case, "clean", code, last, seconds)
    return Outcome(case, "messy", code, f"exit {code}, {len(lines)} line(s): {last}", seconds)


def warm_up() -> None:
    """Import what every case needs once, in the parent, so each forked child starts warm."""
    import edgekit.cli  # noqa: F401
    import edgekit.convert  # noqa: F401
    import edgekit.importers.onnx_import  # noqa: F401
    import edgekit.importers.tflite_import  # noqa: F401
    import edgekit.convert_report  # noqa: F401
    import edgekit.runtime.litert  # noqa: F401
    import edgekit.verify  # noqa: F401


def run_cases(cases, work: Path, workers: int = 2, timeout: float = TIMEOUT_S, keep=lambda o: False):
    """Run cases in forked children, `workers` at a time; yield an Outcome per case as it ends.

    A case's folder is deleted after it ends unless keep(outcome) is true.
    """
    warm_up()
    cases = iter(cases)
    running: dict[int, tuple[Case, Path, float]] = {}
    done = False
    while running or not done:
        while not done and len(running) < workers:
            case = next(cases, None)
            if case is None:
                done = True
                break
            folder = work / case.name
            argv = write_case(case, folder)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(argv, folder)
            running[pid] = (case, folder, time.monotonic())
        time.sleep(0.005)
        for pid, (case, folder, start) in list(running.items()):
            waited, status = os.waitpid(pid, os.WNOHANG)
            hung = False
            if waited == 0:
                if time.monotonic() - start <= timeout:
                    continue
                hung = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status = os.waitpid(pid, 0)
            del running[pid]
            code = os.waitstatus_to_exitcode(status)
            outcome = _classify(case, folder, code, time.monotonic() - start, hung)
            if not keep(outcome):
                shutil.rmtree(folder, ignore_errors=True)
            yield outcome


def save_repro(outcome: Outcome, folder: Path, repro_root: Path) -> Path:
    """Keep a non-clean case as a minimal repro: the model, the calibration file and the command."""
    dest = repro_root / outcome.case.name
    dest.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file() and f.name.startswith(("model", "calib", "stderr")):
            shutil.copy(f, dest / f.name)
    argv = _argv(outcome.case, Path("."))
    (dest / "repro.json").write_text(json.dumps({
        "status": outcome.status, "message": outcome.message, "seed_model": outcome.case.seed,
        "mutation": outcome.case.mutation, "command": "edgekit " + " ".join(argv)}, indent=2))
    return dest


def summarize(outcomes: list[Outcome]) -> dict:
    by_status: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for o in outcomes:
        by_status[o.status] = by_status.get(o.status, 0) + 1
        if o.status in BAD:
            by_kind[o.exception] = by_kind.get(o.exception, 0) + 1
    return {"cases": len(outcomes), "outcomes": dict(sorted(by_status.items())),
            "bad_kinds": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))}
