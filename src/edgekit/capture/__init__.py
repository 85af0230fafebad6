"""Sensor capture for week 4: from a board's sensors (or their simulation) to a labelled data set.

    edgekit capture --target nano33ble --sensor imu --rate 100 --seconds 2 --label wave --count 20 -o data/

- sensors.py: what a board streams (targets/*.toml) and checking a request against it
- simulated.py: the plausible, seeded signals behind the virtual board
- frames.py: which received frames are written, and exactly what was lost
- writers.py, manifest.py: the files (CSV, WAV, PNG/JPEG, Edge Impulse JSON) and manifest.json
- session.py: the recording loop (countdown, stream, write, flush, count)
- api.py: edgekit.stream() and edgekit.load_dataset(); plot.py; cli.py
"""
from .api import Dataset, SensorFrame, load_dataset, read_recording, stream
from .manifest import verify
from .session import Session, capture

__all__ = ["Dataset", "SensorFrame", "Session", "capture", "load_dataset", "read_recording", "stream", "verify"]
