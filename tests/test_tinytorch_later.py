"""TinyTorch beyond the basics: diverged (NaN) models, the later modules (embeddings, attention,
module 15's QuantizedLinear, module 16's pruning and low-rank factors), and pruning made real on a board."""
import warnings

import numpy as np
import pytest

import edgekit
import tinytorch_api as tt
from edgekit import reference
from edgekit.errors import EdgekitError, UnsupportedError
from edgekit.importers.tinytorch import import_tinytorch
from edgekit.importers.tinytorch_ops import SUPPORTED
from edgekit.zoo import digits_split
from test_tinytorch import CNN, check, kinds, mlp, nhwc, randomize_biases, trained_bn


def strict(fn, *args, **kwargs):
    """Run fn with every numpy/Python warning an error: nothing may leak past edgekit's message."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            return fn(*args, **kwargs)


# -- item 1: a diverged model is named as such, by layer, before anything is compared ----------------
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_weights_are_blamed_on_the_layer_not_on_edgekit(bad):
    model = CNN()
    model.fc1.weight.data[3, 5] = bad
    what = "NaN" if np.isnan(bad) else "infinite"
    x = np.random.default_rng(0).normal(size=(8, 3, 12, 12)).astype(np.float32)
    with pytest.raises(EdgekitError, match=rf"^layer 'fc1' has {what} weights \(diverged training\?\): "
                                           r"fix the model \(lower the learning rate, check the loss\) and export again$"):
        strict(edgekit.convert, model, example_input=x[:1], calibration=x)


def test_activations_that_overflow_are_named_by_layer():
    model = CNN()
    model.conv2.weight.data *= 1e38  # finite weights, but float32 overflows to inf in forward
    with pytest.raises(EdgekitError, match=r"^layer 'conv2' computes infinite values on the example input"):
        strict(import_tinytorch, model, tt.Tensor(np.ones((1, 3, 12, 12))))


# -- item 9: the later modules -------------------------------------------------------------------------
def test_embedding_says_what_to_do_instead():
    class TokenClassifier:
        def __init__(self):
            np.random.seed(30)
            self.emb = tt.Embedding(50, 8)
            self.fc = tt.Linear(8 * 6, 3)

        def forward(self, ids):
            x = self.emb(ids + 0)  # on the model's input it deploys (test_embedding.py); on computed ids it does not
            return self.fc(x.reshape(x.shape[0], -1))

    with pytest.raises(UnsupportedError, match=r"unsupported Embedding .*GATHER.*look the vectors up before the "
                                               r"model.* in layer 'emb'"):
        import_tinytorch(TokenClassifier(), tt.Tensor(np.arange(6).reshape(1, 6)))


class TinyTransformer:
    """Embedded tokens -> one attention block -> mean over the sequence -> classifier."""

    def __init__(self, attention):
        np.random.seed(31)
        self.attn = attention
        self.fc = tt.Linear(16, 2)

    def forward(self, x):
        return self.fc(tt.Tensor(self.attn(x).data.mean(axis=1)))


class SelfAttn:
    """A student's own attention class (not TinyTorch's name): its Linear runs on [batch, seq, dim]."""

    def __init__(self, dim):
        self.qkv = tt.Linear(dim, 3 * dim)
        self.dim = dim

    def forward(self, x):
        q, k, v = np.split(self.qkv(x).data, 3, axis=-1)
        w = np.exp(q @ k.transpose(0, 2, 1) / np.sqrt(self.dim))
        return tt.Tensor((w / w.sum(-1, keepdims=True)) @ v)

    def __call__(self, x):
        return self.forward(x)


@pytest.mark.parametrize("attention", ["MultiHeadAttention", "SelfAttn"])
def test_attention_names_batch_matmul_not_flatten(attention):
    block = tt.MultiHeadAttention(16, 2) if attention == "MultiHeadAttention" else SelfAttn(16)
    with pytest.raises(UnsupportedError, match=r"attention.*BATCH_MATMUL.*TFLite Micro.*in layer 'attn"):
        import_tinytorch(TinyTransformer(block), tt.Tensor(np.ones((1, 5, 16))))


def test_linear_on_a_sequence_outside_attention_still_says_flatten():
    with pytest.raises(UnsupportedError, match=r"Linear on a 3-D input.*flatten it first") as e:
        import_tinytorch(tt.Sequential(tt.Linear(4, 2)), tt.Tensor(np.ones((1, 3, 4))))
    assert "BATCH_MATMUL" not in str(e.value)


def test_a_constant_scale_written_with_numpy_is_a_mul():
    class Scaled:
        def __init__(self):
            np.random.seed(32)
            self.fc1, self.fc2, self.relu = tt.Linear(6, 8), tt.Linear(8, 3), tt.ReLU()
            randomize_biases(self)

        def forward(self, x):
            h = self.relu(self.fc1(x))
            return self.fc2(tt.Tensor(h.data * 0.37))

    g = check(Scaled(), (6,))
    assert kinds(g) == ["fully_connected", "relu", "mul", "fully_connected"]


def test_supported_list_names_no_sequential():
    assert "Sequential" not in SUPPORTED and "QuantizedLinear" in SUPPORTED


# -- module 15: QuantizedLinear ----------------------------------------------------------------------------
def quantized_mlp():
    model = mlp()
    # trained weights: most small, a few large; many of them round to TinyTorch's zero point
    w = np.random.default_rng(8).laplace(0, 0.005, size=(12, 16))
    w[0, 0] = 1.0
    model.layers[0].weight = tt.Tensor(w)
    float_model = tt.Sequential(*model.layers)
    tt.quantize_model(model, tt.Tensor(np.random.default_rng(3).normal(size=(16, 12))))
    assert [type(layer).__name__ for layer in model.layers].count("QuantizedLinear") == 2
    return model, float_model


def test_quantized_linear_imports_its_own_int8_weights():
    model, float_model = quantized_mlp()
    g = check(model, (12,))  # equals the quantized model's forward: the dequantized int8 weights
    assert kinds(g) == ["fully_connected", "relu", "fully_connected", "softmax"]
    first = model.layers[0]
    np.testing.assert_allclose(g.tensors[g.ops[0].inputs[1]].data,
                               ((first.q_weight.data.astype(np.float32) - first.weight_zero_point)
                                * first.weight_scale).T, rtol=1e-6)
    assert any("per-tensor" not in n and "whole tensor, asymmetric" in n and "one scale per output channel" in n
               for n in g.notes)
    assert not np.array_equal(g.tensors[g.ops[0].inputs[1]].data, float_model.layers[0].weight.data.T)


def test_quantized_linear_imports_its_float_original_when_asked():
    model, float_model = quantized_mlp()
    g = import_tinytorch(model, tt.Tensor(np.ones((1, 12))), weights="float")
    x = np.random.default_rng(4).normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_allclose(reference.run(g, {"input": x})[g.outputs[0]], float_model(tt.Tensor(x)).data,
                               rtol=1e-5, atol=1e-6)
    assert not g.notes


def test_quantized_model_converts_to_int8():
    model, _ = quantized_mlp()
    x = np.random.default_rng(5).normal(size=(100, 12)).astype(np.float32)
    q = edgekit.convert(model, example_input=x[:1], calibration=x)
    assert q.info["agreement"]["top1_agreement"] >= 0.95
    # zeros of the int8 grid (weights that round to the zero point) are not reported as pruning
    assert sum("QuantizedLinear" in n for n in q.graph.notes) == 2 and not any("scattered" in n for n in q.graph.notes)


# -- module 16: pruning and low rank ------------------------------------------------------------------------
class PruneCNN:
    """conv-BN-relu-pool, conv, flatten, two Linear layers: BN gives pruned channels a non-zero constant."""

    def __init__(self, padding=1):
        np.random.seed(33)
        self.conv1 = tt.Conv2d(3, 8, kernel_size=3, padding=1)
        self.bn1 = trained_bn(8, seed=34)
        self.relu = tt.ReLU()
        self.pool = tt.MaxPool2d(2)
        self.conv2 = tt.Conv2d(8, 6, kernel_size=3, padding=padding)
        self.fc1 = tt.Linear(6 * (5 if padding else 3) ** 2, 12)
        self.fc2 = tt.Linear(12, 4)
        randomize_biases(self)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.relu(self.conv2(x))
        return self.fc2(self.relu(self.fc1(x.reshape(x.shape[0], -1))))

    def __call__(self, x):
        return self.forward(x)


def optimized(model, shape):
    g = check(model, shape)  # the traced graph equals forward
    edgekit.passes.optimize(g).finalize()
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4,) + shape).astype(np.float32)
    np.testing.assert_allclose(reference.run(g, {"input": nhwc(x)})[g.outputs[0]], model(tt.Tensor(x)).data,
                               rtol=1e-4, atol=1e-4)
    return g


def weight_shapes(g):
    return {op.name: g.tensors[op.inputs[1]].shape for op in g.ops if op.kind in ("conv2d", "fully_connected")}


@pytest.mark.parametrize("padding", [0, 1])
def test_structured_pruning_removes_the_zeroed_channels(padding):
    model = tt.structured_prune(PruneCNN(padding), 0.5)
    g = optimized(model, (3, 10, 10))
    shapes = weight_shapes(g)
    # conv1's zeroed filters (with BN's non-zero shift moved into conv2's bias) go when conv2 reads
    # them through VALID windows; with padding=1 conv2 pads with zeros, not the constant, so they stay
    assert shapes["conv1"] == ((4, 3, 3, 3) if padding == 0 else (8, 3, 3, 3))
    assert shapes["conv2"] == ((3, 3, 3, 4) if padding == 0 else (3, 3, 3, 8))
    assert shapes["fc1"] == (6, 3 * (3 if padding == 0 else 5) ** 2)
    assert shapes["fc2"] == (4, 6)
    assert any("output channels are all zero (structured pruning): removed" in n for n in g.notes)


def test_magnitude_pruning_saves_nothing_and_says_so():
    model = PruneCNN()
    x = np.random.default_rng(7).normal(size=(60, 3, 10, 10)).astype(np.float32)
    dense = edgekit.convert(model, example_input=x[:1], calibration=x)
    tt.magnitude_prune(model, 0.6)
    assert tt.measure_sparsity(model) >= 59
    g = optimized(model, (3, 10, 10))
    assert weight_shapes(g)["conv2"] == (6, 3, 3, 8)
    scattered = [n for n in g.notes if "zero but scattered (magnitude pruning)" in n and "save neither flash nor time" in n]
    assert {n.split("'")[1] for n in scattered} >= {"conv1", "conv2", "fc1"}  # conv1: 216 weights only
    sparse = edgekit.convert(model, example_input=x[:1], calibration=x)
    assert len(sparse.tflite) >= len(dense.tflite) - 64


def test_low_rank_factors_deploy_as_two_linear_layers():
    np.random.seed(35)
    big = tt.Linear(64, 48)
    U, S, V = tt.low_rank_approximate(big.weight.data, rank_ratio=0.25)
    first, second = tt.Linear(64, len(S), bias=False), tt.Linear(len(S), 48)
    first.weight, second.weight = tt.Tensor(U * S), tt.Tensor(V)
    second.bias = big.bias
    model = tt.Sequential(first, second, tt.ReLU(), tt.Linear(48, 5))
    g = optimized(model, (64,))
    assert kinds(g) == ["fully_connected", "fully_connected", "fully_connected"]
    assert weight_shapes(g)["layers.0"] == (12, 64) and weight_shapes(g)["layers.1"] == (48, 12)


# -- done when: structured pruning at 50% on the simulated Nano ------------------------------------------------
class DigitsCNN:
    """A TinyTorch CNN for the 8x8 digits: two convs, a pool, a hidden Linear, a classifier."""

    def __init__(self):
        np.random.seed(20)
        self.conv1 = tt.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = tt.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = tt.MaxPool2d(2)
        self.relu = tt.ReLU()
        self.fc1 = tt.Linear(64 * 4 * 4, 256)
        self.fc2 = tt.Linear(256, 10)

    def features(self, x):
        x = self.relu(self.conv1(x))
        x = self.pool(self.relu(self.conv2(x)))
        return self.relu(self.fc1(x.reshape(x.shape[0], -1)))

    def forward(self, x):
        return self.fc2(self.features(x))

    def __call__(self, x):
        return self.forward(x)

    def fit_head(self, x, y):
        """Fit the classifier (ridge regression on the features): a stand-in for training, and for
        the fine-tuning students do after pruning."""
        h = np.hstack([self.features(tt.Tensor(x)).data.astype(np.float64), np.ones((len(x), 1))])
        sol = np.linalg.solve(h.T @ h + 0.1 * np.eye(h.shape[1]), h.T @ (np.eye(10)[y] * 4 - 2))
        self.fc2.weight, self.fc2.bias = tt.Tensor(sol[:-1]), tt.Tensor(sol[-1])
        return self


def test_structured_pruning_at_half_the_channels_is_smaller_and_faster_on_the_nano():
    x_train, y_train, x_test, _ = digits_split()
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    model = DigitsCNN().fit_head(x_train, y_train)
    base = edgekit.deploy(model, "nano33ble", force="sim", calibration=x_train[:200], example_input=x_train[:1])
    tt.structured_prune(model, 0.5)
    model.fit_head(x_train, y_train)
    q = edgekit.convert(model, example_input=x_train[:1], calibration=x_train[:200], per_tensor_dense=True)
    pruned = edgekit.deploy(q, "nano33ble", force="sim")
    assert base.mode == pruned.mode == "simulated" and pruned.fits
    assert pruned.flash_bytes <= 0.6 * base.flash_bytes
    assert pruned.latency_ms <= 0.6 * base.latency_ms
    agreement = (q.predict(x_test).argmax(1) == model(tt.Tensor(x_test)).data.argmax(1)).mean()
    assert agreement >= 0.98
