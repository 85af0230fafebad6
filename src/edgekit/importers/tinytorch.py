"""TinyTorch model -> Graph, by tracing one forward pass on an example input.

Students write their own TinyTorch, so this module never imports a `tinytorch` package and never
unpickles: it recognises layers by class name and attributes (duck typing) and watches what
`forward` actually does.

How the trace works:
  * Every layer-like object reachable from the model's attributes gets its `forward` (and its
    class's `__call__`) wrapped for the duration of the trace; the model's Tensor class gets its
    operators (reshape, +, -, *, /, matmul, mean) wrapped too. Everything is restored afterwards,
    even when the import fails.
  * A recognised layer (Linear, Conv2d, ...) becomes IR ops when it is called. While it runs, the
    Tensor ops inside it are not recorded: the layer is converted as a whole.
  * Each model value (a Tensor or numpy array) is mapped to an IR tensor, first by identity. When
    forward leaves the Tensor world (`Tensor(x.data.reshape(batch, -1))`), the new value is matched
    by its numbers to one already known: same values (no op), same values in flattened order (a
    reshape), or the values with negatives zeroed (`np.maximum(0, x.data)`, a ReLU).
  * Every op is run on the example (edgekit.reference) as it is added and compared with what the
    model computed, so a layer that does something other than its class name says is caught here.

Layouts: 4-D NCHW values become NHWC in the IR. A Linear after an NCHW flatten gets its rows
permuted instead of transposing at run time; BatchNorm2d is folded into the conv before it.
What each layer and Tensor op becomes is in tinytorch_ops.py.
"""
from __future__ import annotations

import functools
import inspect
import types

import numpy as np

from ..errors import EdgekitError, UnsupportedError
from ..graph import Graph
from ..reference import run_op
from .tinytorch_ops import LAYERS, SUPPORTED, TinyTorchOps, _array, _is_tensor

# Tensor methods recorded when the model's own forward calls them, and the IR meaning of each.
TENSOR_OPS = {"reshape": "reshape", "flatten": "reshape", "view": "reshape", "mean": "mean",
              "matmul": "matmul", "__matmul__": "matmul", "__add__": "add", "__radd__": "add",
              "__sub__": "sub", "__rsub__": "rsub", "__mul__": "mul", "__rmul__": "mul",
              "__truediv__": "div", "__neg__": "neg"}

_MISSING = object()


class _ImporterBug(RuntimeError):
    """edgekit's own tracing code failed: kept apart from the model's errors so forward is not blamed."""


def _kind(obj) -> str | None:
    """The TinyTorch layer class obj is an instance of (its own class or a base class), or None."""
    return next((c.__name__ for c in type(obj).__mro__ if c.__name__ in LAYERS), None)


def _is_layer_like(obj) -> bool:
    if isinstance(obj, (type, types.ModuleType)) or inspect.isroutine(obj) or _is_tensor(obj) \
            or not hasattr(obj, "__dict__"):
        return False
    return _kind(obj) is not None or callable(getattr(obj, "forward", None)) or hasattr(obj, "layers") \
        or _has_call(type(obj))


def _has_call(cls) -> bool:
    """Whether instances are callable through Python code we can wrap (getattr(cls, "__call__")
    always exists, it is type.__call__ making instances, so look in the classes themselves)."""
    return any(isinstance(vars(k).get("__call__"), types.FunctionType) for k in cls.__mro__)


def _holds_layers(value) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_layers(v) for v in value)
    return _is_layer_like(value)


def _to_graph(arr: np.ndarray, layout: str, perm=None) -> np.ndarray:
    """A model value in the IR's layout: NCHW -> NHWC, or a CHW-ordered flatten -> HWC order."""
    if layout == "perm":
        return arr[:, perm]
    return arr.transpose(0, 2, 3, 1) if layout == "nhwc" else arr


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    scale = 1.0 + float(np.abs(want).max(initial=0.0))
    return got.shape == want.shape and np.allclose(got, want, rtol=1e-3, atol=1e-4 * scale)


def _scale_of(known: np.ndarray, arr: np.ndarray) -> float | None:
    """c if arr == known * c for one constant c (other than 0 and 1), else None."""
    if known.shape != arr.shape or not np.abs(known).max(initial=0) > 0:
        return None
    k, a = known.astype(np.float64).ravel(), arr.astype(np.float64).ravel()
    c = float(k @ a / (k @ k))
    if c == 0 or abs(c - 1) < 1e-6 or not np.allclose(k * c, a, rtol=1e-6, atol=1e-7 * abs(c) * np.abs(k).max()):
        return None
    return float(np.float32(c))


