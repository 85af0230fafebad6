"""Look at every activation of a model while LiteRT runs it, one sample at a time.

Calibration and per-layer verification need each layer's output. LiteRT's fast path (the XNNPACK
delegate) fuses ops and reuses buffers, and its preserve-all-tensors mode turns that path off
(2-10x slower). So the model is written with every op's output as a model output: XNNPACK then
hands each one back, and memory holds one sample's activations whatever the number of samples
or the depth of the network.
"""
from __future__ import annotations

import os

import numpy as np

from ..export.tflite_writer import write_tflite
from ..graph import Graph
from ..runtime import litert
from .scheme import QParams


class Observer:
    """The graph (float, or int8 given `quant`) in LiteRT, every activation readable."""

    def __init__(self, graph: Graph, quant: dict[str, QParams] | None = None):
        self.graph = graph
        self.it = litert.load(write_tflite(graph, quant, observe=True), threads=os.cpu_count())
        self.input = self.it.get_input_details()[0]
        self.outputs = {d["name"]: d for d in self.it.get_output_details()}
        self.fallback = self.it.edgekit_fallback

    def _invoke(self, x: np.ndarray) -> None:
        with litert.errors("cannot run this model"):
            self.it.set_tensor(self.input["index"], litert.quantize_input(x[None], self.input))
            self.it.invoke()

    def first_outputs(self, samples: np.ndarray) -> np.ndarray:
        """The graph's first output for each sample (float), without looking at the rest."""
        d = self.outputs[self.graph.outputs[0]]
        out = []
        for x in samples:
            self._invoke(x)
            out.append(litert.dequantize(self.it.get_tensor(d["index"]), d)[0])
        return np.stack(out)

    def run(self, x: np.ndarray, visit) -> None:
        """Run one float sample (no batch axis) and call visit(tensor name, values) for every op's
        output, dequantized for an int8 model. The values are only valid inside visit."""
        self._invoke(x)
        for name, d in self.outputs.items():
            view = self.it.tensor(d["index"])()
            visit(name, view if d["dtype"] == np.float32 else litert.dequantize(view, d))
            del view  # LiteRT refuses to invoke while a view of its buffers is alive
