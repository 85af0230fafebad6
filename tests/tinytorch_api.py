"""A student's copy of TinyTorch's model API, written the way the course's reference code is.

It stands in for the framework students build in the course (Tensor, Linear, Conv2d, pooling,
BatchNorm2d, activations, Dropout, Sequential): numpy, NCHW images, layers callable through
`__call__ -> forward`. It deliberately knows nothing about edgekit. Where the reference code uses
six nested loops (Conv2d, pooling) this copy loops over kernel positions only and lets numpy do the
batch/channel/pixel loops, so tests stay fast; the arithmetic is the same.
"""
import numpy as np


class Tensor:
    """A float32 numpy array with the operators a forward pass needs."""

    def __init__(self, data, requires_grad=False):
        self.data = np.array(data, dtype=np.float32)
        self.requires_grad = requires_grad
        self.grad = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Tensor(shape={self.shape})"

    @staticmethod
    def _raw(other):
        return other.data if isinstance(other, Tensor) else other

    def __add__(self, other):
        return Tensor(self.data + self._raw(other))

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return Tensor(self.data - self._raw(other))

    def __rsub__(self, other):
        return Tensor(self._raw(other) - self.data)

    def __mul__(self, other):
        return Tensor(self.data * self._raw(other))

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return Tensor(self.data / self._raw(other))

    def matmul(self, other):
        if self.shape[-1] != other.shape[0]:
            raise ValueError(f"Inner dimensions must match: {self.shape[-1]} ≠ {other.shape[0]}")
        return Tensor(np.matmul(self.data, other.data))

    def __matmul__(self, other):
        return self.matmul(other)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Tensor(self.data.reshape(shape))

    def sum(self, axis=None, keepdims=False):
        return Tensor(np.sum(self.data, axis=axis, keepdims=keepdims))

    def mean(self, axis=None, keepdims=False):
        return Tensor(np.mean(self.data, axis=axis, keepdims=keepdims))


class Layer:
    """Base class: layers are callable and list their parameters."""

    def forward(self, x):
        raise NotImplementedError("Subclasses must implement forward()")

    def __call__(self, x, *args, **kwargs):
        return self.forward(x, *args, **kwargs)

    def parameters(self):
        return []


class Linear(Layer):
    """y = xW + b with W of shape (in_features, out_features)."""

    def __init__(self, in_features, out_features, bias=True):
        self.in_features, self.out_features = in_features, out_features
        scale = np.sqrt(1.0 / in_features)
        self.weight = Tensor(np.random.randn(in_features, out_features) * scale, requires_grad=True)
        self.bias = Tensor(np.zeros(out_features), requires_grad=True) if bias else None

    def forward(self, x):
        output = x.matmul(self.weight)
        if self.bias is not None:
            output = output + self.bias
        return output

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])


class Dropout(Layer):
    """Zeroes elements with probability p while training; identity at inference."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout probability must be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x, training=True):
        if not training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return Tensor(np.zeros_like(x.data))
        keep = 1.0 - self.p
        mask = Tensor((np.random.random(x.data.shape) < keep).astype(np.float32))
        return x * mask * Tensor(np.array(1.0 / keep))

    def __call__(self, x, training=True):
        return self.forward(x, training)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class Conv2d:
    """2-D convolution on NCHW input; weight (C_out, C_in, kH, kW), int stride and zero padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding = stride, padding
        kh, kw = self.kernel_size
        std = np.sqrt(2.0 / (in_channels * kh * kw))  # He initialisation
        self.weight = Tensor(np.random.normal(0, std, (out_channels, in_channels, kh, kw)), requires_grad=True)
        self.bias = Tensor(np.zeros(out_channels), requires_grad=True) if bias else None

    def forward(self, x):
        if len(x.shape) != 4:
            raise ValueError(f"Expected 4D input (batch, channels, height, width), got {x.shape}")
        batch, _, height, width = x.shape
        kh, kw = self.kernel_size
        s, p = self.stride, self.padding
        out_h = (height + 2 * p - kh) // s + 1
        out_w = (width + 2 * p - kw) // s + 1
        padded = np.pad(x.data, ((0, 0), (0, 0), (p, p), (p, p))) if p > 0 else x.data
        output = np.zeros((batch, self.out_channels, out_h, out_w))
        for i in range(kh):          # each kernel position: input patch (N, C_in, out_h, out_w)
            for j in range(kw):
                patch = padded[:, :, i:i + s * out_h:s, j:j + s * out_w:s]
                output += np.einsum("nchw,oc->nohw", patch, self.weight.data[:, :, i, j])
        if self.bias is not None:
            output += self.bias.data.reshape(1, -1, 1, 1)
        return Tensor(output)

    def parameters(self):
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def __call__(self, x):
        return self.forward(x)


