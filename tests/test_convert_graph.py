"""edgekit.convert on an edgekit IR Graph: the same pipeline, checks and report as for a file."""
import flatbuffers
import numpy as np
import pytest

import edgekit
from edgekit import zoo
from edgekit.errors import EdgekitError
from edgekit.export.tflite_writer import write_tflite
from edgekit.graph import Graph
from edgekit.quantize.calibrate import calibrate
from edgekit.quantize.scheme import quantize_graph
from edgekit.tflite_file import read_model


def _without_description(tflite: bytes) -> bytes:
    """The model re-packed with an empty description (it names the source, nothing else differs)."""
    model = read_model(tflite, "model")
    model.description = ""
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_zoo_graph_gives_the_hand_rolled_pipelines_bytes_and_a_verified_report(tmp_path):
    g = zoo.ds_cnn_kws()
    x = zoo.calibration_batch(g, 16)
    by_hand = write_tflite(g, quantize_graph(g, calibrate(g, x)), description="edgekit int8 from graph")
    q = edgekit.convert(g, calibration=x, val=x)  # given val, no calibration sample is held out
    assert q.tflite == by_hand
    info = q.to_dict()
    assert (info["source"], info["name"]) == ("graph", "ds_cnn_kws")
    assert info["agreement"]["top1_agreement"] >= 0.9 and "top-1 agreement" in q.report()
    # The same model written as a float .tflite and converted from the file: the same int8 model.
    path = tmp_path / "ds_cnn_kws.tflite"
    path.write_bytes(write_tflite(g))
    from_file = edgekit.convert(path, calibration=x, verify=False)
    assert _without_description(from_file.tflite) == _without_description(q.tflite)


def test_graph_with_a_wrong_calibration_shape_gets_the_one_line_error():
    g = zoo.ds_cnn_kws()  # input (1, 49, 10, 1), NHWC
    with pytest.raises(EdgekitError) as e:
        edgekit.convert(g, calibration=np.zeros((8, 10, 49, 1), np.float32))
    msg = str(e.value)
    assert "\n" not in msg
    assert "calibration set has shape (8, 10, 49, 1)" in msg and "(N, 49, 10, 1)" in msg


def test_graph_too_big_for_memory_is_refused_before_anything_is_allocated():
    g = Graph(name="huge")
    x = g.add_input("input", (1, 100_000, 100_000, 3))
    g.outputs = [g.add_op("relu", [x], "relu")]
    with pytest.raises(EdgekitError) as e:
        edgekit.convert(g, calibration=np.zeros((1, 1, 1, 3), np.float32))
    assert "\n" not in str(e.value) and "memory" in str(e.value)


def _needs_rewrites() -> Graph:
    """A graph convert's passes rewrite: a ReLU to fuse into the conv, a reshape to the shape it
    already has, an unused constant; activation shapes not inferred yet (never finalized)."""
    rng = np.random.default_rng(0)
    g = Graph(name="hand_built")
    x = g.add_input("input", (1, 8, 8, 3))
    w, b = g.add_const("conv/w", rng.normal(0, 0.3, (4, 3, 3, 3))), g.add_const("conv/b", rng.normal(0, 0.1, 4))
    y = g.add_op("conv2d", [x, w, b], "conv", stride=(1, 1), padding="SAME", activation=None)
    y = g.add_op("relu", [y], "relu")
    y = g.add_op("reshape", [y], "flatten", shape=(1, 256))
    y = g.add_op("reshape", [y], "again", shape=(1, 256))
    w, b = g.add_const("fc/w", rng.normal(0, 0.1, (5, 256))), g.add_const("fc/b", rng.normal(0, 0.1, 5))
    g.outputs = [g.add_op("fully_connected", [y, w, b], "fc")]
    g.add_const("unused", np.ones(3))
    return g


def _snapshot(g: Graph):
    return (g.name, list(g.inputs), list(g.outputs),
            [(op.kind, list(op.inputs), list(op.outputs), op.name, dict(op.attrs)) for op in g.ops],
            {n: (t.shape, None if t.data is None else (id(t.data), t.data.dtype, t.data.tobytes()))
             for n, t in g.tensors.items()})


def test_callers_graph_is_not_changed():
    g = _needs_rewrites()
    before = _snapshot(g)
    x = np.random.default_rng(1).uniform(-1, 1, (32, 8, 8, 3)).astype(np.float32)
    q = edgekit.convert(g, calibration=x, verify=False)
    assert [op.kind for op in q.graph.ops] == ["conv2d", "reshape", "fully_connected"]  # rewritten: a copy
    assert _snapshot(g) == before
    assert edgekit.convert(g, calibration=x, verify=False).tflite == q.tflite  # and it converts again alike
