"""edgekit.edgetpu.predict: the Edge TPU compiler's documented rules (see edgekit.edgetpu.rules for their sources)."""
import json

import numpy as np
import pytest

import edgetpu_builders as eb
import ir_models
import tflite_builders
from edgekit import tflite_file
from edgekit.edgetpu import from_compiled_model, predict
from edgekit.edgetpu.rules import (DATA_TYPE, MAPPED, MORE_THAN_ONE_SUBGRAPH, NOT_SUPPORTED, RANK, RULES,
                                   UNSPECIFIED)
from edgekit.errors import EdgekitError
from edgekit.export.tflite_writer import write_tflite
from edgekit.sim.layers import layers
from edgekit.targets import load_board
from tflite_builders import OP, _options, fb
from reference_models import REFERENCE_MODELS, needs_reference_models

CACHE = 8_388_608


def statuses(p):
    return [o.status for o in p.ops]


# -- what maps -------------------------------------------------------------------------------------

def test_fully_mappable_int8_cnn():
    model = ir_models.int8(ir_models.cnn())
    p = predict(model)
    assert p.source == "predicted"
    assert (p.total_ops, p.mapped_ops, p.cpu_ops, p.subgraphs) == (7, 7, [], 1)
    assert p.mapping == [True] * 7 and set(statuses(p)) == {MAPPED}
    assert p.on_chip_bytes == sum(l.weight_bytes for l in layers(model)) and p.off_chip_bytes == 0
    assert p.op_table == [("CONV_2D", 2, MAPPED), ("MAX_POOL_2D", 1, MAPPED), ("AVERAGE_POOL_2D", 1, MAPPED),
                          ("RESHAPE", 1, MAPPED), ("FULLY_CONNECTED", 1, MAPPED), ("SOFTMAX", 1, MAPPED)]
    d = json.loads(json.dumps(p.to_dict()))  # plain data for reports and the simulator
    assert d["mapping"] == p.mapping and d["ops"][0]["status"] == MAPPED
    # the table as the compiler's -s log lays it out
    assert p.table_text().splitlines()[:3] == [
        "Operator                       Count      Status", "",
        "CONV_2D                        2          Mapped to Edge TPU"]


def test_parameter_bytes_by_hand():
    """tflite_builders.int8_cnn: conv 72 + 16, depthwise 72 + 32, FC 160 + 20 bytes (int32 biases)."""
    p = predict(tflite_builders.int8_cnn())
    assert p.mapped_ops == 6 and [o.param_bytes for o in p.ops] == [88, 104, 0, 0, 180, 0]
    assert p.on_chip_bytes == 372
    # a 100-byte cache: the conv fits, the rest is streamed, in op order
    q = predict(tflite_builders.int8_cnn(), cache_bytes=100)
    assert (q.on_chip_bytes, q.off_chip_bytes) == (88, 284)
    assert [o.on_chip for o in q.ops if o.param_bytes] == [True, False, False]


@pytest.mark.parametrize("make", [ir_models.ds_block, ir_models.residual])
def test_other_int8_families_map(make):
    p = predict(ir_models.int8(make()))
    assert p.cpu_ops == [] and p.subgraphs == 1


def test_unsupported_op_in_the_middle():
    """conv1 -> ELU -> conv2, and conv3 on the input (later in the file, independent of the ELU)."""
    p = predict(eb.unsupported_in_middle())
    assert p.mapping == [True, False, False, True]
    assert statuses(p) == [MAPPED, NOT_SUPPORTED, MORE_THAN_ONE_SUBGRAPH, MAPPED]
    assert p.cpu_ops == ["ELU", "CONV_2D"] and p.mapped_ops == 2 and p.subgraphs == 1
    assert "not in the Edge TPU's op list" in p.cpu_reasons[0]
    assert "downstream of op 1 ELU" in p.cpu_reasons[1]
    assert [o.rule for o in p.ops] == ["", "op-list", "one-subgraph", ""]
    assert ("CONV_2D", 1, MORE_THAN_ONE_SUBGRAPH) in p.op_table and ("CONV_2D", 2, MAPPED) in p.op_table
    # the CPU op's parameters are neither cached nor streamed by the TPU
    assert p.on_chip_bytes == sum(o.param_bytes for o in p.ops if o.mapped)


