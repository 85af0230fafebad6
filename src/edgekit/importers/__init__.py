"""Model importers: every supported source becomes one Graph (or passes through if already int8)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekitError
from ..graph import Graph
from ..tflite_check import check_memory
from ..tflite_file import is_fully_int8, quantization_kind, read_model
from .tflite_import import import_tflite
from .tinytorch import import_tinytorch

MAX_MODEL_BYTES = 512 * 1024 * 1024  # nothing a microcontroller course deploys is bigger


@dataclass
class Source:
    kind: str                 # "tinytorch", "onnx", "tflite-float", "tflite-int8" or "graph"
    name: str                 # base name for outputs and reports
    graph: Graph | None       # None for an int8 .tflite, which passes through untouched
    data: bytes | None = None  # the file's bytes, for files
    layout: str = "NHWC"      # layout of 4-D inputs as the user gives them (TinyTorch, ONNX: NCHW)


def read_file(path: Path) -> bytes:
    if not path.exists():
        raise EdgekitError(f"'{path}' does not exist; check the path")
    if path.is_dir():
        raise EdgekitError(f"'{path}' is a folder; give a model file (.onnx or .tflite)")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise EdgekitError(f"'{path}' is {size / 2**20:.0f} MB; edgekit converts models up to "
                           f"{MAX_MODEL_BYTES // 2**20} MB")
    return path.read_bytes()


def _own_copy(graph: Graph) -> Graph:
    """A copy the pipeline may rewrite (passes, finalize) without touching the caller's graph.

    The weight arrays are shared, not copied: the rewrites replace them, never write into them,
    and a copy would double the memory of a big model."""
    shared = {id(t.data): t.data for t in graph.tensors.values() if t.data is not None}
    return copy.deepcopy(graph, shared)


def load(source, example_input=None) -> Source:
    """A path to .onnx/.tflite, a TinyTorch model object (needs example_input), or an edgekit
    float `Graph` (e.g. from edgekit.zoo), which is copied, not changed."""
    if isinstance(source, Graph):
        return Source("graph", source.name or "graph", _own_copy(source).finalize())
    if isinstance(source, (str, Path)):
        path = Path(source)
        data = read_file(path)
        if data[:1] == b"\x80" or data[:2] == b"PK" or path.suffix in (".pkl", ".pickle", ".pt", ".pth", ".npz"):
            raise EdgekitError(f"'{path.name}' is a pickle or PyTorch/numpy checkpoint; edgekit never "
                               "unpickles files: export the model to ONNX, or call edgekit.convert on "
                               "the model object")
        if path.suffix == ".onnx":
            from .onnx_import import import_onnx  # lazy: onnx takes ~0.5 s to import; only ONNX files need it
            graph = import_onnx(data, name=path.stem)
            # a channels-last export (tf2onnx from Keras) takes NHWC inputs, like its original
            return Source("onnx", path.stem, graph, data, graph.source_layout)
        if path.suffix == ".tflite":
            model = read_model(data, path.name)
            check_memory(model, path.name)  # before LiteRT, TFLM or the importer allocate anything
            if quantization_kind(model) in ("int8", "uint8") or is_fully_int8(model):
                return Source("tflite-int8", path.stem, None, data)
            return Source("tflite-float", path.stem, import_tflite(data, name=path.stem), data)
        raise EdgekitError(f"'{path.name}': unknown model type '{path.suffix or 'no extension'}'; "
                           "edgekit reads .onnx and .tflite files, or a TinyTorch model object")
    if hasattr(source, "forward") or callable(source):
        if example_input is None:
            raise EdgekitError("a TinyTorch model needs example_input= (one input batch, e.g. x[:1]) "
                               "so edgekit can trace its forward pass")
        graph = import_tinytorch(source, example_input)
        return Source("tinytorch", type(source).__name__.lower(), graph, None, "NCHW")
    raise EdgekitError(f"cannot convert a {type(source).__name__}; give a TinyTorch model object, "
                       "an edgekit Graph, or the path of an .onnx or .tflite file")
