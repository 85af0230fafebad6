"""Pictures of recordings: `edgekit plot data/wave/wave.1.csv -o wave.png` and `capture --plot`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from .api import read_recording


def recording_summary(path: str | Path) -> dict:
    """What `edgekit plot --json` says about a CSV or WAV recording: its length, rate and the
    range of every channel (in its physical unit)."""
    path = Path(path)
    _check(path)
    values, t = read_recording(path)
    if path.suffix.lower() == ".csv":
        names = path.read_text().split("\n", 1)[0].split(",")[1:]
        seconds = float(t[-1] - t[0]) / 1e6 if len(t) > 1 else 0.0
        rate = (len(t) - 1) / seconds if seconds > 0 else None
    else:
        import wave
        with wave.open(str(path)) as w:
            rate = float(w.getframerate())
        names, seconds = ["amplitude"], len(values) / rate
    empty = len(values) == 0
    return {"recording": str(path), "samples": int(len(values)), "seconds": seconds, "rate_hz": rate,
            "channels": [{"name": name, "min": None if empty else float(values[:, i].min()),
                          "max": None if empty else float(values[:, i].max()),
                          "mean": None if empty else float(values[:, i].mean())} for i, name in enumerate(names)]}


def _check(path: Path) -> None:
    if not path.exists():
        raise EdgekitError(f"{path} does not exist; give a recording, e.g. data/wave/wave.1.csv")
    if path.suffix.lower() not in (".csv", ".wav"):
        raise EdgekitError(f"{path}: edgekit plot draws .csv and .wav recordings; open images with any viewer")


def plot_recording(path: str | Path, out: str | Path) -> Path:
    """One panel per unit (g, dps, uT, ...) of a CSV recording, or the waveform and spectrogram of a
    WAV, written as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path, out = Path(path), Path(out)
    _check(path)
    values, t = read_recording(path)
    if path.suffix.lower() == ".csv":
        header = path.read_text().split("\n", 1)[0].split(",")[1:]
        units = [h.rsplit("_", 1)[-1] if "_" in h else "" for h in header]
        groups = list(dict.fromkeys(units))
        fig, axes = plt.subplots(len(groups), 1, figsize=(9, 2.2 * len(groups) + 0.6), sharex=True, squeeze=False)
        for ax, unit in zip(axes[:, 0], groups):
            for i, (name, u) in enumerate(zip(header, units)):
                if u == unit:
                    ax.plot(t / 1e6, values[:, i], lw=1, label=name.rsplit("_", 1)[0])
            ax.set_ylabel(unit)
            ax.legend(loc="upper right", fontsize=8, ncol=5)
        axes[-1, 0].set_xlabel("time (s, board clock)")
    else:
        import wave
        with wave.open(str(path)) as w:
            rate = w.getframerate()
        x = values[:, 0]
        fig, axes = plt.subplots(2, 1, figsize=(9, 5), squeeze=False)
        axes[0, 0].plot(np.arange(len(x)) / rate, x, lw=0.5)
        axes[0, 0].set_ylabel("amplitude (full scale)")
        if len(x) > 256:
            axes[1, 0].specgram(x, NFFT=256, Fs=rate, noverlap=128)
        axes[1, 0].set_ylabel("frequency (Hz)")
        axes[1, 0].set_xlabel("time (s)")
    fig.suptitle(path.name)
    fig.tight_layout()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    except OSError as e:
        raise EdgekitError(f"cannot write {out} ({e.strerror}); choose another -o") from None
    finally:
        plt.close(fig)
    return out
