"""edgekit: from a TinyTorch, ONNX or TFLite model to a verified int8 model on a (real or simulated) board.

    import edgekit
    q = edgekit.convert(model, example_input=x[:1], calibration=x_train[:200])
    q.save("digits_int8.tflite")
    print(q.report())
    report = edgekit.deploy(q, "nano33ble")   # the board when connected, else its simulator
    for frame in edgekit.stream("nano33ble", "imu", rate=100, seconds=2): ...   # week 4: sensors
    x, y, labels = edgekit.load_dataset("data/")                                  # a captured data set
"""
import importlib

from . import passes
from .convert import Converted, convert
from .errors import EdgekitError
from .importers import load
from .version import __version__

__all__ = ["convert", "Converted", "deploy", "profile", "export_onnx", "EdgekitError", "stream", "load_dataset",
           "load", "__version__"]

# The other names are imported when first used, so `edgekit convert` does not load the board
# stack (start-up counts: a small model converts in ~0.4 s, Python included).
_HOME = {"deploy": "deployment", "profile": "deployment",
         "stream": "capture.api", "load_dataset": "capture.api"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'edgekit' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)


def export_onnx(model, example_input, path):
    """Write a TinyTorch model as ONNX (the graph edgekit sees), e.g. to look at it in Netron."""
    from .export.onnx_export import export_onnx_graph  # lazy: onnx takes ~0.5 s to import
    src = load(model, example_input)
    graph = passes.optimize(src.graph).finalize()
    export_onnx_graph(graph, path)
    return path

