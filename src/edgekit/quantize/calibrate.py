"""Calibration: the float range of every activation over a calibration set.

Three methods:
- minmax (default): the global min and max seen. Nothing is clipped; an outlier widens the
  scale (bigger rounding step for everything else).
- percentile: the p-th and (100-p)-th percentiles (p = 99.99 by default): clips rare outliers.
- entropy: the clipping threshold whose int8 histogram loses least information (KL divergence
  between the float histogram and its quantized version), as in TensorRT's calibrator.

The float model runs in numpy (edgekit.reference), batched, so calibration is a few matrix
products per layer rather than one interpreter call per sample.
"""
from __future__ import annotations

import numpy as np

from .. import reference
from ..errors import EdgekitError
from ..graph import Graph

METHODS = ("minmax", "percentile", "entropy")
BINS = 2048
CHUNK = 64  # samples per reference run: bounds memory on big models


def _chunks(graph: Graph, samples: np.ndarray):
    for i in range(0, len(samples), CHUNK):
        # overflow to inf or NaN is not warned about here: the ranges are checked for it (_layer_range)
        with np.errstate(all="ignore"):
            yield reference.run(graph, {graph.inputs[0]: samples[i:i + CHUNK]}, keep=True)


def _layer_range(graph: Graph, t: str, v: np.ndarray) -> tuple[float, float]:
    """(min, max) of one tensor's values, refusing what no int8 scale can represent."""
    if v.size == 0:
        raise EdgekitError(f"{_where(graph, t)} produces an empty tensor (shape {list(v.shape)}); "
                           "the model is inconsistent: export it again")
    lo, hi = float(v.min()), float(v.max())
    with np.errstate(over="ignore"):
        span = np.float32(hi) - np.float32(lo)  # the scale is computed in float32
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(span)):
        what = "NaN" if np.isnan(lo) or np.isnan(hi) else "infinite (overflowing)"
        raise EdgekitError(f"{_where(graph, t)} computes {what} values on the calibration set; check its "
                           "weights for NaN or huge values, and that the inputs are scaled as in training")
    return lo, hi


def _where(graph: Graph, t: str) -> str:
    op = graph.producer().get(t)
    return f"layer '{op.name}' ({op.kind})" if op is not None else f"tensor '{t}'"


def _minmax(graph, samples, record=None):
    lo, hi = {}, {}
    outputs = []
    for values in _chunks(graph, samples):
        if record is not None:  # keep what verification needs, so it need not run the model again
            record.setdefault("first_chunk", values)
            outputs.append(values[graph.outputs[0]])
        for t in graph.activations():
            v_lo, v_hi = _layer_range(graph, t, values[t])
            lo[t] = min(lo.get(t, np.inf), v_lo)
            hi[t] = max(hi.get(t, -np.inf), v_hi)
    if record is not None:
        record["outputs"] = np.concatenate(outputs)
    return {t: (lo[t], hi[t]) for t in lo}


def _span(lo: float, hi: float) -> tuple[float, float]:
    """(lo, hi), widened where numpy could not cut it into BINS float32 bins: a constant tensor,
    a huge constant (where lo + 1 == lo), a range narrower than float32's rounding or of denormals."""
    floor = max(max(abs(lo), abs(hi)) * 2**-10, 1e-30)  # BINS bins, each wider than float32's step (2**-23, 1.4e-45)
    return lo, lo + (hi - lo if hi - lo > floor else max(floor, 1.0))


def _top(lo: float, hi: float) -> float:
    top = max(abs(lo), abs(hi))
    return top if top > 1e-30 else 1.0


def _histograms(graph, samples, ranges):
    """Histogram of |x| per tensor over [0, max|x|] with BINS bins."""
    hist = {}
    for values in _chunks(graph, samples):
        for t in graph.activations():
            top = _top(*ranges[t])
            h, _ = np.histogram(np.abs(values[t]), bins=BINS, range=(0, top))
            hist[t] = hist.get(t, 0) + h
    return hist


def _percentile(graph, samples, p, record=None):
    """Percentiles from signed histograms (exact to one bin: range / 2048)."""
    ranges = _minmax(graph, samples, record)
    counts = {}
    for values in _chunks(graph, samples):
        for t in graph.activations():
            lo, hi = ranges[t]
            h, _ = np.histogram(values[t], bins=BINS, range=_span(lo, hi))
            counts[t] = counts.get(t, 0) + h
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


def _entropy(graph, samples, record=None):
    ranges = _minmax(graph, samples, record)
    hist = _histograms(graph, samples, ranges)
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

    If `record` is a dict, it receives the float model's outputs over all samples ("outputs")
    and every tensor's values for the first samples ("first_chunk"), for verification.
    """
    if method not in METHODS:
        raise EdgekitError(f"unknown calibration method '{method}'; use one of: {', '.join(METHODS)}")
    if len(samples) == 0:
        raise EdgekitError("the calibration set is empty; give at least one sample (100-500 is typical)")
    if method == "minmax":
        return _minmax(graph, samples, record)
    if method == "percentile":
        return _percentile(graph, samples, percentile, record)
    return _entropy(graph, samples, record)
