"""The metric, the constraints and the score: the rules of the Olympics, in one place.

Metric (the "accuracy" term, whatever the track measures):
  accuracy  top-1 accuracy over the whole test set: argmax of the model's outputs == label
  auc       area under the ROC curve of the model's one output (an anomaly score; y = 1 is an anomaly):
            the chance that a random anomaly scores higher than a random normal sample (ties count half)

Constraints, per board: the track's latency_ms, flash_bytes and ram_bytes limits. A submission over
any of them "violates" (so does one the board's memory cannot hold); one that cannot be evaluated at
all "failed"; a folder that cannot be read "invalid". None of them is ranked; each shows its reason.

Score, per board, among the submissions that are "ok" on that board (each term is in [0, 1]):

  score = w_accuracy * metric
        + w_speed    * (fastest latency  / this latency)
        + w_size     * (smallest flash   / this flash)      flash: what the board stores (model, and
        + w_energy   * (lowest energy    / this energy)            on MCUs the firmware around it)

The best submission on a term gets that term's full weight; one twice as slow gets half of the
speed weight. Scores are relative, so they are computed when the leaderboard is built, never stored.
"""
from __future__ import annotations

import numpy as np


def top1_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """outputs: (N, classes) scores in any monotonic scale (raw int8 is fine: argmax is the same)."""
    return float((outputs.reshape(len(labels), -1).argmax(axis=1) == labels).mean())


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (the Mann-Whitney U statistic): tied scores get their average rank."""
    scores = np.asarray(scores, np.float64).reshape(len(labels))
    labels = np.asarray(labels)
    pos, neg = int((labels == 1).sum()), int((labels == 0).sum())
    if pos == 0 or neg == 0:
        raise ValueError("AUC needs both normal (0) and anomalous (1) samples in the test set")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average rank over each run of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[labels == 1].sum() - pos * (pos + 1) / 2
    return float(u / (pos * neg))


def metric(name: str, outputs: np.ndarray, labels: np.ndarray) -> float:
    return top1_accuracy(outputs, labels) if name == "accuracy" else auc(outputs, labels)


def violations(result: dict, limits: dict, target: str) -> str | None:
    """One line naming every limit of the track that `result` exceeds on `target`, or None."""
    words = {"latency_ms": ("latency", "ms"), "flash_bytes": ("flash", "B"), "ram_bytes": ("RAM", "B")}
    over = []
    for key, (what, unit) in words.items():
        limit, value = limits.get(key), result.get(key)
        if limit is not None and value is not None and value > limit:
            fmt = (lambda v: f"{v:.3g} {unit}") if unit == "ms" else (lambda v: f"{int(v):,} {unit}")
            over.append(f"{what} {fmt(value)} is over the track's {fmt(limit)} limit on {target}")
    return "; ".join(over) or None


def scores(entries: list[dict], weights: dict) -> dict[int, float]:
    """Score of each "ok" entry (by its index in `entries`) relative to the other ok entries."""
    ok = [(i, e) for i, e in enumerate(entries) if e["status"] == "ok"]
    if not ok:
        return {}

    def best_over(key):  # e.g. fastest latency / this latency; 1.0 for the best
        best = min(e[key] for _, e in ok)
        return {i: (best / e[key]) if e[key] > 0 else 1.0 for i, e in ok}

    speed, size, energy = best_over("latency_ms"), best_over("flash_bytes"), best_over("energy_mj")
    return {i: round(weights["accuracy"] * e["metric_value"] + weights["speed"] * speed[i]
                     + weights["size"] * size[i] + weights["energy"] * energy[i], 4)
            for i, e in ok}
