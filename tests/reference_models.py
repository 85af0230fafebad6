"""The reference models made by others (MLPerf Tiny, TFLite Micro, Coral), in ../shared/models.

They sit beside the project, not in it: a user's clone of edgekit does not have them, so the tests
that read them are skipped there, with this reason, and run where the folder is.
"""
from pathlib import Path

import pytest

REFERENCE_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
needs_reference_models = pytest.mark.skipif(
    not REFERENCE_MODELS.is_dir(),
    reason="the reference models (../shared/models, beside the project) are not in this checkout")