def _find_layers(model):
    """Layer-like objects reachable from the model's attributes, named by where they were found
    ('conv1', 'layers.0', 'block.conv2'), and every Tensor/array found on the way (the weights)."""
    layers, params, seen = {}, [], set()

    def visit(obj, name):
        if isinstance(obj, np.ndarray) or _is_tensor(obj):
            params.append(obj)
            return
        if id(obj) in seen:
            return
        if isinstance(obj, (list, tuple, dict)):
            seen.add(id(obj))
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            for key, item in items:
                visit(item, f"{name}.{key}" if name else str(key))
            return
        if not (_is_layer_like(obj) or obj is model and hasattr(obj, "__dict__")):
            return
        seen.add(id(obj))
        layers[id(obj)] = [obj, name or (_kind(obj) or type(obj).__name__).lower(), None]
        for attr, value in vars(obj).items():
            visit(value, f"{name}.{attr}" if name else attr)

    visit(model, "layers" if isinstance(model, (list, tuple)) else "")
    for entry in layers.values():  # role: a TinyTorch layer, a container of layers, or unknown
        obj = entry[0]
        children = any(_holds_layers(v) for v in vars(obj).values())
        entry[2] = _kind(obj) or ("container" if children or obj is model else "unknown")
    return layers, params


def import_tinytorch(model, example_input, weights: str = "int8") -> Graph:
    """Trace `model` (a TinyTorch model, Sequential, layer, or list of layers) on one input batch.

    weights: what a module-15 QuantizedLinear becomes: "int8", its own int8 parameters dequantized
    (what its forward computes), or "float", the float Linear it keeps as original_layer."""
    if weights not in ("int8", "float"):
        raise EdgekitError(f"weights={weights!r}: give 'int8' (a QuantizedLinear's own int8 parameters) or "
                           "'float' (its original_layer)")
    return _Tracer(model, weights).run(example_input)


