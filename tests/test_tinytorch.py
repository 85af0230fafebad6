"""TinyTorch import: traced graphs compute what the models' own forward computes."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytorch_api as tt
from edgekit import reference
from edgekit.errors import EdgekitError, UnsupportedError
from edgekit.importers.tinytorch import import_tinytorch

IMPORTER = Path(__file__).parents[1] / "src" / "edgekit" / "importers" / "tinytorch.py"


def nhwc(a):
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def check(model, shape, example_batch=1, seed=0, expected=None):
    """Import with an example batch, then compare the graph with forward on fresh batches of 1 and 4."""
    rng = np.random.default_rng(seed)
    graph = import_tinytorch(model, tt.Tensor(rng.normal(size=(example_batch,) + shape)))
    for batch in (1, 4):
        x = rng.normal(size=(batch,) + shape).astype(np.float32)
        want = (expected or model).forward(tt.Tensor(x)).data
        got = reference.run(graph, {graph.inputs[0]: nhwc(x)})[graph.outputs[0]]
        np.testing.assert_allclose(got, nhwc(want), rtol=1e-5, atol=1e-5)
    return graph


def kinds(graph):
    return [op.kind for op in graph.ops]


def trained_bn(c, seed):
    """A BatchNorm2d whose statistics and affine parameters are far from the identity."""
    rng = np.random.default_rng(seed)
    bn = tt.BatchNorm2d(c)
    bn.running_mean = rng.normal(0, 1, c)
    bn.running_var = rng.uniform(0.3, 3.0, c)
    bn.gamma = tt.Tensor(rng.uniform(0.5, 2.0, c))
    bn.beta = tt.Tensor(rng.normal(0, 0.5, c))
    return bn.eval()


def randomize_biases(model, seed=1):
    """Reference layers start with zero biases; give them values so the test sees them."""
    rng = np.random.default_rng(seed)
    for layer in vars(model).values() if not isinstance(model, tt.Sequential) else model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias = tt.Tensor(rng.normal(0, 0.3, layer.bias.shape))
    return model


# -- models ------------------------------------------------------------------------------------
def mlp():
    np.random.seed(1)
    return randomize_biases(tt.Sequential(tt.Linear(12, 16), tt.ReLU(), tt.Linear(16, 4), tt.Softmax()))


class CNN:
    """Conv-BN-ReLU-pool, a strided conv whose padding is not TFLite's SAME, a flatten in forward."""

    def __init__(self):
        np.random.seed(2)
        self.conv1 = tt.Conv2d(3, 8, kernel_size=3, padding=1)
        self.bn1 = trained_bn(8, seed=3)
        self.relu = tt.ReLU()
        self.pool = tt.MaxPool2d(2)
        self.conv2 = tt.Conv2d(8, 6, kernel_size=3, stride=2, padding=1)
        self.fc1 = tt.Linear(6 * 3 * 3, 16)
        self.fc2 = tt.Linear(16, 10)
        randomize_biases(self)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.relu(self.conv2(x))
        x = x.reshape(x.shape[0], -1)  # NCHW order: fc1's rows must be permuted for NHWC
        return self.fc2(self.relu(self.fc1(x)))

    def __call__(self, x):
        return self.forward(x)


class SimpleCNN:
    """The course's SimpleCNN style: ReLU and flatten done with numpy on x.data."""

    def __init__(self):
        np.random.seed(4)
        self.conv1 = tt.Conv2d(3, 6, kernel_size=3, padding=1)
        self.pool1 = tt.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = tt.Conv2d(6, 8, kernel_size=3, padding=1)
        self.pool2 = tt.MaxPool2d(kernel_size=2, stride=2)
        self.fc = tt.Linear(8 * 2 * 2, 5)
        randomize_biases(self)

    def relu(self, x):
        return tt.Tensor(np.maximum(0, x.data))

    def forward(self, x):
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        batch_size = x.shape[0]
        return self.fc(tt.Tensor(x.data.reshape(batch_size, -1)))

    def __call__(self, x):
        return self.forward(x)


class Branchy:
    """Two paths from one tensor, a residual add, global average pooling via Tensor.mean."""

    def __init__(self):
        np.random.seed(5)
        self.stem = tt.Conv2d(3, 6, kernel_size=3, padding=1)
        self.conv_a = tt.Conv2d(6, 6, kernel_size=3, padding=1)
        self.conv_b = tt.Conv2d(6, 6, kernel_size=1)
        self.relu = tt.ReLU()
        self.head = tt.Linear(6, 3)
        randomize_biases(self)

    def forward(self, x):
        y = self.relu(self.stem(x))
        out = self.conv_a(y) + self.conv_b(y)   # two convs on the same input
        out = self.relu(out + y)                # residual
        return self.head(out.mean(axis=(2, 3)))

    def __call__(self, x):
        return self.forward(x)


