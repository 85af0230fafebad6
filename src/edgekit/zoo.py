"""Reference models built in code as IR Graphs, for benchmarks, examples and tests (no downloads).

  mobilenet_v1(alpha, size, channels, classes)  visual-wake-words / TFLM person_detect MobileNetV1
  mobilenet_v2(size, classes)                    MobileNetV2 1.0 (Keras' applications model)
  ds_cnn_kws()                                   MLPerf Tiny keyword spotting DS-CNN
  digits_mlp(hidden)                             a small MLP trained here on the 8x8 digits (shipped)
  calibration_batch(graph, n)                    realistic random inputs for the models without data

The architectures match the published models layer for layer (same kernels, strides, padding and
widths, so the same MACs and parameter counts), but their weights are random. Random weights alone
make unrealistic activations: deep ReLU stacks die or blow up and every channel looks the same.
Trained models have BatchNorm, folded into each conv, so every channel's pre-activation has its own
learned mean and spread. We imitate that with a data-dependent init: each conv starts He-normal, is
run on a small batch of `calibration_batch`-style inputs, and its per-channel output statistics are
normalised to a random BatchNorm-like (gamma, beta) that is then folded into the weights and bias.
The result: live activations in the ranges the real models show (relu6 layers that saturate at 6,
relu layers reaching ~15-30 in the DS-CNN), per-channel weight ranges that differ the way folded
BatchNorm makes them differ (what makes per-tensor int8 hard on depthwise layers), and non-zero
biases. Kernels get a small positive mean and the classifier is centred over the classes, so the
random nets neither amplify int8 rounding noise nor predict the same class for every input (see
_he and _logits_scaled): with per-channel int8 and min/max calibration, int8 and float agree on
~98% of MobileNet's and ~95% of the DS-CNN's top-1 predictions. Deterministic for a given seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EdgekitError
from .graph import Graph
from .reference import run, run_op

# Inputs the data-dependent init is run on: only per-channel means and spreads are needed, so a
# small batch will do (16 at 96x96, fewer for big inputs to keep MobileNet 1.0 at 224 quick).
_INIT_BATCH, _INIT_PIXELS = 16, 16 * 96 * 96


# -- inputs ---------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, n: int, h: int, w: int, c: int, cells: int) -> np.ndarray:
    """Gaussian noise on a coarse cells x cells grid, bilinearly upsampled to h x w."""
    grid = rng.normal(0, 1, (n, cells + 1, cells + 1, c))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[None, :, None, None], (xs - x0)[None, None, :, None]
    top = grid[:, y0][:, :, x0] * (1 - fx) + grid[:, y0][:, :, x0 + 1] * fx
    bottom = grid[:, y0 + 1][:, :, x0] * (1 - fx) + grid[:, y0 + 1][:, :, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _images(rng: np.random.Generator, n: int, h: int, w: int, c: int) -> np.ndarray:
    """Natural-looking images in [-1, 1] (MobileNet's input scaling): smooth shapes, some texture.

    Pure white noise would make every patch alike; real images are spatially correlated, which
    changes which channels fire and how much the strided layers average away.
    """
    x = (_smooth_noise(rng, n, h, w, c, 2) * 0.6 + _smooth_noise(rng, n, h, w, c, max(2, h // 8)) * 0.4
         + rng.normal(0, 0.08, (n, h, w, c)))
    if c == 3:  # colour channels of one image are strongly correlated
        x = 0.7 * x.mean(axis=3, keepdims=True) + 0.3 * x
    x += rng.uniform(-0.3, 0.3, (n, 1, 1, 1))  # brightness differs between images
    return np.clip(x, -1, 1)


def _mfcc(rng: np.random.Generator, n: int, frames: int, coeffs: int, c: int) -> np.ndarray:
    """MFCC-like features (frames x coefficients), as the MLPerf Tiny KWS front end makes them.

    Coefficient 0 is log energy: large and negative (about -120..25, like the int8 input range of
    kws_ref_model.tflite), rising during a word in the middle of the clip; higher coefficients are
    smaller and fluctuate from frame to frame.
    """
    t = np.arange(frames)[None, :]
    centre = rng.uniform(0.3, 0.7, (n, 1)) * frames
    width = rng.uniform(0.1, 0.3, (n, 1)) * frames
    word = np.exp(-0.5 * ((t - centre) / width) ** 2)  # (n, frames)
    x = np.empty((n, frames, coeffs, c))
    x[:, :, 0, :] = (rng.uniform(-90, -50, (n, 1)) + 60 * word + rng.normal(0, 4, (n, frames)))[..., None]
    k = np.arange(1, coeffs)[None, None, :, None]
    smooth = _smooth_noise(rng, n, frames, coeffs - 1, c, max(2, frames // 6)) if coeffs > 1 else 0
    x[:, :, 1:, :] = (smooth * (1 + 2 * word[..., None, None]) + rng.normal(0, 0.3, smooth.shape)) * 18 / k
    return np.clip(x, -120, 25)


def _inputs(kind: str, shape, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n,) + tuple(int(d) for d in shape[1:])
    if kind == "mfcc" and len(shape) == 4:
        x = _mfcc(rng, *shape)
    elif kind == "image" and len(shape) == 4:
        x = _images(rng, *shape)
    else:  # flat features, e.g. pixel intensities scaled to [0, 1]
        x = rng.uniform(0, 1, shape)
    return x.astype(np.float32)


# Which inputs each zoo model expects, by graph name; other 4-D models get images.
_INPUT_KIND = {"ds_cnn_kws": "mfcc", "digits_mlp": "uniform"}


def calibration_batch(graph: Graph, n: int, seed: int = 0, kind: str | None = None) -> np.ndarray:
    """n realistic random inputs (float32, batch first) for a model without a data set.

    kind: 'image' (spatially smooth images in [-1, 1]), 'mfcc' (speech features like the KWS front
    end's), 'uniform' (values in [0, 1]); by default chosen from the zoo model's name, else
    'image' for NHWC inputs and 'uniform' for flat ones.
    """
    shape = graph.tensors[graph.inputs[0]].shape
    kind = kind or _INPUT_KIND.get(graph.name, "image" if len(shape) == 4 else "uniform")
    if kind not in ("image", "mfcc", "uniform"):
        raise EdgekitError(f"unknown input kind '{kind}'; use 'image', 'mfcc' or 'uniform'")
    return _inputs(kind, shape, n, np.random.default_rng(seed))


# -- building with data-dependent BatchNorm-like init ----------------------------------------------
class _Builder:
    """Appends ops to a Graph and runs each on a small init batch, so later layers see real data."""

    def __init__(self, name: str, shape, seed: int, kind: str):
        self.g = Graph(name=name)
        self.rng = np.random.default_rng(seed)
        self.x = self.g.add_input("input", shape)
        # The init batch uses its own stream, so changing it never shifts the weights' random draws.
        n = int(np.clip(_INIT_PIXELS // max(1, int(np.prod(shape[1:-1]))), 12, _INIT_BATCH))
        self.value = _inputs(kind, shape, n, np.random.default_rng([seed, 1]))

    @property
    def channels(self) -> int:
        return self.value.shape[-1]

    def op(self, kind: str, name: str, inputs=None, **attrs) -> str:
        self.x = self.g.add_op(kind, inputs or [self.x], name, **attrs)
        self._step()
        return self.x

    def _step(self) -> None:
        op = self.g.ops[-1]
        args = [self.value if t == op.inputs[0] else self.g.tensors[t].data for t in op.inputs]
        self.value = run_op(op, args).astype(np.float32)

    def done(self) -> Graph:
        self.g.outputs = [self.x]
        return self.g.finalize()


def _fold_bn(b: _Builder, gain: float, shift: float, spread: float = 0.35) -> None:
    """Normalise the last op's pre-activation per channel to N(beta, gamma) and fold that in.

    gamma = gain * lognormal(0, spread), beta = gain * N(shift, 0.5): trained BatchNorm layers show
    this kind of spread, and it makes channels' weight ranges differ as folding makes them differ.
    """
    op = b.g.ops[-1]
    w, bias = b.g.tensors[op.inputs[1]], b.g.tensors[op.inputs[2]]
    act, op.attrs["activation"] = op.attrs.get("activation"), None
    pre = run_op(op, [b.value, w.data, bias.data]).astype(np.float64)
    mean = pre.mean(axis=tuple(range(pre.ndim - 1)))
    std = np.maximum(pre.std(axis=tuple(range(pre.ndim - 1))), 1e-3)
    c = mean.shape[0]
    gamma = gain * np.exp(b.rng.normal(0, spread, c))
    beta = gain * b.rng.normal(shift, 0.5, c)
    scale = gamma / std
    if op.kind == "depthwise_conv2d":  # [1, kh, kw, C]: channel last
        w.data = (w.data * scale).astype(np.float32)
    else:  # conv2d [O, kh, kw, I] and fully_connected [O, I]: channel first
        w.data = (w.data * scale.reshape((-1,) + (1,) * (w.data.ndim - 1))).astype(np.float32)
    bias.data = ((bias.data - mean) * scale + beta).astype(np.float32)
    op.attrs["activation"] = act
    b._step()


@dataclass(frozen=True)
class _Style:
    """How a model's random layers are drawn (see _fold_bn, _he for why)."""
    act: str          # activation after every conv
    gain: float       # BatchNorm-like gamma scale: sets the activation ranges
    shift: float      # mean BatchNorm-like beta, in units of gain: the share of units active
    dw_mean: float    # mean of depthwise kernels, in He standard deviations
    pw_mean: float    # mean of pointwise (1x1) kernels, likewise


def _he(b: _Builder, shape, fan_in: int, mean: float = 0.0) -> np.ndarray:
    """He-normal weights, optionally with a positive mean (in units of the standard deviation).

    Zero-mean random kernels on spatially smooth, positively correlated inputs compute small
    differences of nearly equal numbers, which the BatchNorm-like scaling then blows up: such a
    net amplifies int8 rounding noise layer after layer (about -1.3 dB of SQNR per layer, int8
    and float agreeing on ~80% of MobileNet's predictions), far worse than trained models, whose
    depthwise kernels are mostly smoothing and whose pointwise layers are not zero-mean. A
    modest mean brings the int8 fidelity to what trained models show (~98% top-1 agreement).
    """
    std = np.sqrt(2.0 / fan_in)
    return b.rng.normal(mean * std, std, shape)


def _small_bias(b: _Builder, n: int) -> np.ndarray:
    return b.rng.normal(0, 0.05, n)


def _conv_bn(b: _Builder, name: str, out: int, kernel, stride: int, style: _Style, mean: float = 0.0) -> str:
    """conv2d (SAME) + folded BatchNorm + fused activation."""
    kh, kw = kernel
    w = b.g.add_const(f"{name}/weights", _he(b, (out, kh, kw, b.channels), kh * kw * b.channels, mean))
    bias = b.g.add_const(f"{name}/bias", _small_bias(b, out))
    b.x = b.g.add_op("conv2d", [b.x, w, bias], name, stride=(stride, stride), padding="SAME",
                     activation=style.act)
    _fold_bn(b, style.gain, style.shift)
    return b.x


def _depthwise_bn(b: _Builder, name: str, stride: int, style: _Style) -> str:
    """depthwise_conv2d 3x3 (SAME, multiplier 1) + folded BatchNorm + fused activation."""
    c = b.channels
    w = b.g.add_const(f"{name}/weights", _he(b, (1, 3, 3, c), 9, style.dw_mean))
    bias = b.g.add_const(f"{name}/bias", _small_bias(b, c))
    b.x = b.g.add_op("depthwise_conv2d", [b.x, w, bias], name, stride=(stride, stride), padding="SAME",
                     multiplier=1, activation=style.act)
    _fold_bn(b, style.gain, style.shift)
    return b.x


def _ds_block(b: _Builder, name: str, out: int, stride: int, style: _Style) -> str:
    """Depthwise-separable block: depthwise 3x3 then pointwise 1x1, each with BN and activation."""
    _depthwise_bn(b, f"{name}/depthwise", stride, style)
    return _conv_bn(b, f"{name}/pointwise", out, (1, 1), 1, style, style.pw_mean)


def _logits_scaled(b: _Builder, spread: float = 1.5) -> None:
    """Make the classifier's logits differ between inputs: softmax neither constant nor one-hot.

    Random features share a large common mode, so random logits rise and fall together and
    softmax, blind to a shift common to all classes, barely changes with the input. Removing each
    sample's mean over the classes (a linear map, folded into the weights) keeps only the
    differences between classes; those are then scaled to vary by about `spread`.
    """
    op = b.g.ops[-1]
    w, bias = b.g.tensors[op.inputs[1]], b.g.tensors[op.inputs[2]]
    k = bias.data.shape[0]
    centre = np.eye(k) - 1.0 / k  # logits @ centre == logits - their mean over classes
    w.data = (centre @ w.data.reshape(k, -1)).reshape(w.data.shape).astype(np.float32)
    bias.data = (centre @ bias.data).astype(np.float32)
    _fold_bn(b, gain=spread, shift=0.0, spread=0.2)


# -- the zoo ----------------------------------------------------------------------------------------
# MobileNetV1's 13 depthwise-separable blocks: (output width at alpha=1, stride of the depthwise).
_MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                     (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(alpha: float = 0.25, size: int = 96, channels: int = 3, classes: int = 2,
                 seed: int = 0) -> Graph:
    """MobileNetV1 as in visual wake words / TFLM's person_detect (alpha=0.25, size=96, channels=1).

    conv 3x3 stride 2 (32*alpha), 13 depthwise-separable blocks (relu6 after every conv), global
    average pool (mean over H, W, keepdims), 1x1 conv to `classes`, reshape, softmax.
    alpha=0.25, size=96, channels=1: 7,157,888 MACs and 210,706 params, as person_detect.tflite.
    """
    b = _Builder(f"mobilenet_v1_{alpha:g}_{size}", (1, size, size, channels), seed, "image")
    width = lambda c: max(1, int(c * alpha))  # Keras' MobileNet (v1) rounds widths down
    # relu6 layers saturating at 6 now and then, as person_detect's int8 ranges (all [0, 6]) show.
    style = _Style("relu6", gain=2.0, shift=0.5, dw_mean=1.0, pw_mean=0.2)
    _conv_bn(b, "conv1", width(32), (3, 3), 2, style)
    for i, (out, stride) in enumerate(_MOBILENET_BLOCKS, start=1):
        _ds_block(b, f"block{i}", width(out), stride, style)
    b.op("mean", "global_pool", axes=(1, 2), keepdims=True)
    w = b.g.add_const("logits/weights", _he(b, (classes, 1, 1, b.channels), b.channels))
    bias = b.g.add_const("logits/bias", _small_bias(b, classes))
    b.x = b.g.add_op("conv2d", [b.x, w, bias], "logits", stride=(1, 1), padding="SAME", activation=None)
    _logits_scaled(b)
    b.op("reshape", "flatten", shape=(1, classes))
    b.op("softmax", "softmax")
    return b.done()


# MobileNetV2's inverted-residual stages: (expansion t, output width c, repeats n, first stride s).
_MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                        (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(size: int = 224, classes: int = 1000, seed: int = 0) -> Graph:
    """MobileNetV2 1.0 (Sandler et al. 2018, table 2), as Keras' `MobileNetV2(alpha=1.0)`.

    conv 3x3 stride 2 (32), 17 inverted-residual blocks (1x1 expand with relu6, depthwise 3x3 with
    relu6, linear 1x1 projection, a residual add where stride is 1 and widths match), 1x1 conv to
    1280 (relu6), global average pool, fully connected to `classes`, softmax.
    size=224: ~300M MACs and 3.5M params, as the published model.
    """
    b = _Builder(f"mobilenet_v2_1.0_{size}", (1, size, size, 3), seed, "image")
    style = _Style("relu6", gain=2.0, shift=0.5, dw_mean=1.0, pw_mean=0.2)
    linear = _Style(None, gain=1.0, shift=0.0, dw_mean=0.0, pw_mean=0.2)  # linear bottlenecks
    _conv_bn(b, "conv1", 32, (3, 3), 2, style)
    block = 0
    for t, c, n, s in _MOBILENET_V2_STAGES:
        for i in range(n):
            block += 1
            skip, skip_value, stride = b.x, b.value, s if i == 0 else 1
            if t != 1:
                _conv_bn(b, f"block{block}/expand", b.channels * t, (1, 1), 1, style, style.pw_mean)
            _depthwise_bn(b, f"block{block}/depthwise", stride, style)
            _conv_bn(b, f"block{block}/project", c, (1, 1), 1, linear, linear.pw_mean)
            if stride == 1 and skip_value.shape[-1] == c:
                b.x = b.g.add_op("add", [skip, b.x], f"block{block}/add")
                b.value = b.value + skip_value
    _conv_bn(b, "conv_last", 1280, (1, 1), 1, style, style.pw_mean)
    b.op("mean", "global_pool", axes=(1, 2), keepdims=True)
    # the classifier as the published TFLite model has it (a 1x1 conv, per-channel int8), not Keras' Dense
    w = b.g.add_const("logits/weights", _he(b, (classes, 1, 1, 1280), 1280))
    bias = b.g.add_const("logits/bias", _small_bias(b, classes))
    b.x = b.g.add_op("conv2d", [b.x, w, bias], "logits", stride=(1, 1), padding="SAME", activation=None)
    _logits_scaled(b, spread=4.0)  # 1000 classes: a trained net's softmax is peaked, not flat
    b.op("reshape", "flatten", shape=(1, classes))
    b.op("softmax", "softmax")
    return b.done()


def ds_cnn_kws(seed: int = 0) -> Graph:
    """MLPerf Tiny keyword spotting DS-CNN (kws_ref_model.tflite's architecture).

    Input 49 frames x 10 MFCCs; conv 10x4 stride 2 (64 ch), 4 depthwise-separable blocks of 64 ch,
    relu after every conv, average pool to 1x1, fully connected to 12, softmax.
    2,656,768 MACs and 22,604 params, as kws_ref_model.tflite.
    """
    b = _Builder("ds_cnn_kws", (1, 49, 10, 1), seed, "mfcc")
    # relu is unbounded here: BN gains chosen so layer ranges come out ~10-30 over a batch, close
    # to the trained model's int8 activation ranges (about 10-21). Zero-mean pointwise kernels
    # and more active units gave the best int8 fidelity on this net.
    style = _Style("relu", gain=1.2, shift=0.6, dw_mean=1.0, pw_mean=0.0)
    _conv_bn(b, "conv1", 64, (10, 4), 2, style)
    for i in range(1, 5):
        _ds_block(b, f"block{i}", 64, 1, style)
    h, w = b.value.shape[1:3]
    b.op("avg_pool2d", "avg_pool", kernel=(h, w), stride=(h, w), padding="VALID")
    b.op("reshape", "flatten", shape=(1, 64))
    wt = b.g.add_const("fc/weights", _he(b, (12, 64), 64))
    bias = b.g.add_const("fc/bias", _small_bias(b, 12))
    b.x = b.g.add_op("fully_connected", [b.x, wt, bias], "fc", activation=None)
    _logits_scaled(b)
    b.op("softmax", "softmax")
    return b.done()


# -- a trained model: MLP on scikit-learn's digits -------------------------------------------------
def digits_split():
    """The 8x8 digits (scikit-learn's, the UCI optdigits test set), pixels in [0, 1], in edgekit's fixed
    stratified split: 30% of each class held out, drawn once with numpy's default_rng(20240101).

    Read from the file the Olympics demo track ships (edgekit/olympics/tracks/demo.npz), so neither
    scikit-learn nor a download is needed.
    """
    with np.load(Path(__file__).parent / "olympics" / "tracks" / "demo.npz", allow_pickle=False) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    return ((x_train / 16.0).astype(np.float32), y_train.astype(np.int64),
            (x_test / 16.0).astype(np.float32), y_test.astype(np.int64))


def digits_mlp(hidden: int = 64, seed: int = 0, epochs: int = 30, batch: int = 32,
               lr: float = 3e-3) -> tuple[Graph, dict]:
    """Train 64 -> hidden (relu) -> 10 (softmax) on digits with numpy (Adam, manual backprop).

    Returns (graph, data): data has x_train, y_train, x_test, y_test (x float32 (N, 64) in [0, 1],
    y int64 labels), 'accuracy' (test accuracy of the returned graph run by the float reference,
    also under 'float_accuracy'), 'train_accuracy' and 'train_seconds'. Deterministic for a seed.
    """
    start = time.perf_counter()
    x_train, y_train, x_test, y_test = digits_split()
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, np.sqrt(2 / 64), (64, hidden)), np.zeros(hidden),
              rng.normal(0, np.sqrt(1 / hidden), (hidden, 10)), np.zeros(10)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    onehot = np.eye(10)[y_train]
    x64 = x_train.astype(np.float64)
    for _ in range(epochs):
        order = rng.permutation(len(x64))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb, tb = x64[idx], onehot[idx]
            w1, b1, w2, b2 = params
            h = xb @ w1 + b1
            a = np.maximum(h, 0)
            z = a @ w2 + b2
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            dz = (p - tb) / len(idx)  # gradient of mean softmax cross-entropy w.r.t. the logits
            da = dz @ w2.T
            dh = da * (h > 0)
            grads = [xb.T @ dh, dh.sum(0), a.T @ dz, dz.sum(0)]
            step += 1
            for j, g in enumerate(grads):
                m[j] = beta1 * m[j] + (1 - beta1) * g
                v[j] = beta2 * v[j] + (1 - beta2) * g * g
                mhat, vhat = m[j] / (1 - beta1 ** step), v[j] / (1 - beta2 ** step)
                params[j] = params[j] - lr * mhat / (np.sqrt(vhat) + eps)
    w1, b1, w2, b2 = params

    g = Graph(name="digits_mlp")
    x = g.add_input("input", (1, 64))
    # fully_connected weights are [out, in], TFLite's layout: transpose the x @ W matrices.
    x = g.add_op("fully_connected", [x, g.add_const("fc1/weights", w1.T), g.add_const("fc1/bias", b1)],
                 "fc1", activation="relu")
    x = g.add_op("fully_connected", [x, g.add_const("fc2/weights", w2.T), g.add_const("fc2/bias", b2)],
                 "fc2", activation=None)
    g.outputs = [g.add_op("softmax", [x], "softmax")]
    g.finalize()

    def accuracy(xs, ys):
        return float((run(g, {g.inputs[0]: xs})[g.outputs[0]].argmax(axis=1) == ys).mean())

    test_acc = accuracy(x_test, y_test)
    data = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                accuracy=test_acc, float_accuracy=test_acc, train_accuracy=accuracy(x_train, y_train),
                train_seconds=time.perf_counter() - start)
    return g, data
