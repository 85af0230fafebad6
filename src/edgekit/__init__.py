"""edgekit: from a TinyTorch, ONNX or TFLite model to a verified int8 model on a (real or simulated) board.

    import edgekit
    q = edgekit.convert(model, example_input=x[:1], calibration=x_train[:200])
    q.save("digits_int8.tflite")
    print(q.report())
    report = edgekit.deploy(q, "nano33ble")   # the board when connected, else its simulator
    for frame in edgekit.stream("nano33ble", "imu", rate=100, seconds=2): ...   # week 4: sensors
    x, y, labels = edgekit.load_dataset("data/")                                  # a captured data set
"""
from . import passes
from .capture.api import load_dataset, stream
from .convert import Converted, convert
from .deployment import deploy, profile
from .errors import EdgekitError
from .importers import load
from .version import __version__

__all__ = ["convert", "Converted", "deploy", "profile", "export_onnx", "EdgekitError", "stream", "load_dataset",
           "__version__"]


def export_onnx(model, example_input, path):
    """Write a TinyTorch model as ONNX (the graph edgekit sees), e.g. to look at it in Netron."""
    from .export.onnx_export import export_onnx_graph  # lazy: onnx takes ~0.5 s to import
    src = load(model, example_input)
    graph = passes.optimize(src.graph).finalize()
    export_onnx_graph(graph, path)
    return path

