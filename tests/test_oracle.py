"""Oracle: with identical calibration ranges, edgekit's int8 tensors are byte-identical to Google's
ai-edge-quantizer (recipe static_wi8_ai8): types, scales, zero points, weights and biases."""

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgekit.export.tflite_writer import write_tflite
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.scheme import quantize_graph

import ir_models

aeq = pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer has wheels for Linux x86-64 only")


def _tensors(model_bytes: bytes) -> dict:
    m = fb.ModelT.InitFromPackedBuf(model_bytes, 0)
    out = {}
    for t in m.subgraphs[0].tensors:
        q = t.quantization
        data = m.buffers[t.buffer].data
        out[t.name.decode()] = {
            "type": t.type,
            "shape": list(t.shape),
            "scale": None if q is None or q.scale is None else np.asarray(q.scale, np.float32).tobytes(),
            "zero_point": None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint).tolist(),
            "axis": None if q is None or q.scale is None or len(q.scale) == 1 else q.quantizedDimension,
            "data": None if data is None else np.asarray(data, np.uint8).tobytes(),
        }
    return out


def _aeq_quantize(float_model: bytes, graph, ranges) -> bytes:
    from ai_edge_quantizer import quantizer, recipe
    qt = quantizer.Quantizer(float_model)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    # AEQ's calibration result: tensor name -> {"min", "max"} arrays of the tensor's rank
    result = {}
    for name, (lo, hi) in ranges.items():
        rank = (1,) * len(graph.tensors[name].shape)
        result[name] = {"min": np.full(rank, lo, np.float32), "max": np.full(rank, hi, np.float32)}
    return qt.quantize(result).quantized_model


@pytest.mark.parametrize("build", [ir_models.cnn, ir_models.ds_block, ir_models.residual])
def test_int8_tensors_byte_identical_to_ai_edge_quantizer(build):
    graph = build()
    ranges = calibrate(graph, ir_models.calibration(graph))
    ours = _tensors(write_tflite(graph, quantize_graph(graph, ranges)))
    theirs = _tensors(_aeq_quantize(write_tflite(graph), graph, ranges))
    assert set(ours) == set(theirs)
    for name in ours:
        for field in ("type", "shape", "scale", "zero_point", "axis", "data"):
            assert ours[name][field] == theirs[name][field], f"{graph.name}: tensor '{name}' differs in {field}"


def test_oracle_covers_all_required_ops():
    kinds = set()
    for build in (ir_models.cnn, ir_models.ds_block, ir_models.residual):
        kinds |= {op.kind for op in build().ops}
    assert {"conv2d", "depthwise_conv2d", "fully_connected", "max_pool2d", "avg_pool2d", "add", "mean",
            "softmax"} <= kinds
