"""Calibration: the float range of every activation over a calibration set.

Three methods:
- minmax (default): the global min and max seen. Nothing is clipped; an outlier widens the
  scale (bigger rounding step for everything else).
- percentile: the p-th and (100-p)-th percentiles (p = 99.99 by default): clips rare outliers.
- entropy: the clipping threshold whose int8 histogram loses least information (KL divergence
  between the float histogram and its quantized version), as in TensorRT's calibrator.

The float model runs in LiteRT, one sample at a time, with every activation handed back (see
observe.py); each method keeps running statistics, so memory holds one sample's activations
whatever the number of samples or the depth of the network. Percentile and entropy need the
min/max first: they run the samples a second time for their histograms.
"""
from __future__ import annotations

import numpy as np

from ..errors import EdgekitError
from ..graph import Graph
from .observe import Observer

METHODS = ("minmax", "percentile", "entropy")
BINS = 2048


def _where(graph: Graph, t: str) -> str:
    op = graph.producer().get(t)
    return f"layer '{op.name}' ({op.kind})" if op is not None else f"tensor '{t}'"


def _checked(graph: Graph, t: str, lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi), refusing what no int8 scale can represent."""
    with np.errstate(over="ignore", invalid="ignore"):
        span = np.float32(hi) - np.float32(lo)  # the scale is computed in float32
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(span)):
        what = "NaN" if np.isnan(lo) or np.isnan(hi) else "infinite (overflowing)"
        raise EdgekitError(f"{_where(graph, t)} computes {what} values on the calibration set; check its "
                           "weights for NaN or huge values, and that the inputs are scaled as in training")
    return lo, hi


def _minmax(obs: Observer, samples, record=None):
    """Running min and max of every activation; record gets the float model's outputs."""
    graph = obs.graph
    x0 = graph.inputs[0]
    lo, hi = {}, {}
    if graph.tensors[x0].dtype == "float32":  # token ids (int32) are fed as they are: no range
        lo[x0], hi[x0] = float(samples.min()), float(samples.max())
    outputs = {t: [] for t in graph.outputs} if record is not None else {}

    def visit(t, v):
        if v.size == 0:
            raise EdgekitError(f"{_where(graph, t)} produces an empty tensor (shape {list(v.shape)}); "
                               "the model is inconsistent: export it again")
        a, b = float(v.min()), float(v.max())
        if not (np.isfinite(a) and np.isfinite(b)):
            bad.setdefault(t, (a, b))
        lo[t], hi[t] = min(lo.get(t, a), a), max(hi.get(t, b), b)
        if t in outputs:
            outputs[t].append(v[0].copy())

    bad: dict = {}
    for x in samples:
        obs.run(x, visit)
        if bad:  # name the first layer (in execution order) that computes NaN or inf
            t = next(t for t in graph.activations() if t in bad)
            _checked(graph, t, *bad[t])
    ranges = {t: _checked(graph, t, lo[t], hi[t]) for t in graph.activations() if t in lo}
    if record is not None:
        record["outputs"] = np.stack(outputs[graph.outputs[0]])
    return ranges


def _histograms(obs: Observer, samples, edges_of, signed: bool):
    """Histogram of every activation (|x| unless signed) over the bins edges_of(t) gives."""
    counts = {}

    def visit(t, v):
        lo, hi = edges_of(t)
        h, _ = np.histogram(v if signed else np.abs(v), bins=BINS, range=(lo, hi))
        counts[t] = counts.get(t, 0) + h

    for x in samples:
        obs.run(x, visit)
        if obs.graph.tensors[obs.graph.inputs[0]].dtype == "float32":
            visit(obs.graph.inputs[0], x)
    return counts


def _span(lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi), widened where numpy could not cut it into BINS float32 bins: a constant tensor,
    a huge constant (where lo + 1 == lo), a range narrower than float32's rounding or of denormals."""
    floor = max(max(abs(lo), abs(hi)) * 2**-10, 1e-30)  # BINS bins, each wider than float32's step (2**-23, 1.4e-45)
    return lo, lo + (hi - lo if hi - lo > floor else max(floor, 1.0))


def _top(lo: float, hi: float) -> float:
    top = max(abs(lo), abs(hi))
    return top if top > 1e-30 else 1.0


def _percentile(obs, samples, p, record=None):
    """Percentiles from signed histograms (exact to one bin: range / 2048)."""
    ranges = _minmax(obs, samples, record)
    counts = _histograms(obs, samples, lambda t: _span(*ranges[t]), signed=True)
    out = {}
    for t, h in counts.items():
        lo, hi = ranges[t]
        edges = np.linspace(*_span(lo, hi), BINS + 1)
        cdf = np.cumsum(h) / h.sum()
        low = edges[np.searchsorted(cdf, (100 - p) / 100)]
        high = edges[min(np.searchsorted(cdf, p / 100) + 1, BINS)]
        out[t] = (max(float(low), lo), min(float(high), hi))
    return out


def _kl_threshold(h: np.ndarray, levels: int) -> int:
    """Number of histogram bins to keep so that quantizing to `levels` loses least (KL)."""
    h = h.astype(np.float64)
    best, best_kl = len(h), np.inf
    for i in range(levels, len(h) + 1, 16):
        p = h[:i].copy()
        p[-1] += h[i:].sum()  # clipped values pile up in the last bin
        # quantize the first i bins into `levels` groups, spread back over non-empty bins
        groups = np.array_split(h[:i], levels)
        q = np.concatenate([np.where(g > 0, g.sum() / max((g > 0).sum(), 1), 0) for g in groups])
        p, q = p / p.sum(), q / max(q.sum(), 1e-12)
        mask = p > 0
        if np.any(q[mask] == 0):
            q = np.where(mask & (q == 0), 1e-12, q)
        kl = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if kl < best_kl:
            best, best_kl = i, kl
    return best


def _entropy(obs, samples, record=None):
    ranges = _minmax(obs, samples, record)
    hist = _histograms(obs, samples, lambda t: (0, _top(*ranges[t])), signed=False)
    out = {}
    for t, h in hist.items():
        lo, hi = ranges[t]
        top = _top(lo, hi)
        levels = 256 if lo >= 0 else 128  # non-negative tensors use all 256 int8 steps
        threshold = _kl_threshold(h, levels) * top / BINS
        out[t] = (max(lo, -threshold), min(hi, threshold))
    return out


def calibrate(graph: Graph, samples: np.ndarray, method: str = "minmax",
              percentile: float = 99.99, record: dict | None = None) -> dict[str, tuple[float, float]]:
    """Range (min, max) of every activation tensor of the graph over the samples (NHWC batch).

    If `record` is a dict, it receives the float model's first output over all samples
    ("outputs") and the LiteRT float model that ran ("observer"), for verification.
    """
    if method not in METHODS:
        raise EdgekitError(f"unknown calibration method '{method}'; use one of: {', '.join(METHODS)}")
    if len(samples) == 0:
        raise EdgekitError("the calibration set is empty; give at least one sample (100-500 is typical)")
    obs = Observer(graph)
    if record is not None:
        record["observer"] = obs  # verification runs the float model again on a few samples
    with np.errstate(all="ignore"):  # inf and NaN are refused by name (_checked), not warned about
        if method == "minmax":
            return _minmax(obs, samples, record)
        if method == "percentile":
            return _percentile(obs, samples, percentile, record)
        return _entropy(obs, samples, record)
