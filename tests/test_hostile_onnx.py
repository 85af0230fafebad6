"""Hostile and broken .onnx files given to `edgekit convert`.

Each case takes a valid model (built as torch.onnx.export writes it, see test_onnx.py), breaks one
field the way the fuzz campaign found, and expects exit 2 with one line naming what is wrong:
never an internal error (exit 3), a traceback or a half-written output. The size bombs run in a
child process, whose time and peak memory are measured.
"""
import json
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from edgekit.cli import main
from test_onnx import Model, cnn, mlp


def node(model, name):
    return next(n for n in model.graph.node if n.name == name)


def attr(model, node_name, attr_name):
    return next(a for a in node(model, node_name).attribute if a.name == attr_name)


def init(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def refuses(tmp_path, capsys, model, *expected):
    """`edgekit convert` on model ends with exit 2 and one error line holding every expected text."""
    path = tmp_path / "hostile.onnx"
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).normal(0, 1, (4, 3, 12, 12)).astype(np.float32))
    out = tmp_path / "out.tflite"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would print lines of its own before the error
        rc = main(["convert", str(path), "--calib", str(calib), "-o", str(out), "--no-verify"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for text in expected:
        assert text in err, err
    assert not out.exists()
    return err


# Each case: (what it breaks in cnn(), texts the error must name). cnn() is conv1 -> bn1 -> relu ->
# MaxPool -> conv2 (stride 2, pads 1) -> relu -> Flatten -> Gemm on a [1, 3, 12, 12] input.
def _dims_not_data(m):
    init(m, "conv1.weight").dims[3] = 4  # declares 8x3x3x4 but holds 8x3x3x3 values


def _truncated_data(m):
    t = init(m, "conv1.weight")
    data = numpy_helper.to_array(t).tobytes()
    t.ClearField("float_data")
    t.raw_data = data[:-6]


def _unknown_dtype(m):
    init(m, "fc.bias").data_type = 99


def _string_dtype(m):
    init(m, "fc.bias").data_type = TensorProto.STRING


def _no_output(m):
    del m.graph.output[:]


def _stride_zero(m):
    attr(m, "/conv2/Conv", "strides").ints[:] = [0, 0]


def _negative_kernel(m):
    attr(m, "/pool1/MaxPool", "kernel_shape").ints[:] = [-2, 2]


def _dilation_zero(m):
    node(m, "/conv2/Conv").attribute.append(helper.make_attribute("dilations", [0, 0]))


def _negative_pads(m):
    attr(m, "/conv2/Conv", "pads").ints[:] = [1, -3, 1, 1]


def _group_zero(m):
    node(m, "/conv1/Conv").attribute.append(helper.make_attribute("group", 0))


def _group_not_dividing(m):
    node(m, "/conv2/Conv").attribute.append(helper.make_attribute("group", 3))  # 8 channels


def _axis_out_of_range(m):
    attr(m, "/Flatten", "axis").i = 7


def _attribute_wrong_type(m):
    a = attr(m, "/conv2/Conv", "strides")
    a.type, a.f = AttributeProto.FLOAT, 2.0


def _attributes_swapped(m):
    conv = node(m, "/conv2/Conv")
    pads, strides = (next(a for a in conv.attribute if a.name == n) for n in ("pads", "strides"))
    pads.name, strides.name = "strides", "pads"  # pads now holds 2 values


def _attribute_missing(m):
    pool = node(m, "/pool1/MaxPool")
    pool.attribute.remove(attr(m, "/pool1/MaxPool", "kernel_shape"))


def _kernel_shape_disagrees(m):
    attr(m, "/conv1/Conv", "kernel_shape").ints[:] = [5, 5]


def _old_opset(m):
    m.opset_import[0].version = 7


def _future_opset(m):
    m.opset_import[0].version = 999


def _input_missing(m):
    node(m, "/relu2/Relu").input[0] = "/conv9/Conv_output_0"


def _cycle(m):
    node(m, "/conv2/Conv").input[0] = "/relu2/Relu_output_0"  # conv2 reads what its own ReLU makes


def _required_input_dropped(m):
    del node(m, "/bn1/BatchNormalization").input[4]


def _no_node_output(m):
    del node(m, "/relu1/Relu").output[:]


def _zero_input_dim(m):
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 0


def _bn_params_wrong_length(m):
    t = init(m, "bn1.running_var")
    t.CopyFrom(numpy_helper.from_array(np.ones(5, np.float32), "bn1.running_var"))


def _bias_wrong_length(m):
    t = init(m, "conv1.bias")
    t.CopyFrom(numpy_helper.from_array(np.ones(7, np.float32), "conv1.bias"))


def _gemm_features_wrong(m):
    t = init(m, "fc.weight")
    t.CopyFrom(numpy_helper.from_array(np.ones((5, 100), np.float32), "fc.weight"))


def _output_is_input(m):
    m.graph.output[0].name = "input"


def _huge_same_window(m):
    pool = node(m, "/pool1/MaxPool")
    attr(m, "/pool1/MaxPool", "kernel_shape").ints[:] = [30_000, 30_000]
    pool.attribute.append(helper.make_attribute("auto_pad", "SAME_UPPER"))  # the reference pads a 30,011² copy


def _stride_beyond_32_bits(m):
    attr(m, "/conv2/Conv", "strides").ints[:] = [2, 2**62]


def _infinite_weight_times_zero(m):
    w = init(m, "fc.weight")
    arr = numpy_helper.to_array(w).copy()
    arr[0, 0] = np.inf
    w.CopyFrom(numpy_helper.from_array(arr, "fc.weight"))
    attr(m, "/fc/Gemm", "alpha").f = 0.0  # inf * 0 = NaN


def _huge_input(m):
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 2**40


CASES = {
    "initializer dims do not match its data": (_dims_not_data, ["initializer 'conv1.weight'", "[8, 3, 3, 4]"]),
    "initializer data cut short": (_truncated_data, ["initializer 'conv1.weight'", "holds"]),
    "unknown element type": (_unknown_dtype, ["initializer 'fc.bias'", "unknown (99)"]),
    "string element type": (_string_dtype, ["initializer 'fc.bias'", "STRING"]),
    "graph with no output": (_no_output, ["declares no output"]),
    "stride 0": (_stride_zero, ["'/conv2/Conv'", "'strides' is [0, 0]", ">= 1"]),
    "negative kernel": (_negative_kernel, ["'/pool1/MaxPool'", "'kernel_shape' is [-2, 2]"]),
    "dilation 0": (_dilation_zero, ["'/conv2/Conv'", "'dilations' is [0, 0]"]),
    "negative pads": (_negative_pads, ["'/conv2/Conv'", "'pads' is [1, -3, 1, 1]"]),
    "group 0": (_group_zero, ["'/conv1/Conv'", "'group' is 0"]),
    "group not dividing the channels": (_group_not_dividing, ["'/conv2/Conv'", "group=3"]),
    "axis out of range": (_axis_out_of_range, ["'/Flatten'", "'axis' is 7"]),
    "attribute of the wrong type": (_attribute_wrong_type, ["'/conv2/Conv'", "'strides' is float",
                                                            "a list of integers"]),
    "attributes swapped": (_attributes_swapped, ["'/conv2/Conv'", "'strides' is [1, 1, 1, 1]", "2 integers"]),
    "required attribute missing": (_attribute_missing, ["'/pool1/MaxPool'", "'kernel_shape'"]),
    "kernel_shape disagrees with the weight": (_kernel_shape_disagrees, ["'/conv1/Conv'", "'kernel_shape'"]),
    "opset too old": (_old_opset, ["opset 7"]),
    "opset from the future": (_future_opset, ["opset 999"]),
    "input naming a tensor that does not exist": (_input_missing, ["'/relu2/Relu'", "'/conv9/Conv_output_0'"]),
    "cycle": (_cycle, ["'/conv2/Conv'", "cycle"]),
    "required input dropped": (_required_input_dropped, ["'/bn1/BatchNormalization'", "required inputs"]),
    "node without output": (_no_node_output, ["'/relu1/Relu'", "no output"]),
    "zero input dimension": (_zero_input_dim, ["model input 'input'", "unknown size"]),
    "BatchNorm parameters of the wrong length": (_bn_params_wrong_length, ["'/bn1/BatchNormalization'", "[5]"]),
    "bias of the wrong length": (_bias_wrong_length, ["'/conv1/Conv'", "bias of shape [7]"]),
    "dense layer reading the wrong feature count": (_gemm_features_wrong, ["'/fc/Gemm'", "100 inputs"]),
    "output that is the input": (_output_is_input, ["'input'", "computes nothing"]),
    "SAME window of 30000x30000": (_huge_same_window, ["layer '/pool1/MaxPool'", "memory budget", "--max-memory"]),
    "stride beyond 32 bits": (_stride_beyond_32_bits, ["'/conv2/Conv'", "stride (2, 4611686018427387904)"]),
    "infinite weight times alpha 0": (_infinite_weight_times_zero, ["'/fc/Gemm'", "NaN"]),
    "input of 2^40 rows": (_huge_input, ["model input 'input'", "memory budget", "--max-memory"]),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_field_is_one_line_error(case, tmp_path, capsys):
    break_it, expected = CASES[case]
    model = cnn()
    break_it(model)
    refuses(tmp_path, capsys, model, *expected)


def test_name_that_is_not_utf8(tmp_path, capsys):
    """protobuf gives such a name as bytes; it reached the report and crashed it."""
    data = cnn().SerializeToString().replace(b"\x0e/pool1/MaxPool\"", b"\x0e/pool1/MaxPoo\x83\"")  # the node's name
    refuses(tmp_path, capsys, data, "node #3", "not UTF-8")


def test_constant_spanning_the_batch(tmp_path, capsys):
    """Mul of a [1, 16] input by a [4, 16] constant makes 4 rows: calibration then broke at batch 8."""
    m = Model()
    y = m.node("Mul", ["input", m.weight("w", 4, 16)], "/Mul")
    model = helper.make_model(helper.make_graph(
        m.nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None)], m.inits),
        opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "batch.onnx"
    path.write_bytes(model.SerializeToString())
    np.save(tmp_path / "c.npy", np.ones((8, 16), np.float32))
    rc = main(["convert", str(path), "--calib", str(tmp_path / "c.npy"), "--no-verify"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "'/Mul'" in err and "batch of 1 into 4" in err, err


def test_unbroken_model_converts(tmp_path):
    """The cases above break a model that converts: the refusals come from the broken field."""
    path = tmp_path / "cnn.onnx"
    path.write_bytes(cnn().SerializeToString())
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).normal(0, 1, (4, 3, 12, 12)).astype(np.float32))
    assert main(["convert", str(path), "--calib", str(calib), "-o", str(tmp_path / "o.tflite"), "--no-verify"]) == 0


def test_constant_folding_bomb_is_refused_before_computing(tmp_path, capsys):
    """Add of a [N, 1] and a [1, N] constant would broadcast to N² values (80 GB for N = 100,000)."""
    m = Model()
    a = m.const("a", np.ones((100_000, 1)), np.float64)
    b = m.const("b", np.ones((1, 100_000)), np.float64)
    big = m.node("Add", [a, b], "/bomb/Add")
    y = m.node("Mul", ["input", m.node("Shape", [big], "/bomb/Shape")], "/Mul")
    model = m.build(["batch_size", 2], [y])
    path = tmp_path / "fold.onnx"
    path.write_bytes(model.SerializeToString())
    np.save(tmp_path / "c.npy", np.ones((4, 2), np.float32))
    rc = main(["convert", str(path), "--calib", str(tmp_path / "c.npy"), "--no-verify"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "'/bomb/Add'" in err and "memory budget" in err and "--max-memory" in err, err


def test_mutated_bytes_never_internal_errors(tmp_path, capsys):
    """Byte flips of a valid file, seeded: each ends OK or with one error line."""
    data = mlp().SerializeToString()
    rng = np.random.default_rng(11)
    np.save(tmp_path / "c.npy", np.ones((4, 16), np.float32))
    for i in range(40):
        flipped = bytearray(data)
        for at in rng.integers(0, len(data), rng.integers(1, 6)):
            flipped[at] = rng.integers(0, 256)
        path = tmp_path / f"m{i}.onnx"
        path.write_bytes(bytes(flipped))
        rc = main(["convert", str(path), "--calib", str(tmp_path / "c.npy"), "--no-verify"])
        err = capsys.readouterr().err.strip()
        assert rc in (0, 2), f"case {i}: {err}"
        assert rc == 0 or len(err.splitlines()) == 1, f"case {i}: {err}"


# -- the size bomb: 30,008² floats from a 64-value input --------------------------------------------
def pad_bomb(pad=15_000) -> bytes:
    """Reshape a [1, 64] input to [1, 1, 8, 8], then Pad it by `pad` on every side."""
    shape = numpy_helper.from_array(np.array([1, 1, 8, 8], np.int64), "shape")
    pads = numpy_helper.from_array(np.array([0, 0, pad, pad, 0, 0, pad, pad], np.int64), "pads")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("Pad", ["r", "pads"], ["y"], name="pad")]
    g = helper.make_graph(nodes, "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape, pads])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


# The child times only the conversion: importing onnx (1-2 s on a busy machine) is paid by every
# conversion, bomb or not. A 1.5 GB address-space limit turns a regression into a MemoryError
# (exit 3) instead of taking the machine's memory. Its peak memory is VmHWM, its own address
# space's high-water mark: Linux carries getrusage's ru_maxrss across exec, so that would report
# the size of the pytest process that forked it (570 MB late in a full run).
CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
import edgekit.importers.onnx_import
from edgekit.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
seconds = time.perf_counter() - t
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rc": rc, "seconds": seconds, "peak_mb": hwm_kb / 1024,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(tmp_path, model: bytes, env=None):
    path, calib = tmp_path / "bomb.onnx", tmp_path / "calib.npy"
    path.write_bytes(model)
    np.save(calib, np.zeros((8, 64), np.float32))
    proc = subprocess.run([sys.executable, "-c", CHILD, "convert", str(path), "--calib", str(calib),
                           "-o", str(tmp_path / "bomb.tflite")],
                          capture_output=True, text=True, timeout=120, env=env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, proc.stderr.strip()


def test_pad_bomb_refused_fast_and_small(tmp_path):
    model = pad_bomb()
    assert len(model) < 425
    result, err = run_child(tmp_path, model)
    assert result["rc"] == 2 and len(err.splitlines()) == 1, err
    assert "memory budget" in err and "--max-memory" in err and "EDGEKIT_MAX_MEMORY_MB" in err, err
    assert result["seconds"] < 2, result
    assert result["peak_mb"] < 300, result
    assert not (tmp_path / "bomb.tflite").exists()


def test_pad_bomb_over_the_budget_is_refused_by_the_import(tmp_path):
    """With a 1 GB budget one sample's 3.4 GB no longer fits: the import itself names the pad layer."""
    import os
    env = dict(os.environ, EDGEKIT_MAX_MEMORY_MB="1024")
    result, err = run_child(tmp_path, pad_bomb(), env)
    assert result["rc"] == 2, err
    assert "one sample's activations up to layer 'pad'" in err and "[1, 30008, 30008, 1]" in err, err
    assert "1,024 MB" in err and "--max-memory" in err, err
    assert result["seconds"] < 2 and result["peak_mb"] < 300, result