class _Pool2d:
    fill = 0.0

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size[0] if stride is None else stride
        self.padding = padding

    def _windows(self, x):
        """(kernel position, N, C, out_h, out_w) stack of the values each window covers."""
        _, _, height, width = x.shape
        kh, kw = self.kernel_size
        s, p = self.stride, self.padding
        out_h = (height + 2 * p - kh) // s + 1
        out_w = (width + 2 * p - kw) // s + 1
        padded = np.pad(x.data, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill) if p > 0 else x.data
        return np.stack([padded[:, :, i:i + s * out_h:s, j:j + s * out_w:s] for i in range(kh) for j in range(kw)])

    def parameters(self):
        return []

    def __call__(self, x):
        return self.forward(x)


class MaxPool2d(_Pool2d):
    fill = -np.inf  # padding never wins the max

    def forward(self, x):
        return Tensor(self._windows(x).max(axis=0))


class AvgPool2d(_Pool2d):
    def forward(self, x):
        # divides by the full window area, padding included, as the reference code does
        return Tensor(self._windows(x).sum(axis=0) / (self.kernel_size[0] * self.kernel_size[1]))


class BatchNorm2d:
    """Per-channel normalisation: batch statistics while training, running statistics in eval."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = Tensor(np.ones(num_features), requires_grad=True)
        self.beta = Tensor(np.zeros(num_features), requires_grad=True)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.training = True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        if len(x.shape) != 4:
            raise ValueError(f"Expected 4D input (batch, channels, height, width), got {x.shape}")
        c = x.shape[1]
        if self.training:
            mean, var = np.mean(x.data, axis=(0, 2, 3)), np.var(x.data, axis=(0, 2, 3))
            self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var
        else:
            mean, var = self.running_mean, self.running_var
        normalized = (x.data - mean.reshape(1, c, 1, 1)) / np.sqrt(var.reshape(1, c, 1, 1) + self.eps)
        return Tensor(self.gamma.data.reshape(1, c, 1, 1) * normalized + self.beta.data.reshape(1, c, 1, 1))

    def parameters(self):
        return [self.gamma, self.beta]

    def __call__(self, x):
        return self.forward(x)


class ReLU:
    def forward(self, x):
        return Tensor(np.maximum(0, x.data))

    def __call__(self, x):
        return self.forward(x)


class Sigmoid:
    def forward(self, x):
        return Tensor(1.0 / (1.0 + np.exp(-x.data)))

    def __call__(self, x):
        return self.forward(x)


class Tanh:
    def forward(self, x):
        return Tensor(np.tanh(x.data))

    def __call__(self, x):
        return self.forward(x)


class GELU:
    def forward(self, x):
        return Tensor(x.data * (1.0 / (1.0 + np.exp(-1.702 * x.data))))

    def __call__(self, x):
        return self.forward(x)


class Softmax:
    def forward(self, x, dim=-1):
        x_max = Tensor(np.max(x.data, axis=dim, keepdims=True))
        exp_values = Tensor(np.exp((x - x_max).data))
        exp_sum = Tensor(np.sum(exp_values.data, axis=dim, keepdims=True))
        return exp_values / exp_sum

    def __call__(self, x, dim=-1):
        return self.forward(x, dim)


class Sequential:
    """Runs layers in order; a plain class, not a Layer."""

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return [p for layer in self.layers if hasattr(layer, "parameters") for p in layer.parameters()]


# -- the course's later modules: embeddings, attention, quantization (15), compression (16) ---------
class Embedding(Layer):
    """A (vocab, dim) table looked up by integer token ids."""

    def __init__(self, vocab_size, embed_dim):
        self.vocab_size, self.embed_dim = vocab_size, embed_dim
        self.weight = Tensor(np.random.normal(0, 0.02, (vocab_size, embed_dim)), requires_grad=True)

    def forward(self, indices):
        ids = (indices.data if isinstance(indices, Tensor) else np.asarray(indices)).astype(np.int64)
        return Tensor(self.weight.data[ids])

    def parameters(self):
        return [self.weight]


class MultiHeadAttention(Layer):
    """Self-attention on [batch, seq, dim]: Q, K, V projections, softmax(QK^T / sqrt(d)) V, output projection."""

    def __init__(self, embed_dim, num_heads):
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.q_proj, self.k_proj = Linear(embed_dim, embed_dim), Linear(embed_dim, embed_dim)
        self.v_proj, self.out_proj = Linear(embed_dim, embed_dim), Linear(embed_dim, embed_dim)

    def forward(self, x):
        batch, seq, _ = x.shape
        split = (batch, seq, self.num_heads, self.head_dim)
        q = self.q_proj(x).reshape(*split).data.transpose(0, 2, 1, 3)
        k = self.k_proj(x).reshape(*split).data.transpose(0, 2, 1, 3)
        v = self.v_proj(x).reshape(*split).data.transpose(0, 2, 1, 3)
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(self.head_dim)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        out = (e / e.sum(axis=-1, keepdims=True)) @ v
        return self.out_proj(Tensor(out.transpose(0, 2, 1, 3).reshape(batch, seq, self.embed_dim)))

    def parameters(self):
        return [p for m in (self.q_proj, self.k_proj, self.v_proj, self.out_proj) for p in m.parameters()]


INT8_MIN, INT8_MAX = -128, 127


def quantize_int8(tensor):
    """(int8 Tensor, scale, zero_point): per-tensor asymmetric min/max, as module 15 teaches."""
    data = tensor.data
    lo, hi = float(data.min()), float(data.max())
    if abs(hi - lo) < 1e-8:
        return Tensor(np.zeros_like(data, dtype=np.int8)), 1.0, 0
    scale = (hi - lo) / (INT8_MAX - INT8_MIN)
    zero_point = int(np.clip(np.round(INT8_MIN - lo / scale), INT8_MIN, INT8_MAX))
    q = np.clip(np.round(data / scale + zero_point), INT8_MIN, INT8_MAX).astype(np.int8)
    out = Tensor(q)
    out.data = q  # keep the int8 dtype (Tensor() makes float32)
    return out, scale, zero_point


def dequantize_int8(q, scale, zero_point):
    return Tensor((q.data.astype(np.float32) - zero_point) * scale)


class QuantizedLinear(Layer):
    """A Linear whose weights and bias are stored int8; forward dequantizes and multiplies in float."""

    def __init__(self, linear):
        self.original_layer = linear
        self.q_weight, self.weight_scale, self.weight_zero_point = quantize_int8(linear.weight)
        if linear.bias is not None:
            self.q_bias, self.bias_scale, self.bias_zero_point = quantize_int8(linear.bias)
        else:
            self.q_bias = self.bias_scale = self.bias_zero_point = None
        self.input_scale, self.input_zero_point = 1.0, 0

    def calibrate(self, samples):
        lo = min(float(s.data.min()) for s in samples)
        hi = max(float(s.data.max()) for s in samples)
        self.input_scale = (hi - lo) / 255 if hi > lo else 1.0
        self.input_zero_point = int(np.clip(np.round(INT8_MIN - lo / self.input_scale), INT8_MIN, INT8_MAX))

    def forward(self, x):
        weight = dequantize_int8(self.q_weight, self.weight_scale, self.weight_zero_point)
        out = x.matmul(weight)
        if self.q_bias is not None:
            out = out + dequantize_int8(self.q_bias, self.bias_scale, self.bias_zero_point)
        return out

    def parameters(self):
        return []


def quantize_model(model, calibration_data=None):
    """Replace each Linear in model.layers by a QuantizedLinear, in place."""
    x = calibration_data
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Linear):
            q = QuantizedLinear(layer)
            if x is not None:
                q.calibrate([x])
            model.layers[i] = layer = q
        if x is not None:
            x = layer(x)
    return model


def _weights(model):
    layers = model.layers if hasattr(model, "layers") else list(vars(model).values())
    return [layer for layer in layers if isinstance(layer, (Linear, Conv2d))]


def measure_sparsity(model):
    """Percent of zero weights (matrices and filters; biases not counted)."""
    ws = [layer.weight.data for layer in _weights(model)]
    return 100.0 * sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws)


def magnitude_prune(model, sparsity=0.9):
    """Zero the smallest weights (globally) until `sparsity` of them are zero."""
    ws = [layer.weight for layer in _weights(model)]
    threshold = np.percentile(np.abs(np.concatenate([w.data.ravel() for w in ws])), sparsity * 100)
    for w in ws:
        w.data = w.data * (np.abs(w.data) >= threshold)
    return model


def structured_prune(model, prune_ratio=0.5):
    """Zero whole output channels of every layer but the last (the classes) by L2 norm, with their bias:
    a Linear's columns (weight (in, out)) as module 16 does, and a Conv2d's filters (weight (C_out, ...)),
    the same idea for CNNs. Shapes are unchanged."""
    for layer in _weights(model)[:-1]:
        w = layer.weight.data
        axis_norms = np.linalg.norm(w.reshape(w.shape[0], -1), axis=1) if isinstance(layer, Conv2d) \
            else np.linalg.norm(w, axis=0)
        n = int(len(axis_norms) * prune_ratio)
        if n == 0:
            continue
        drop = np.argpartition(axis_norms, n)[:n]
        if isinstance(layer, Conv2d):
            w[drop] = 0
        else:
            w[:, drop] = 0
        if layer.bias is not None:
            layer.bias.data[drop] = 0
    return model


def low_rank_approximate(weight_matrix, rank_ratio=0.5):
    """(U, S, V) of the truncated SVD keeping rank_ratio of the rank."""
    U, S, V = np.linalg.svd(weight_matrix, full_matrices=False)
    rank = max(1, int(min(weight_matrix.shape) * rank_ratio))
    return U[:, :rank], S[:rank], V[:rank, :]
