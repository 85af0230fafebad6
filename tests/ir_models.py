"""Small IR graphs built in code for tests: each covers a family of ops."""
import numpy as np

from edgekit import passes
from edgekit.graph import Graph


class Builder:
    """Adds layers with seeded, realistically scaled weights."""

    def __init__(self, shape, seed=0, name="model"):
        self.g = Graph(name=name)
        self.rng = np.random.default_rng(seed)
        self.x = self.g.add_input("input", shape)
        self.channels = shape[-1]

    def _wb(self, name, wshape, fan_in, out):
        w = self.rng.normal(0, np.sqrt(2 / fan_in), wshape) * self.rng.uniform(0.5, 1.5, (out,) + (1,) * (len(wshape) - 1))
        return self.g.add_const(f"{name}/weights", w), self.g.add_const(f"{name}/bias", self.rng.normal(0, 0.1, out))

    def conv(self, name, out, k=3, stride=1, padding="SAME", act="relu", x=None):
        x = x or self.x
        cin = self.g.tensors[x].shape[-1] if self.g.tensors[x].shape else self.channels
        w, b = self._wb(name, (out, k, k, cin), k * k * cin, out)
        self.x = self.g.add_op("conv2d", [x, w, b], name, stride=(stride, stride), padding=padding, activation=act)
        self.channels = out
        return self.x

    def dwconv(self, name, k=3, stride=1, mult=1, act="relu6"):
        c = self.channels * mult
        w, b = self._wb(name, (c, 1, k, k), k * k, c)
        w_t = self.g.tensors[w]
        w_t.data = np.ascontiguousarray(w_t.data.transpose(1, 2, 3, 0))  # [1, k, k, C*M]
        w_t.shape = w_t.data.shape
        self.x = self.g.add_op("depthwise_conv2d", [self.x, w, b], name, stride=(stride, stride),
                               padding="SAME", multiplier=mult, activation=act)
        self.channels = c
        return self.x

    def op(self, kind, name, inputs=None, **attrs):
        self.x = self.g.add_op(kind, inputs or [self.x], name, **attrs)
        return self.x

    def dense(self, name, out, inp, act=None):
        w, b = self._wb(name, (out, inp), inp, out)
        self.x = self.g.add_op("fully_connected", [self.x, w, b], name, activation=act)
        return self.x

    def done(self):
        self.g.outputs = [self.x]
        passes.optimize(self.g)
        return self.g.finalize()


def cnn(seed=0, size=16, name="cnn"):
    """conv, max pool, conv (relu6), average pool, reshape, dense, softmax (size x size x 3 input)."""
    b = Builder((1, size, size, 3), seed, name)
    b.conv("conv1", 8)
    b.op("max_pool2d", "pool1", kernel=(2, 2), stride=(2, 2), padding="VALID")
    b.conv("conv2", 16, act="relu6")
    b.op("avg_pool2d", "pool2", kernel=(2, 2), stride=(2, 2), padding="VALID")
    flat = (size // 4) ** 2 * 16
    b.op("reshape", "flatten", shape=(1, flat))
    b.dense("fc", 10, flat)
    b.op("softmax", "softmax")
    return b.done()


def ds_block(seed=1, size=24, name="ds_block"):
    """strided conv, depthwise (incl. multiplier 2), pointwise, mean, dense, softmax (size x size x 1 input)."""
    b = Builder((1, size, size, 1), seed, name)
    b.conv("conv1", 8, stride=2, act="relu6")
    b.dwconv("dw1")
    b.conv("pw1", 16, k=1, act="relu6")
    b.dwconv("dw2", stride=2, mult=2)
    b.op("mean", "gap", axes=(1, 2), keepdims=False)
    b.dense("fc", 4, 32)
    b.op("softmax", "softmax")
    return b.done()


def residual(seed=2):
    """conv, conv, add with a skip connection (fused relu), mean, dense, softmax."""
    b = Builder((1, 12, 12, 4), seed, "residual")
    skip = b.conv("conv1", 8)
    b.conv("conv2", 8, act=None)
    b.op("add", "add", inputs=[b.x, skip], activation="relu")
    b.op("mean", "gap", axes=(1, 2), keepdims=True)
    b.op("reshape", "flatten", shape=(1, 8))
    b.dense("fc", 3, 8)
    b.op("softmax", "softmax")
    return b.done()


def calibration(graph, n=64, seed=0):
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).uniform(0, 1, (n,) + tuple(shape[1:])).astype(np.float32)


def int8(graph, n=32, per_tensor_dense=True) -> bytes:
    """The graph as a fully int8 .tflite, calibrated on seeded uniform inputs; dense weights with one
    scale by default, so every board (the Nano's library too) computes what the host computes."""
    from edgekit.export.tflite_writer import write_tflite
    from edgekit.quantize.calibrate import calibrate
    from edgekit.quantize.scheme import quantize_graph
    return write_tflite(graph, quantize_graph(graph, calibrate(graph, calibration(graph, n)), per_tensor_dense))


def wide_dense(inputs=1100, outputs=1000, seed=3):
    """One big fully-connected layer: ~1.1 MB of int8 weights, more than a Nano's flash."""
    b = Builder((1, inputs), seed, "wide_dense")
    b.dense("fc", outputs, inputs)
    return b.done()


def big_activations(size=128, seed=4):
    """Two convs at full resolution: activations far beyond a Nano's 256 KB of SRAM."""
    b = Builder((1, size, size, 8), seed, "big_activations")
    b.conv("conv1", 16)
    b.conv("conv2", 8)
    return b.done()
