"""Sensor capture for week 4: from a board's sensors (or their simulation) to a labelled data set.

    edgekit capture --target nano33ble --sensor imu --rate 100 --seconds 2 --label wave --count 20 -o data/

- sensors.py: what a board streams (targets/*.toml) and checking a request against it
- simulated.py: the plausible, seeded signals behind the virtual board
- frames.py: which received frames are written, and exactly what was lost
- writers.py, manifest.py: the files (CSV, WAV, PNG/JPEG, Edge Impulse JSON) and manifest.json
- session.py: the recording loop (countdown, stream, write, flush, count)
- api.py: edgekit.stream() and edgekit.load_dataset(); plot.py; cli.py
"""
import importlib

__all__ = ["Dataset", "SensorFrame", "Session", "capture", "load_dataset", "read_recording", "stream", "verify"]

# Names load when first used, so the CLI reads the options (arguments.py) without the rest.
_HOME = {"Dataset": "api", "SensorFrame": "api", "load_dataset": "api", "read_recording": "api", "stream": "api",
         "verify": "manifest", "Session": "session", "capture": "session"}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'edgekit.capture' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
