"""A runtime that cannot run a model: fall back and say so, or say why in one line with the fix.

- LiteRT's default XNNPACK delegate (2.3.0, x86-64) accepts an int8 RESIZE_BILINEAR whose output is
  quantized unlike its input, then cannot prepare it; the simulated Pi and Coral run it on LiteRT's
  built-in kernels and print a note, instead of a "Model error" with advice to reflash. The same
  wheel on aarch64 prepares it (the arm64 check's whole-suite run): there, no fallback and no note.
- A uint8 (legacy quantized) model on a TFLite Micro board is refused with the cause and the fix,
  before the virtual board answers anything.
"""
import platform
import subprocess
import sys

import numpy as np
import pytest

from ai_edge_litert import interpreter as lite
from edgekit.protocol.model_runner import TflmWorker
from edgekit.runtime import litert
from platforms import needs_tflm
from reference_models import REFERENCE_MODELS, needs_reference_models
from tflite_builders import OP, ModelBuilder, _options, fb



def resize_model(out_scale=0.03, out_zero_point=5) -> bytes:
    """int8 1x8x8x3 -> RESIZE_BILINEAR (half-pixel centers, as DeepLab's) -> 1x16x16x3, output
    quantized with out_scale/out_zero_point (the input: 0.02, 0)."""
    b = ModelBuilder()
    x = b.tensor("input", [1, 8, 8, 3], np.int8, scale=0.02, zero_point=0)
    size = b.tensor("size", [2], np.int32, [16, 16])
    y = b.tensor("resized", [1, 16, 16, 3], np.int8, scale=out_scale, zero_point=out_zero_point)
    b.op(OP.RESIZE_BILINEAR, [x, size], [y], _options(fb.ResizeBilinearOptionsT, alignCorners=False,
                                                         halfPixelCenters=True), 3)
    return b.finish([x], [y])


def uint8_conv() -> bytes:
    """uint8 1x4x4x2 -> CONV_2D 1x1 (uint8 weights, int32 bias) -> 1x4x4x2: legacy quantization."""
    b = ModelBuilder()
    x = b.tensor("input", [1, 4, 4, 2], np.uint8, scale=0.02, zero_point=128)
    w = b.tensor("w", [2, 1, 1, 2], np.uint8, np.full((2, 1, 1, 2), 130), 0.01, 128)
    bias = b.tensor("b", [2], np.int32, np.zeros(2), 0.0002)
    y = b.tensor("y", [1, 4, 4, 2], np.uint8, scale=0.05, zero_point=128)
    b.op(OP.CONV_2D, [x, w, bias], [y], _options(fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=1, strideW=1,
                                                  dilationHFactor=1, dilationWFactor=1))
    return b.finish([x], [y])


def uint8_input_int8_model() -> bytes:
    """uint8 camera input -> QUANTIZE to int8 -> int8 AVERAGE_POOL_2D: an int8 model TFLite Micro runs."""
    b = ModelBuilder()
    x = b.tensor("input", [1, 4, 4, 2], np.uint8, scale=0.02, zero_point=128)
    q = b.tensor("q", [1, 4, 4, 2], np.int8, scale=0.02, zero_point=0)
    b.op(OP.QUANTIZE, [x], [q], version=2)
    y = b.tensor("pool", [1, 2, 2, 2], np.int8, scale=0.02, zero_point=0)
    b.op(OP.AVERAGE_POOL_2D, [q], [y], _options(fb.Pool2DOptionsT, padding=fb.Padding.VALID, strideH=2, strideW=2,
                                                filterHeight=2, filterWidth=2), 2)
    return b.finish([x], [y])


def _xnnpack_refuses_resize() -> bool:
    """Whether this machine's LiteRT fails to prepare resize_model() with its default delegate."""
    try:
        lite.Interpreter(model_content=resize_model()).allocate_tensors()
    except RuntimeError as e:
        if "failed to delegate RESIZE_BILINEAR" in str(e):
            return True
        raise
    return False


XNNPACK_REFUSES = _xnnpack_refuses_resize()


def edgekit(*args, cwd):
    res = subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    assert "Traceback" not in res.stderr + res.stdout, res.stderr
    return res


def one_line_error(res) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and len(res.stderr.strip().split("error:")) == 2, res.stderr
    return lines[-1]


# -- LiteRT's default delegate -----------------------------------------------------------------

@pytest.mark.skipif(platform.machine() != "x86_64", reason="the upstream failure is x86-64's: "
                    "LiteRT 2.3.0 on aarch64 prepares this resize with XNNPACK")
def test_xnnpack_refuses_resize_with_requantization():
    """The upstream cause, reproduced: LiteRT's default resolver fails to prepare the op, the
    built-in kernels run it; with the input's own quantization XNNPACK takes it."""
    with pytest.raises(RuntimeError, match="failed to delegate RESIZE_BILINEAR"):
        lite.Interpreter(model_content=resize_model()).allocate_tensors()
    builtin = lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    lite.Interpreter(model_content=resize_model(), experimental_op_resolver_type=builtin).allocate_tensors()
    lite.Interpreter(model_content=resize_model(0.02, 0)).allocate_tensors()