def test_integer_output_op_is_an_unsupported_data_type():
    p = predict(eb.argmax_tail())
    assert p.mapping == [True, True, True, False] and p.ops[-1].status == DATA_TYPE  # as in I#409
    assert "int32" in p.cpu_reasons[0]


def test_four_dimensional_tensor():
    """A reshape to [2,4,4,16]: only the 3 innermost dims may be larger than 1; what follows is on the CPU."""
    p = predict(eb.reshape_to_batch())
    assert statuses(p) == [MAPPED, RANK, RANK, MORE_THAN_ONE_SUBGRAPH]
    assert "[2, 4, 4, 16]" in p.cpu_reasons[0] and p.mapped_ops == 1


def test_batch_two_maps_nothing():
    with pytest.raises(EdgekitError, match=r"nothing in this model maps to the Edge TPU: op 0 CONV_2D .*"
                                           r"\[2, 8, 8, 3\].*batch size 1"):
        predict(eb.batch2())


def test_nothing_maps():
    with pytest.raises(EdgekitError) as e:
        predict(eb.elu_first())
    msg = str(e.value)
    assert msg.startswith("nothing in this model maps to the Edge TPU: op 0 ELU")
    assert "Operation not supported" in msg and "target rpi4" in msg and "\n" not in msg


def test_float_interface_stays_on_the_cpu():
    """The converter's float input QUANTIZE and output DEQUANTIZE run on the CPU; the ops between map
    and the QUANTIZE does not split the graph. Statuses as in a real log (f0cal/google-coral#20)."""
    p = predict(eb.float_interface())
    assert p.mapping == [False, True, True, True, True, False]
    assert statuses(p)[0] == UNSPECIFIED and statuses(p)[-1] == DATA_TYPE
    assert p.cpu_ops == ["QUANTIZE", "DEQUANTIZE"] and p.subgraphs == 1
    assert p.ops[0].rule == p.ops[-1].rule == "float-io"


def test_uint8_accepted():
    model = eb.float_interface(np.uint8)
    assert tflite_file.quantization_kind(tflite_file.read_model(model)) == "mixed"  # float in and out
    p = predict(model)
    assert p.mapped_ops == 4 and p.cpu_ops == ["QUANTIZE", "DEQUANTIZE"]


# -- what is refused before anything runs -----------------------------------------------------------

def test_float_model():
    with pytest.raises(EdgekitError, match=r"not quantized: it computes in float.*run `edgekit convert` first"):
        predict(write_tflite(ir_models.cnn()))


def test_partly_quantized_model():
    with pytest.raises(EdgekitError, match=r"only partly quantized: op 3 TANH computes on float32.*"
                                           r"`edgekit convert`"):
        predict(eb.partly_quantized())


def test_int16_activations():
    with pytest.raises(EdgekitError, match=r"not fully 8-bit \(16x8.*`edgekit convert`"):
        predict(eb.int16_activations())


def test_compiled_model_refused():
    with pytest.raises(EdgekitError, match="already compiled.*from_compiled_model"):
        predict(eb.compiled_like())


def test_runtime_range():
    with pytest.raises(EdgekitError, match="use 10 to 14"):
        predict(tflite_builders.int8_cnn(), min_runtime=9)


# -- the parameter cache ----------------------------------------------------------------------------

def test_cache_size_from_the_board():
    assert load_board("coral").num("memory.param_cache_bytes") == CACHE


def test_model_larger_than_the_cache():
    """Two FC layers of 6 MiB each: the first is cached, the second streamed every inference."""
    p = predict(eb.two_big_fc())
    fc1, fc2 = 2048 * 3072 + 4 * 2048, 3072 * 2048 + 4 * 3072
    assert p.mapped_ops == 2 and p.subgraphs == 1
    assert p.on_chip_bytes == fc1 <= CACHE and p.off_chip_bytes == fc2
    assert [o.on_chip for o in p.ops] == [True, False]
    assert any("streamed" in n for n in p.notes)


# -- per-op limits ------------------------------------------------------------------------------------

