"""Layouts and op options in the .tflite edgekit writes and reads, where square shapes hide mistakes.

Height and width differ everywhere below (input, strides, windows), activations exceed ReLU6's 6, and
tensors are joined along height and width as well as channels, so that a stride or window written
width first, a fused activation written as another, or a concatenation along the wrong axis changes
the result. Each graph is written by edgekit (float), run by LiteRT, and compared with edgekit's numpy
reference of the same graph (NHWC, TFLite semantics); then read back by edgekit's TFLite importer,
whose graph must compute what LiteRT computes from the file.
"""
import numpy as np
import pytest

import ir_models
from edgekit import reference
from edgekit.export.tflite_writer import misaligned_buffers, write_tflite
from edgekit.importers.tflite_import import import_tflite
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.scheme import quantize_graph
from edgekit.runtime import litert


def strided():
    """conv stride (2, 1), max pool window (3, 1) stride (1, 2), avg pool window (1, 3) stride (2, 1)."""
    b = ir_models.Builder((1, 12, 10, 3), 11, "strided")
    w, bias = b._wb("conv", (6, 3, 3, 3), 27, 6)
    b.x = b.g.add_op("conv2d", [b.x, w, bias], "conv", stride=(2, 1), padding="SAME", activation="relu")  # -> 6x10
    b.op("max_pool2d", "maxpool", kernel=(3, 1), stride=(1, 2), padding="VALID")  # -> 4x5
    b.op("avg_pool2d", "avgpool", kernel=(1, 3), stride=(2, 1), padding="SAME")  # -> 2x5
    return b.done()


def relu6_clips():
    """conv with a fused ReLU6 whose pre-activations reach well past 6."""
    b = ir_models.Builder((1, 6, 5, 4), 12, "relu6")
    b.conv("conv", 8, act="relu6")
    w = b.g.tensors["conv/weights"]
    w.data = w.data * 20  # pre-activations of about +-20
    return b.done()


def concat_spatial():
    """Two convs joined along height, then along width, then along channels."""
    b = ir_models.Builder((1, 6, 4, 3), 13, "concat")
    x = b.x
    top, bottom = b.conv("top", 5, x=x, act=None), b.conv("bottom", 5, x=x, act=None)
    tall = b.op("concat", "join_h", inputs=[top, bottom], axis=1)     # 12x4x5
    wide = b.op("concat", "join_w", inputs=[tall, tall], axis=2)      # 12x8x5
    b.op("concat", "join_c", inputs=[wide, wide], axis=3)             # 12x8x10
    return b.done()


GRAPHS = [strided, relu6_clips, concat_spatial]
SHAPES = {"strided": (1, 2, 5, 6), "relu6": (1, 6, 5, 8), "concat": (1, 12, 8, 10)}


def _inputs(g, n=3):
    shape = g.tensors[g.inputs[0]].shape
    return np.random.default_rng(3).normal(0, 1, (n,) + tuple(shape[1:])).astype(np.float32)


@pytest.mark.parametrize("build", GRAPHS, ids=lambda f: f.__name__)
def test_litert_runs_the_written_file_as_the_graph_says(build):
    g = build()
    x = _inputs(g)
    want = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    assert want.shape[1:] == SHAPES[g.name][1:]  # the graph's own shapes, worked out by hand above
    got = litert.run(write_tflite(g), x)[0][0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if g.name == "relu6":  # the case is real: the clip is reached, and by most outputs
        assert want.max() == 6.0 and (want == 6.0).mean() > 0.2


@pytest.mark.parametrize("build", GRAPHS, ids=lambda f: f.__name__)
def test_the_tflite_importer_reads_back_what_litert_runs(build):
    data = write_tflite(build())
    g = import_tflite(data, "read_back")
    x = _inputs(g)
    got = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    np.testing.assert_allclose(got, litert.run(data, x)[0][0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [strided, concat_spatial], ids=lambda f: f.__name__)
def test_int8_file_runs_like_the_float_graph(build):
    """The same options in the int8 file: LiteRT's int8 run stays within a few output steps of float."""
    g = build()
    x = ir_models.calibration(g, 16)
    q = quantize_graph(g, calibrate(g, x))
    got = litert.run(write_tflite(g, q), x)[0][0]
    want = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    step = float(q[g.outputs[0]].scale[0])
    assert np.abs(got - want).max() <= 4 * step and np.abs(got - want).mean() <= step


def test_every_buffer_starts_on_16_bytes():
    """TFLite Micro reads weights in place from flash with SIMD loads: every buffer 16-byte aligned."""
    for build in GRAPHS + [ir_models.ds_block, ir_models.residual]:
        g = build()
        for data in (write_tflite(g), ir_models.int8(g, n=4)):
            assert misaligned_buffers(data) == [], g.name