class DropoutAvgPool:
    """Average pooling (one with padding, which TinyTorch counts) and Dropout before the classifier."""

    def __init__(self):
        np.random.seed(6)
        self.conv = tt.Conv2d(2, 4, kernel_size=3)
        self.act = tt.Tanh()
        self.pool1 = tt.AvgPool2d(2)
        self.pool2 = tt.AvgPool2d(3, stride=1, padding=1)
        self.drop = tt.Dropout(0.3)
        self.fc = tt.Linear(4 * 4 * 4, 3)
        self.out = tt.Sigmoid()
        self.training = False
        randomize_biases(self)

    def forward(self, x):
        x = self.pool2(self.pool1(self.act(self.conv(x))))
        x = x.reshape(x.shape[0], -1)
        return self.out(self.fc(self.drop(x, training=self.training)))

    def __call__(self, x):
        return self.forward(x)


# -- tests: graphs equal forward -----------------------------------------------------------------
@pytest.mark.parametrize("example_batch", [1, 3])
def test_mlp(example_batch):
    g = check(mlp(), (12,), example_batch)
    assert kinds(g) == ["fully_connected", "relu", "fully_connected", "softmax"]
    assert [op.name for op in g.ops] == ["layers.0", "layers.1", "layers.2", "layers.3"]
    assert g.tensors[g.inputs[0]].shape == (1, 12)


@pytest.mark.parametrize("example_batch", [1, 2])
def test_cnn_with_batchnorm_and_flatten_in_forward(example_batch):
    g = check(CNN(), (3, 12, 12), example_batch)
    # BatchNorm folded into conv1 (no mul/add); conv2's padding=1 with stride 2 is not SAME: explicit pad
    assert kinds(g) == ["conv2d", "relu", "max_pool2d", "pad", "conv2d", "relu", "reshape",
                        "fully_connected", "relu", "fully_connected"]
    assert g.tensors[g.inputs[0]].shape == (1, 12, 12, 3)
    assert [op.name for op in g.ops][:3] == ["conv1", "relu", "pool"]


def test_simple_cnn_leaving_the_tensor_world():
    g = check(SimpleCNN(), (3, 8, 8))
    assert kinds(g) == ["conv2d", "relu", "max_pool2d", "conv2d", "relu", "max_pool2d", "reshape",
                        "fully_connected"]


def test_branching_model_with_residual_add():
    g = check(Branchy(), (3, 6, 6))
    assert kinds(g).count("add") == 2 and kinds(g).count("conv2d") == 3 and "mean" in kinds(g)


def test_dropout_disappears_and_avgpool_counts_padding():
    g = check(DropoutAvgPool(), (2, 10, 10))
    assert kinds(g) == ["conv2d", "tanh", "avg_pool2d", "pad", "avg_pool2d", "reshape", "fully_connected",
                        "sigmoid"]


def test_dropout_in_training_mode_is_still_removed():
    np.random.seed(7)
    layers = [tt.Linear(5, 7), tt.ReLU(), tt.Linear(7, 2)]
    # TinyTorch's Dropout defaults to training=True: forward itself is random, the graph is not
    model = tt.Sequential(layers[0], tt.Dropout(0.5), *layers[1:])
    g = check(model, (5,), expected=tt.Sequential(*layers))
    assert "layers.1" not in [op.name for op in g.ops]


def test_list_of_layers_and_numpy_example_input():
    np.random.seed(8)
    layers = [tt.Conv2d(1, 3, kernel_size=3, padding=1), tt.ReLU(), tt.MaxPool2d(3, stride=2, padding=1)]
    graph = import_tinytorch(layers, np.zeros((1, 1, 8, 8), np.float32))  # wrapped in tt.Tensor
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    want = tt.Sequential(*layers)(tt.Tensor(x)).data
    got = reference.run(graph, {"input": nhwc(x)})[graph.outputs[0]]
    np.testing.assert_allclose(got, nhwc(want), rtol=1e-5, atol=1e-5)
    assert [op.name for op in graph.ops] == ["layers.0", "layers.1", "layers.2/pad", "layers.2"]


def test_matmul_and_bias_written_in_forward():
    class Raw:
        def __init__(self):
            rng = np.random.default_rng(9)
            self.w = tt.Tensor(rng.normal(size=(6, 3)))
            self.b = tt.Tensor(rng.normal(size=3))

        def forward(self, x):
            return (x.matmul(self.w) + self.b) * 0.5 - 1.0

    g = check(Raw(), (6,))
    assert kinds(g) == ["fully_connected", "mul", "add"]  # + b went into the fully-connected bias


def test_user_flatten_class_is_followed():
    class Flatten:  # not a TinyTorch class; what it does is a reshape edgekit can see
        def forward(self, x):
            return tt.Tensor(x.data.reshape(x.shape[0], -1))

        def __call__(self, x):
            return self.forward(x)

    np.random.seed(10)
    g = check(tt.Sequential(tt.Conv2d(2, 3, kernel_size=3), Flatten(), tt.Linear(3 * 4 * 4, 2)), (2, 6, 6))
    assert kinds(g) == ["conv2d", "reshape", "fully_connected"]