def test_litert_falls_back_and_says_so():
    it = litert.load(resize_model())
    if XNNPACK_REFUSES:
        assert "op 0 (RESIZE_BILINEAR)" in it.edgekit_fallback and "built-in kernels" in it.edgekit_fallback
    else:  # this LiteRT's XNNPACK prepares it: nothing to fall back from
        assert it.edgekit_fallback is None
    assert litert.load(resize_model(0.02, 0)).edgekit_fallback is None  # no fallback where none is needed
    # the fallback's outputs are the built-in kernels' own (and, where XNNPACK runs it, XNNPACK's equal them)
    x = np.random.default_rng(0).integers(-128, 128, (3, 8, 8, 3)).astype(np.int8)
    got = litert.run(resize_model(), x, raw=True)[0][0]
    ref = lite.Interpreter(model_content=resize_model(), experimental_op_resolver_type=(
        lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    ref.allocate_tensors()
    d = ref.get_input_details()[0]
    for k in range(3):
        ref.set_tensor(d["index"], x[k:k + 1])
        ref.invoke()
        assert np.array_equal(got[k], ref.get_tensor(ref.get_output_details()[0]["index"])[0])


def test_litert_still_refuses_what_no_kernel_runs():
    """The fallback is for the delegate only: a model the built-in kernels refuse too stays an error."""
    b = ModelBuilder()
    x = b.tensor("input", [1, 4, 4, 2], np.int8, scale=0.01)
    w = b.tensor("w", [4, 3, 3, 4], np.int8, np.ones((4, 3, 3, 4)), [0.01] * 4, axis=0)
    bias = b.tensor("b", [4], np.int32, np.zeros(4), [1e-4] * 4)
    y = b.tensor("y", [1, 4, 4, 4], np.int8, scale=0.01)
    b.op(OP.CONV_2D, [x, w, bias], [y], _options(fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=1,
         strideW=1, dilationHFactor=1, dilationWFactor=1), 3)
    with pytest.raises(Exception, match="CONV_2D"):
        litert.load(b.finish([x], [y]))


@pytest.mark.parametrize("target", ["coral", "rpi4"])
def test_simulated_board_runs_the_resize_xnnpack_cannot_prepare(target, tmp_path):
    path = tmp_path / "resize.tflite"
    path.write_bytes(resize_model())
    res = edgekit("deploy", path, "--target", target, "--sim", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    note = "note: LiteRT's default XNNPACK delegate cannot prepare op 0 (RESIZE_BILINEAR)"
    assert (note in said) == XNNPACK_REFUSES, res.stderr
    assert "flash" not in res.stderr
    assert f"deployed to {target} (simulated)" in res.stdout  # outputs checked against LiteRT here

    path.write_bytes(resize_model(0.02, 0))
    res = edgekit("profile", path, "--target", target, "--sim", cwd=tmp_path)
    assert res.returncode == 0 and "note:" not in res.stderr, res.stderr


# -- uint8 on TFLite Micro ---------------------------------------------------------------------

UINT8_WORDS = ("uint8 (legacy quantization)", "TensorFlow Lite Micro does not run", "edgekit convert", "--calib")


@pytest.mark.parametrize("target", ["nano33ble", "esp32s3"])
def test_uint8_model_on_an_mcu_is_refused_with_the_fix(target, tmp_path):
    path = tmp_path / "legacy.tflite"
    path.write_bytes(uint8_conv())
    for command in ("profile", "deploy"):
        line = one_line_error(edgekit(command, path, "--target", target, "--sim", cwd=tmp_path))
        assert all(w in line for w in UINT8_WORDS), line
        assert "flash" not in line and "allocate" not in line, line


@needs_reference_models
def test_legacy_mobilenet_on_the_nano(tmp_path):
    line = one_line_error(edgekit("profile", REFERENCE_MODELS / "mobilenet_v1_0.25_128_quant.tflite",
                                  "--target", "nano33ble", "--sim", cwd=tmp_path))
    assert all(w in line for w in UINT8_WORDS) and "flash" not in line, line


@needs_tflm
def test_tflm_worker_refuses_uint8_before_starting_its_child():
    with pytest.raises(Exception) as e:
        TflmWorker(uint8_conv(), [((1, 4, 4, 2), "uint8")], 1)
    assert all(w in str(e.value) for w in UINT8_WORDS) and "\n" not in str(e.value)


@needs_tflm
def test_uint8_input_quantized_to_int8_still_runs():
    """Only legacy uint8 compute is refused: a uint8 input QUANTIZEd to int8 is an int8 model."""
    worker = TflmWorker(uint8_input_int8_model(), [((1, 4, 4, 2), "uint8")], 1)
    try:
        assert len(worker.run(np.full(32, 128, np.uint8).tobytes())) == 8
    finally:
        worker.close()


@needs_tflm
def test_tflm_load_error_keeps_tflite_micros_words(monkeypatch):
    """Past edgekit's own check, TFLite Micro's reason (from its log) follows its bare exception."""
    from edgekit.protocol import model_runner
    monkeypatch.setattr(model_runner, "tflm_refusal", lambda model: None)
    with pytest.raises(Exception) as e:
        TflmWorker(uint8_conv(), [((1, 4, 4, 2), "uint8")], 1)
    assert "failed to allocate tensors (Hybrid models are not supported on TFLite Micro" in str(e.value), e.value