def _pool(b, x, act):
    return b.unary(OP.MAX_POOL_2D, x, "pool", [1, 4, 4, 8], options=_options(
        fb.Pool2DOptionsT, padding=fb.Padding.VALID, strideH=2, strideW=2, filterHeight=2, filterWidth=2,
        fusedActivationFunction=act), version=2)


def _concat(b, x, fill):
    const = b.tensor("zeros", [1, 8, 8, 8], np.int8, np.full((1, 8, 8, 8), fill), 0.05, zero_point=0)
    y = b.tensor("concat", [1, 8, 8, 16])
    b.op(OP.CONCATENATION, [x, const], [y], _options(fb.ConcatenationOptionsT, axis=3))
    return y


def _mean(b, x, axes, shape):
    y = b.tensor("mean", shape)
    b.op(OP.MEAN, [x, b.tensor("axes", [len(axes)], np.int32, axes)], [y], _options(fb.ReducerOptionsT, keepDims=True))
    return y


def _pad(b, x, pads, shape):
    y = b.tensor("pad", shape)
    b.op(OP.PAD, [x, b.tensor("paddings", [4, 2], np.int32, pads)], [y])
    return y


def _strided(b, x, strides):
    y = b.tensor("slice", [1, 8 // strides[1], 8 // strides[2], 8])
    b.op(OP.STRIDED_SLICE, [x, b.tensor("begin", [4], np.int32, [0] * 4), b.tensor("end", [4], np.int32, [1, 8, 8, 8]),
                            b.tensor("strides", [4], np.int32, strides)], [y], _options(fb.StridedSliceOptionsT))
    return y


def _dynamic(b, x):
    y = b.unary(OP.RELU, x, "relu")
    b.tensors[y].shapeSignature = np.array([1, -1, -1, 8], np.int32)  # a batch of -1 alone is fine
    return y


def _softmax(b, x, n):
    return b.unary(OP.SOFTMAX, b.reshape(x, "flatten", [1, n]), "probs", options=_options(fb.SoftmaxOptionsT, beta=1.0))


LIMITS = {  # name: (input shape, op(s) after the conv, expected status of the last op, rule)
    "pool fused relu": ([1, 8, 8, 8], lambda b, x: _pool(b, x, fb.ActivationFunctionType.RELU), UNSPECIFIED,
                        "fused-activation"),
    "pool plain": ([1, 8, 8, 8], lambda b, x: _pool(b, x, 0), MAPPED, ""),
    "concat zeros": ([1, 8, 8, 8], lambda b, x: _concat(b, x, 0), MAPPED, ""),
    "concat constant": ([1, 8, 8, 8], lambda b, x: _concat(b, x, 3), UNSPECIFIED, "concat-constant"),
    "conv dilation": ([1, 8, 8, 8], lambda b, x: b.conv(x, "conv2", 8, dilation=(1, 2)), UNSPECIFIED, "dilation"),
    "fc 3-D output": ([1, 8, 8, 8], lambda b, x: b.dense(x, "fc", 4, keep_dims=True), UNSPECIFIED, "fc-output"),
    "softmax 2-D": ([1, 8, 8, 8], lambda b, x: b.unary(OP.SOFTMAX, x, "probs"), UNSPECIFIED, "softmax"),
    "softmax 16,000": ([1, 50, 40, 8], lambda b, x: _softmax(b, x, 16_000), MAPPED, ""),
    "softmax 20,000": ([1, 50, 50, 8], lambda b, x: _softmax(b, x, 20_000), UNSPECIFIED, "softmax"),
    "mean spatial": ([1, 8, 8, 8], lambda b, x: _mean(b, x, [1, 2], [1, 1, 1, 8]), MAPPED, ""),
    "mean batch": ([1, 8, 8, 8], lambda b, x: _mean(b, x, [0], [1, 8, 8, 8]), UNSPECIFIED, "mean-axes"),
    "mean z of 8": ([1, 8, 8, 8], lambda b, x: _mean(b, x, [-1], [1, 8, 8, 1]), MAPPED, ""),
    "pad spatial": ([1, 8, 8, 8], lambda b, x: _pad(b, x, [[0, 0], [1, 1], [1, 1], [0, 0]], [1, 10, 10, 8]),
                    MAPPED, ""),
    "pad batch": ([1, 8, 8, 8], lambda b, x: _pad(b, x, [[1, 0], [0, 0], [0, 0], [0, 0]], [2, 8, 8, 8]),
                  RANK, "rank"),  # its output has batch 2: the rank rule catches it first
    "strided slice 1": ([1, 8, 8, 8], lambda b, x: _strided(b, x, [1, 1, 1, 1]), MAPPED, ""),
    "strided slice 2": ([1, 8, 8, 8], lambda b, x: _strided(b, x, [1, 2, 2, 1]), UNSPECIFIED, "strided-slice"),
    "dynamic shape": ([1, 8, 8, 8], lambda b, x: _dynamic(b, x), UNSPECIFIED, "static"),
}


@pytest.mark.parametrize("case", list(LIMITS))
def test_op_limits(case):
    shape, make, status, rule = LIMITS[case]
    b = eb.Builder()
    x = b.tensor("input", shape)
    c = b.conv(x, "conv", 8)
    p = predict(b.finish([x], [make(b, c)]))
    assert p.ops[-1].status == status and p.ops[-1].rule == rule, p.ops[-1]
    if rule:
        assert rule in RULES and p.cpu_reasons


def test_mean_over_z_needs_multiple_of_four():
    b = eb.Builder()
    x = b.tensor("input", [1, 8, 8, 8])
    c = b.conv(x, "conv", 6)
    p = predict(b.finish([x], [_mean(b, c, [3], [1, 8, 8, 1])]))
    assert p.ops[-1].rule == "mean-axes" and "6 channels" in p.ops[-1].reason


def test_runtime_version_changes_the_op_list():
    """TRANSPOSE maps from runtime 14 (compiler 16's default); compiled for -m 13 it stays on the CPU."""
    def model():
        b = eb.Builder()
        x = b.tensor("input", [1, 8, 8, 8])
        c = b.conv(x, "conv", 8)
        y = b.tensor("t", [1, 8, 8, 8])
        b.op(OP.TRANSPOSE, [c, b.tensor("perm", [4], np.int32, [0, 2, 1, 3])], [y])
        return b.finish([x], [y])
    assert predict(model()).ops[-1].status == MAPPED
    p = predict(model(), min_runtime=13)
    assert p.ops[-1].status == NOT_SUPPORTED and "runtime 14" in p.cpu_reasons[0]


def test_runtime_12_limits():
    """Runtime 12 and older: Mean and Pad along x/y only (O); 13+ also along z."""
    def model(make):
        b = eb.Builder()
        x = b.tensor("input", [1, 8, 8, 8])
        return b.finish([x], [make(b, b.conv(x, "conv", 8))])
    pad_z = model(lambda b, x: _pad(b, x, [[0, 0], [0, 0], [0, 0], [0, 4]], [1, 8, 8, 12]))
    mean_z = model(lambda b, x: _mean(b, x, [3], [1, 8, 8, 1]))
    for m, rule in ((pad_z, "pad-axes"), (mean_z, "mean-axes")):
        assert predict(m).ops[-1].status == MAPPED
        assert predict(m, min_runtime=12).ops[-1].rule == rule


# -- the example pair from google-coral/edgetpu test_data ----------------------------------------------

@needs_reference_models
def test_example_pair_agrees():
    """predict() on the uint8 MobileNet v1 0.25 agrees with what edgetpu_compiler made of it."""
    src = (REFERENCE_MODELS / "mobilenet_v1_0.25_128_quant.tflite").read_bytes()
    p = predict(src)
    compiled = from_compiled_model((REFERENCE_MODELS / "mobilenet_v1_0.25_128_quant_edgetpu.tflite").read_bytes())
    assert (p.total_ops, p.mapped_ops, p.subgraphs) == (31, 31, 1)
    assert compiled["edgetpu_ops"] == p.subgraphs == 1
    assert compiled["cpu_ops"] == p.cpu_ops == []
    assert p.off_chip_bytes == 0 and 0 < p.on_chip_bytes < compiled["executable_bytes"]