def test_training_mode_is_traced_in_eval_and_put_back():
    model = CNN()
    model.bn1.train()
    stats = model.bn1.running_mean.copy(), model.bn1.running_var.copy()
    graph = import_tinytorch(model, tt.Tensor(np.ones((2, 3, 12, 12))))
    assert model.bn1.training is True
    np.testing.assert_array_equal(model.bn1.running_mean, stats[0])  # not updated by the trace
    np.testing.assert_array_equal(model.bn1.running_var, stats[1])
    x = np.random.default_rng(1).normal(size=(3, 3, 12, 12)).astype(np.float32)
    model.bn1.eval()  # the graph is the inference-mode model
    want = model(tt.Tensor(x)).data
    np.testing.assert_allclose(reference.run(graph, {"input": nhwc(x)})[graph.outputs[0]], want,
                               rtol=1e-5, atol=1e-5)


# -- tests: errors ---------------------------------------------------------------------------------
def test_gelu_is_unsupported_and_named():
    np.random.seed(11)
    model = tt.Sequential(tt.Linear(4, 4), tt.GELU(), tt.Linear(4, 2))
    with pytest.raises(UnsupportedError, match=r"GELU.*layers\.1.*supported: .*ReLU"):
        import_tinytorch(model, tt.Tensor(np.ones((1, 4))))


def test_unknown_layer_class_is_named():
    class Swish:
        def forward(self, x):
            return tt.Tensor(x.data / (1 + np.exp(-x.data)))

        def __call__(self, x):
            return self.forward(x)

    class Net:
        def __init__(self):
            self.fc = tt.Linear(4, 4)
            self.swish = Swish()

        def forward(self, x):
            return self.swish(self.fc(x))

    with pytest.raises(EdgekitError, match=r"Swish.*'swish'.*supported: .*Linear"):
        import_tinytorch(Net(), tt.Tensor(np.ones((1, 4))))


def test_unfollowable_numpy_and_bad_padding_are_errors():
    class Clipped:
        def __init__(self):
            self.fc = tt.Linear(4, 4)

        def forward(self, x):
            return self.fc(tt.Tensor(np.clip(x.data, -0.5, 0.5)))

    with pytest.raises(UnsupportedError, match=r"numpy.*'fc'"):
        import_tinytorch(Clipped(), tt.Tensor(np.linspace(-2, 2, 4).reshape(1, 4)))
    with pytest.raises(UnsupportedError, match=r"MaxPool2d padding"):  # -inf padding on signed input
        import_tinytorch(tt.Sequential(tt.MaxPool2d(3, stride=2, padding=1)), tt.Tensor(np.ones((1, 1, 8, 8))))


def test_a_layer_that_is_not_what_its_name_says_is_caught():
    class Conv2d(tt.Conv2d):  # same name and attributes, different arithmetic
        def forward(self, x):
            return tt.Tensor(super().forward(x).data * 2)

    np.random.seed(12)
    with pytest.raises(EdgekitError, match=r"layer 'layers.0'.*does not reproduce"):
        import_tinytorch(tt.Sequential(Conv2d(1, 2, kernel_size=3)), tt.Tensor(np.ones((1, 1, 5, 5))))


def test_flattened_nchw_output_is_refused():
    model = SimpleCNN()
    model.forward = lambda x: tt.Tensor(model.pool1(model.conv1(x)).data.reshape(x.shape[0], -1))
    with pytest.raises(EdgekitError, match="flattened"):
        import_tinytorch(model, tt.Tensor(np.ones((1, 3, 8, 8))))


# -- tests: the model is left as it was ----------------------------------------------------------------
def _state(layers):
    return ([sorted(vars(layer)) for layer in layers], [type(layer).__call__ for layer in layers],
            {name: getattr(tt.Tensor, name) for name in ("reshape", "matmul", "__add__", "__mul__", "mean")})


@pytest.mark.parametrize("failure", [None, "unsupported layer", "forward raises"])
def test_forward_methods_are_restored(failure):
    model = CNN()
    if failure == "unsupported layer":  # import fails half-way through the trace
        model.fc1 = tt.Sequential(tt.GELU())
    if failure == "forward raises":  # the model's own code fails (fc1 expects 54 features)
        model.fc1 = tt.Linear(53, 16)
    layers = [model.conv1, model.bn1, model.relu, model.pool, model.conv2, model.fc1, model.fc2]
    before = _state(layers)
    if failure:
        with pytest.raises(EdgekitError, match="GELU" if failure == "unsupported layer" else "forward failed"):
            import_tinytorch(model, tt.Tensor(np.ones((1, 3, 12, 12))))
    else:
        import_tinytorch(model, tt.Tensor(np.ones((1, 3, 12, 12))))
    assert _state(layers) == before
    assert all("forward" not in vars(layer) for layer in layers)


def test_never_imports_a_tinytorch_package():
    import_tinytorch(mlp(), tt.Tensor(np.ones((1, 12))))
    assert not [m for m in sys.modules if m == "tinytorch" or m.startswith("tinytorch.")]
    source = IMPORTER.read_text()
    assert not re.search(r"^\s*(import tinytorch|from tinytorch)", source, re.M)
    assert "pickle" not in source.replace("unpickles", "")
