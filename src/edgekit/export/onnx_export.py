"""Write a Graph as an ONNX model (opset 13), to look at in Netron or run in onnxruntime.

The Graph is NHWC with TFLite's conventions; the ONNX model looks like a PyTorch export: NCHW
activations, OIHW conv weights, depthwise convs as group convs, dense layers as Gemm (transB=1),
fused activations as separate Relu/Clip nodes. Node names are the Graph's op names and tensor
names the Graph's tensor names, so the two can be compared side by side. The batch dimension is
left dynamic ('N').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import EdgekitError
from ..graph import Graph
from ..passes import chw_to_hwc_index
from ..reference import run, same_pads

OPSET = 13
IR_VERSION = 8  # what PyTorch writes for opset 13-17; every current runtime reads it
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def graph_to_onnx(graph: Graph) -> onnx.ModelProto:
    """The ONNX model of a Graph (checked with onnx.checker)."""
    model = _Exporter(graph).model()
    onnx.checker.check_model(model)
    return model


def export_onnx_graph(graph: Graph, path) -> Path:
    """Write graph to `path` as an .onnx file and return the path."""
    model = graph_to_onnx(graph)
    path = Path(path)
    try:
        onnx.save(model, str(path))
    except OSError as e:
        raise EdgekitError(f"cannot write '{path}' ({e.strerror or e}); check the folder exists "
                           "and is writable") from None
    return path


def _nchw(shape) -> tuple:
    return (shape[0], shape[3], shape[1], shape[2]) if len(shape) == 4 else tuple(shape)


def _same_order(shape) -> bool:
    """True if NHWC and NCHW list this shape's elements in the same order (C == 1 or H*W == 1)."""
    return len(shape) != 4 or shape[3] == 1 or shape[1] * shape[2] == 1