class _Tracer(TinyTorchOps):
    """The trace: wrapping, binding model values to IR tensors; the conversions are in TinyTorchOps."""

    def __init__(self, model, weights="int8"):
        self.model, self.weights = model, weights
        name = "model" if isinstance(model, (list, tuple)) else type(model).__name__.lower()
        self.graph = Graph(name=name)
        self.layers, params = _find_layers(model)
        self.consts = {id(p) for p in params} | {id(p.data) for p in params if _is_tensor(p)}
        self.keep = list(params)   # hold every object whose id we store, so no id is reused
        self.tensor_classes = list(dict.fromkeys(type(p) for p in params if _is_tensor(p)))
        self.names = {}            # id(model Tensor or array) -> IR tensor name
        self.snap = {}             # IR tensor name -> the model's value (its own layout), for matching
        self.values = {}           # IR tensor name -> the value in the IR's layout, for checking
        self.layout = {}           # IR tensor name -> how the model's value maps to it (see _set_layout)
        self.perm = {}             # IR tensor name -> its element order, for layout "perm"
        self.busy = 0              # > 0 inside a recognised layer or a recorded Tensor op
        self.active = set()        # containers running (forward and __call__ are both wrapped)
        self.prefix = []           # names of the containers running, for op names
        self.running = []          # class names of the containers running (an attention block's Linear)
        self.undo = []             # (object, attribute, original or _MISSING)

    # -- the trace -----------------------------------------------------------------------------
    def run(self, example_input) -> Graph:
        self._check_weights()
        x = self._input(example_input)
        # Trace in inference mode (BatchNorm uses its running stats), then put the modes back.
        modes = [(o, o.training) for o, _, _ in self.layers.values()
                 if isinstance(getattr(o, "training", None), bool)]
        try:
            for obj, _ in modes:
                try:
                    if callable(getattr(obj, "eval", None)):
                        obj.eval()
                    obj.training = False
                except Exception:  # a student's eval() that fails must not stop the conversion
                    pass
            self._install()
            # NaN or overflow in forward is reported by layer (_bind), not as numpy warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = self._call_model(x)
        finally:
            for target, attr, original in reversed(self.undo):
                if original is _MISSING:
                    delattr(target, attr)
                else:
                    setattr(target, attr, original)
            self.undo = []
            for obj, mode in modes:
                obj.training = mode
        return self._finish(out)

    def _check_weights(self):
        """NaN or infinite weights (diverged training) named by layer, before anything runs or is compared."""
        for obj, name, _ in self.layers.values():
            for value in vars(obj).values():
                arr = value.data if _is_tensor(value) else value
                if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                    bad = "NaN" if np.isnan(arr).any() else "infinite"
                    raise EdgekitError(f"layer '{name}' has {bad} weights (diverged training?): fix the model "
                                       "(lower the learning rate, check the loss) and export again")

    def _input(self, example):
        if not _is_tensor(example):
            if not self.tensor_classes:
                raise EdgekitError("example_input is not a TinyTorch Tensor and the model has no Tensor "
                                   "weights to take the Tensor class from; pass Tensor(x) as example_input")
            example = self.tensor_classes[0](np.asarray(example, dtype=np.float32))
        arr = _array(example)
        if arr.ndim < 2 or arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
            raise EdgekitError(f"example_input has shape {arr.shape}; give one finite batch with the batch "
                               "first, e.g. x[:1] (NCHW for images)")
        self.tensor_classes = list(dict.fromkeys([type(example)] + self.tensor_classes))
        nchw = arr.ndim == 4
        shape = (1, arr.shape[2], arr.shape[3], arr.shape[1]) if nchw else (1,) + arr.shape[1:]
        self._bind(self.graph.add_input("input", shape), example, "nhwc" if nchw else "same")
        return example

    def _call_model(self, x):
        try:
            if isinstance(self.model, (list, tuple)):
                for layer in self.model:
                    x = layer(x) if callable(layer) else layer.forward(x)
                return x
            forward = getattr(self.model, "forward", None)
            return forward(x) if callable(forward) else self.model(x)
        except (EdgekitError, _ImporterBug):
            raise
        except Exception as e:
            raise EdgekitError(f"the model's forward failed on example_input of shape {x.shape} "
                               f"({type(e).__name__}: {e}); check that example_input is one batch in the "
                               "layout forward expects (NCHW for images)") from e

    def _finish(self, out) -> Graph:
        g = self.graph
        for o in out if isinstance(out, (list, tuple)) else [out]:
            name = self._resolve(o)
            if name is None:
                raise EdgekitError(f"the model's output (a {type(o).__name__}) does not come from layers or "
                                   f"Tensor ops edgekit can follow; end forward with one ({SUPPORTED})")
            if self.layout[name] == "perm":
                raise EdgekitError("the model returns an NCHW feature map flattened in forward; the int8 "
                                   "model (NHWC) would order it differently: end the model with a Linear "
                                   "layer, or return the 4-D tensor")
            g.outputs.append(name)
        needed, kept = set(g.outputs), []  # drop ops whose results forward computed but never used
        for op in reversed(g.ops):
            if op.outputs[0] in needed:
                kept.append(op)
                needed.update(op.inputs)
        g.ops = kept[::-1]
        for t in g.inputs:  # int32 token ids: only GATHER can read them (as its indices)
            other = next((op for op in g.ops if t in op.inputs and (op.kind != "gather" or op.inputs[1] != t)), None)
            if g.tensors[t].dtype != "float32" and other is not None:
                raise UnsupportedError("use of the token ids an Embedding looks up as numbers (on the board they "
                                       "are int32 ids, read by GATHER only)", other.name,
                                       "Embedding on the model's input, with the ids read by Embeddings only")
        return g.finalize()

    # -- wrapping and unwrapping -----------------------------------------------------------------
    def _patch(self, target, attr, new):
        self.undo.append((target, attr, vars(target).get(attr, _MISSING)))
        setattr(target, attr, new)

    def _install(self):
        classes = []
        for obj, _, _ in list(self.layers.values()):
            original = getattr(obj, "forward", None)
            if callable(original):
                self._patch(obj, "forward", self._forward_hook(obj, original))
            if _has_call(type(obj)) and type(obj) not in classes:
                classes.append(type(obj))
        for cls in classes:  # `layer(x)` looks __call__ up on the class, never on the instance
            self._patch(cls, "__call__", self._call_hook(cls.__call__))
        for cls in self.tensor_classes:
            for method, op in TENSOR_OPS.items():
                if callable(getattr(cls, method, None)):
                    self._patch(cls, method, self._tensor_hook(op, getattr(cls, method)))

    def _forward_hook(self, obj, original):
        @functools.wraps(original)
        def forward(*args, **kwargs):
            return self._dispatch(obj, original, args, kwargs)
        return forward

    def _call_hook(self, original):
        @functools.wraps(original)
        def __call__(this, *args, **kwargs):
            return self._dispatch(this, functools.partial(original, this), args, kwargs)
        return __call__

    def _tensor_hook(self, op, original):
        @functools.wraps(original)
        def method(this, *args, **kwargs):
            if self.busy:
                return original(this, *args, **kwargs)
            self.busy += 1  # ops that this one calls (e.g. __radd__ -> __add__) are part of it
            try:
                out = original(this, *args, **kwargs)
            finally:
                self.busy -= 1
            self._record(self._tensor_op, op, this, args, kwargs, out)
            return out
        return method

    def _dispatch(self, obj, original, args, kwargs):
        entry = self.layers.get(id(obj))
        if entry is None and _kind(obj) and not self.busy:  # e.g. ReLU()(x) created inside forward
            name = "/".join([p for p in self.prefix if p] + [_kind(obj).lower()])
            entry = self.layers[id(obj)] = [obj, name, _kind(obj)]
            self.keep.append(obj)
        if entry is None or self.busy or id(obj) in self.active or not args:
            return original(*args, **kwargs)
        _, name, role = entry
        if role in LAYERS:
            if role == "Dropout":  # identity at inference (TinyTorch's Dropout defaults to training=True)
                return args[0]
            if role == "QuantizedLinear" and self.weights == "float":
                layer = getattr(obj, "original_layer", None)
                original = layer if callable(layer) else getattr(layer, "forward", None)
                if getattr(layer, "weight", None) is None or not callable(original):
                    raise EdgekitError(f"layer '{name}' is a QuantizedLinear without an original_layer to take "
                                       "float weights from; import its int8 weights (weights='int8')")
                args, kwargs = args[:1], {}
            self.busy += 1
            try:
                out = original(*args, **kwargs)
            finally:
                self.busy -= 1
            self._record(self._convert, role, obj, name, args, kwargs, out)
            return out
        self.active.add(id(obj))
        self.prefix.append("" if obj is self.model else name)
        self.running.append(type(obj).__name__)
        try:
            out = original(*args, **kwargs)
        finally:
            self.active.discard(id(obj))
            self.prefix.pop()
            self.running.pop()
        # A class edgekit does not know is fine if what it did was recorded (Tensor ops, or a
        # flatten); its numbers alone are not trusted, they could match by coincidence.
        if role == "unknown" and not self.busy and self._resolve(out, numpy=("reshape",)) is None:
            raise UnsupportedError(f"layer class {type(obj).__name__}", name, SUPPORTED)
        return out

    @staticmethod
    def _record(convert, *args):
        try:
            convert(*args)
        except EdgekitError:
            raise
        except Exception as e:
            raise _ImporterBug(f"edgekit's TinyTorch importer failed on {args[0]!r} "
                               f"({type(e).__name__}: {e}); please report this with the model's code") from e

    # -- model values <-> IR tensors ---------------------------------------------------------------
    def _bind(self, name, obj, layout=None, who=None):
        """Record that model value obj is IR tensor `name`, after checking that their numbers agree."""
        arr = _array(obj)
        if not np.isfinite(arr).all():
            bad = "NaN" if np.isnan(arr).any() else "infinite"
            raise EdgekitError(f"layer '{who or name}' computes {bad} values on the example input although "
                               "its weights are finite (overflow: huge weights or inputs?): check the weights "
                               "and that the input is scaled as in training, then export again")
        if layout is not None:
            self._set_layout(name, layout)
        want = _to_graph(arr, self.layout[name], self.perm.get(name))
        if name not in self.values:
            self.values[name] = want
        elif not _close(self.values[name], want):
            diff = "shape" if self.values[name].shape != want.shape else \
                f"max difference {np.abs(self.values[name] - want).max():.3g}"
            raise EdgekitError(f"layer '{who or name}': edgekit's conversion does not reproduce what forward "
                               f"computed ({diff}); check that the layer computes what TinyTorch's layer of "
                               "that class name does, or report this with the layer's code")
        self.snap[name] = arr.copy()
        for o in (obj, obj.data) if _is_tensor(obj) else (obj,):
            self.names[id(o)] = name
            self.keep.append(o)
        return name

    def _set_layout(self, name, layout):
        """'nhwc': a 4-D NCHW model value held as NHWC; 'same': held as is; an index array (stored as
        'perm'): a (batch, features) value flattened from NCHW, held in HWC order: ir = model[:, perm]."""
        if isinstance(layout, np.ndarray):
            self.layout[name], self.perm[name] = "perm", layout
        else:
            self.layout[name] = layout

    def _forget(self, name):
        """The model's earlier value for `name` no longer exists in the IR (e.g. BN was folded in)."""
        self.names = {k: v for k, v in self.names.items() if v != name}

    def _is_const(self, obj) -> bool:
        if isinstance(obj, (int, float, np.number)) or id(obj) in self.consts:
            return True
        base = getattr(obj, "base", None)  # a numpy view of a weight, e.g. self.mean.reshape(1, -1, 1, 1)
        return isinstance(base, np.ndarray) and self._is_const(base)

    def _resolve(self, obj, numpy=("same", "reshape", "relu", "scale")):
        """The IR tensor holding model value obj, or None if obj is not a value edgekit followed."""
        for o in (obj, obj.data) if _is_tensor(obj) else (obj,):
            if id(o) in self.names:
                return self.names[id(o)]
        if not (_is_tensor(obj) or isinstance(obj, np.ndarray)) or self._is_const(obj):
            return None
        arr = _array(obj)
        recent = list(reversed(self.snap.items()))
        for match in numpy:  # forward left the Tensor world: find the value by its numbers
            for name, known in recent:
                if match == "same" and known.shape == arr.shape and np.array_equal(known, arr):
                    return self._bind(name, obj)
                if match == "reshape" and known.shape != arr.shape and known.size == arr.size \
                        and arr.ndim >= 2 and arr.shape[0] == known.shape[0] \
                        and np.array_equal(known.ravel(), arr.ravel()):
                    return self._reshape(name, arr.shape, obj)
                if match == "relu" and known.shape == arr.shape and (known < 0).any() \
                        and np.array_equal(np.maximum(known, 0), arr):
                    return self._emit("relu", [name], self._unique("relu"), obj)
                c = _scale_of(known, arr) if match == "scale" else None
                if c is not None:  # Tensor(x.data * 0.5): a multiplication by a constant
                    label = self._unique("mul")
                    return self._emit("mul", [name, self._const(f"{label}/scale", [c])], label, obj)
        return None

    def _unique(self, base: str) -> str:
        return self.graph.unique("/".join([p for p in self.prefix if p] + [base]))

    def _emit(self, kind, inputs, name, result=None, layout=None, **attrs) -> str:
        """Append an op, run it on the example, and (given the model's result) check and bind it."""
        out = self.graph.add_op(kind, inputs, name, **attrs)
        self._run(self.graph.ops[-1])
        if layout is None:  # elementwise ops keep their input's layout
            layout = self.perm[inputs[0]] if self.layout[inputs[0]] == "perm" else self.layout[inputs[0]]
        self._set_layout(out, layout)
        return self._bind(out, result, who=name) if result is not None else out

    def _run(self, op):
        args = [self.values[t] if t in self.values else self.graph.tensors[t].data for t in op.inputs]
        try:
            self.values[op.outputs[0]] = np.asarray(run_op(op, args), np.float32)
        except (ValueError, IndexError) as e:
            shapes = [tuple(a.shape) for a in args]
            raise EdgekitError(f"layer '{op.name}': its weights do not fit its input (IR {op.kind} on "
                               f"shapes {shapes}: {e}); edgekit reads TinyTorch's layouts: Linear weight "
                               "(in, out), Conv2d weight (C_out, C_in, kH, kW), NCHW images") from e

    def _const(self, name, data) -> str:
        return self.graph.add_const(name, data)

    def _need_image(self, x, name, kind):
        if self.layout[x] != "nhwc":
            raise UnsupportedError(f"{kind} on a {self.snap[x].ndim}-D input (it takes NCHW images)",
                                   name, SUPPORTED)
