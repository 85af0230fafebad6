"""Fixtures shared by the board tests: a small int8 CNN, one input for it, and TFLite Micro's outputs.

    from board_fixtures import expected, model_path, sample  # noqa: F401  (pytest finds them by name)
"""
import numpy as np
import pytest

import ir_models
from edgekit.runtime.tflm import run_tflm


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("board") / "cnn_int8.tflite"
    path.write_bytes(ir_models.int8(ir_models.cnn()))
    return path


@pytest.fixture(scope="module")
def sample():
    return np.random.default_rng(7).integers(-128, 128, (1, 16, 16, 3)).astype(np.int8)


@pytest.fixture(scope="module")
def expected(model_path, sample):
    """TFLite Micro's raw outputs for the sample (a fresh process per run_tflm call)."""
    return run_tflm(model_path.read_bytes(), [sample]).outputs[0][0].astype(int).tolist()