class _Exporter:
    def __init__(self, graph: Graph):
        self.g = graph
        # Shapes from a run on zeros, so a graph that was never finalized exports too.
        feeds = {n: np.zeros(graph.tensors[n].shape, np.float32) for n in graph.inputs}
        self.shapes = {n: t.shape for n, t in graph.tensors.items()}
        self.shapes.update({n: v.shape for n, v in run(graph, feeds, keep=True).items()})
        self.consumers = graph.consumers()
        self.nodes, self.inits = [], []
        self.used = set(graph.activations())  # names taken; constants are named when first written
        self.chw_flat: dict[str, tuple] = {}  # Graph tensor -> (c, h, w): exported as a CHW flatten

    # -- building blocks --------------------------------------------------------------------
    def _name(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name

    def _const(self, base: str, data, dtype=np.float32) -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(data, dtype), name))
        return name

    def _node(self, op_type, inputs, output, name, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        return output

    def _main(self, op, op_type, inputs, **attrs):
        """The op's node, then its fused activation as a node of its own."""
        out, act = op.outputs[0], op.attrs.get("activation")
        y = self._name(f"{out}/{op_type.lower()}") if act else out
        self._node(op_type, inputs, y, op.name, **attrs)
        if act:
            self._activation(act, y, out, f"{op.name}/{act}")

    def _activation(self, kind, x, out, name):
        if kind == "relu":
            self._node("Relu", [x], out, name)
        else:  # relu6: Clip with min and max as inputs (opset 11+)
            lo, hi = self._const(f"{name}/min", 0.0), self._const(f"{name}/max", 6.0)
            self._node("Clip", [x, lo, hi], out, name)

    def _pads(self, x, kernel, attrs) -> list[int]:
        """ONNX pads [top, left, bottom, right] for TFLite's SAME/VALID on input x."""
        if attrs["padding"] == "VALID":
            return [0, 0, 0, 0]
        (t, b), (l, r) = (same_pads(s, k, st) for s, k, st in
                          zip(self.shapes[x][1:3], kernel, attrs["stride"]))
        return [t, l, b, r]

    def _value_info(self, name):
        dims = ["N"] + list(_nchw(self.shapes[name])[1:])
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    def model(self) -> onnx.ModelProto:
        for op in self.g.ops:
            getattr(self, f"_{op.kind}")(op)
        graph = helper.make_graph(self.nodes, self.g.name, [self._value_info(n) for n in self.g.inputs],
                                  [self._value_info(n) for n in self.g.outputs], self.inits)
        # HardSwish arrived in opset 14; every other op here reads the same in 13 and 14
        opset = 14 if any(op.kind == "hard_swish" for op in self.g.ops) else OPSET
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                 ir_version=IR_VERSION, producer_name="edgekit")

    # -- ops ---------------------------------------------------------------------------------
    def _conv(self, op, w, group):
        x, wn, bn = op.inputs
        kernel = list(w.shape[2:])
        self._main(op, "Conv", [x, self._const(wn, w), self._const(bn, self.g.tensors[bn].data)],
                   kernel_shape=kernel, strides=list(op.attrs["stride"]),
                   pads=self._pads(x, kernel, op.attrs), group=group)

    def _conv2d(self, op):
        self._conv(op, self.g.tensors[op.inputs[1]].data.transpose(0, 3, 1, 2), 1)  # OHWI -> OIHW

    def _depthwise_conv2d(self, op):  # [1, kh, kw, C*M] -> [C*M, 1, kh, kw], one group per channel
        self._conv(op, self.g.tensors[op.inputs[1]].data.transpose(3, 0, 1, 2), self.shapes[op.inputs[0]][3])

    def _fully_connected(self, op):
        x, wn, bn = op.inputs
        w, shape = self.g.tensors[wn].data, self.shapes[x]
        order = self.chw_flat.get(x)
        if len(shape) != 2:  # the Graph's dense layer flattens its input itself; ONNX's Gemm doesn't
            if not _same_order(shape):
                order = (shape[3], shape[1], shape[2])
            x = self._node("Flatten", [x], self._name(f"{x}/flat"), f"{op.name}/flatten", axis=1)
        if order:  # the input arrives in CHW order, the weights expect HWC: undo the permutation
            w = w[:, np.argsort(chw_to_hwc_index(*order))]
        self._main(op, "Gemm", [x, self._const(wn, w), self._const(bn, self.g.tensors[bn].data)], transB=1)

    def _pool(self, op, op_type):
        kernel = list(op.attrs["kernel"])
        self._main(op, op_type, [op.inputs[0]], kernel_shape=kernel, strides=list(op.attrs["stride"]),
                   pads=self._pads(op.inputs[0], kernel, op.attrs))

    def _max_pool2d(self, op):
        self._pool(op, "MaxPool")

    def _avg_pool2d(self, op):  # ONNX's default count_include_pad=0 matches TFLite
        self._pool(op, "AveragePool")

    def _mean(self, op):
        x = op.inputs[0]
        axes, keep = tuple(sorted(op.attrs["axes"])), bool(op.attrs.get("keepdims", True))
        if len(self.shapes[x]) == 4:
            if axes == (1, 2) and keep:
                return self._main(op, "GlobalAveragePool", [x])
            if not keep and axes != (1, 2):
                raise EdgekitError(f"layer '{op.name}': cannot export a mean over axes {axes} "
                                   "without keepdims to ONNX; only over H and W")
            axes = tuple(NHWC_TO_NCHW_AXIS[a] for a in axes)
        self._main(op, "ReduceMean", [x], axes=list(axes), keepdims=int(keep))

    def _binary(self, op, op_type):
        rank = max(len(self.shapes[t]) for t in op.inputs if not self.g.tensors[t].is_const)
        inputs = []
        for t in op.inputs:
            c = self.g.tensors[t].data
            if c is not None and rank == 4:  # broadcast against NHWC -> against NCHW
                c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 3, 1, 2)
            inputs.append(t if c is None else self._const(t, c))
        self._main(op, op_type, inputs)

    def _add(self, op):
        self._binary(op, "Add")

    def _mul(self, op):
        self._binary(op, "Mul")

    def _concat(self, op):
        axis = op.attrs["axis"] % len(self.shapes[op.inputs[0]])
        if len(self.shapes[op.inputs[0]]) == 4:
            axis = NHWC_TO_NCHW_AXIS[axis]
        self._main(op, "Concat", op.inputs, axis=axis)

    def _pad(self, op):
        pads = [tuple(p) for p in op.attrs["pads"]]
        if len(pads) == 4:
            pads = [pads[i] for i in (0, 3, 1, 2)]
        onnx_pads = [int(b) for b, _ in pads] + [int(e) for _, e in pads]  # all begins, then all ends
        self._main(op, "Pad", [op.inputs[0], self._const(f"{op.name}/pads", onnx_pads, np.int64)],
                   mode="constant")

    def _reshape(self, op):
        x, out = op.inputs[0], op.outputs[0]
        src, dst = self.shapes[x], self.shapes[out]
        if tuple(src) == tuple(dst):
            self._node("Identity", [x], out, op.name)
        elif _same_order(src) and _same_order(dst):
            shape = self._const(f"{op.name}/shape", (0,) + _nchw(dst)[1:], np.int64)  # 0: keep the batch
            self._node("Reshape", [x, shape], out, op.name)
        elif len(src) == 4 and len(dst) == 2 and out not in self.g.outputs and all(
                c.kind == "fully_connected" for c in self.consumers.get(out, [])):
            # A plain Flatten gives CHW order; the dense layers reading it get their weights permuted.
            self._node("Flatten", [x], out, op.name, axis=1)
            self.chw_flat[out] = (src[3], src[1], src[2])
        else:  # anything else: to NHWC order, reshape there, and back
            if len(src) == 4:
                x = self._node("Transpose", [x], self._name(f"{x}/nhwc"), f"{op.name}/to_nhwc",
                               perm=[0, 2, 3, 1])
            shape = self._const(f"{op.name}/shape", (0,) + tuple(dst[1:]), np.int64)
            y = self._name(f"{out}/nhwc") if len(dst) == 4 else out
            self._node("Reshape", [x, shape], y, op.name)
            if len(dst) == 4:
                self._node("Transpose", [y], out, f"{op.name}/to_nchw", perm=[0, 3, 1, 2])

    def _softmax(self, op):
        x, beta = op.inputs[0], op.attrs.get("beta", 1.0)
        axis = 1 if len(self.shapes[x]) == 4 else -1  # the channels of NCHW, else the last axis
        if beta != 1.0:
            x = self._node("Mul", [x, self._const(f"{op.name}/beta", beta)],
                           self._name(f"{x}/scaled"), f"{op.name}/beta")
        self._main(op, "Softmax", [x], axis=axis)

    def _relu(self, op):
        self._activation("relu", op.inputs[0], op.outputs[0], op.name)

    def _relu6(self, op):
        self._activation("relu6", op.inputs[0], op.outputs[0], op.name)

    def _sigmoid(self, op):
        self._main(op, "Sigmoid", op.inputs)

    def _tanh(self, op):
        self._main(op, "Tanh", op.inputs)

    def _hard_swish(self, op):
        self._main(op, "HardSwish", op.inputs)  # opset 14
