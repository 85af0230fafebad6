"""Reading, inspecting, importing and running .tflite files (tflite_file, inspect, tflite_import, tflm)."""
import io
import json
import os
import pickle
import platform

import numpy as np
import pytest

from edgekit.errors import EdgekitError, UnsupportedError
from edgekit.importers.tflite_import import import_tflite
from edgekit.inspect import inspect_model, render_inspect
from edgekit.runtime import litert
from edgekit.runtime.tflm import run_tflm, tflm_available
from edgekit.tflite_file import builtin_name, is_fully_int8, quantization_kind, read_model, tensor_type_name
from tflite_builders import OP, _options, fb, float_mix, float_with, int8_cnn, tflm_crasher, with_data_in_buffer0
from platforms import needs_tflm
from reference_models import REFERENCE_MODELS, needs_reference_models



def one_line_error(data, name="bad.tflite") -> str:
    with pytest.raises(EdgekitError) as e:
        read_model(data, name)
    msg = str(e.value)
    assert "\n" not in msg and name in msg
    return msg


# -- refusing bad files ---------------------------------------------------------------------------

def test_bad_files_give_one_line_errors():
    good = int8_cnn()
    assert "empty" in one_line_error(b"")
    assert "never unpickles" in one_line_error(pickle.dumps({"weights": [1, 2, 3]}))
    assert "pickle/PyTorch" in one_line_error(b"PK\x03\x04" + os.urandom(100))  # torch.save's zip
    assert "text file" in one_line_error(b"input,label\n1,2\n")
    assert "not a TFLite model" in one_line_error(np.random.default_rng(0).bytes(1000))
    assert "Git LFS" in one_line_error(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\n")
    no_identifier = good[:4] + b"XXXX" + good[8:]
    assert "TFL3" in one_line_error(no_identifier)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_model_is_refused_before_any_runtime_sees_it(keep):
    good = int8_cnn()
    assert "truncated" in one_line_error(good[:int(len(good) * keep)])


def test_helpers_describe_a_model():
    m = read_model(int8_cnn(), "small.tflite")
    assert [builtin_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    assert tensor_type_name(fb.TensorType.INT8) == "int8"
    assert quantization_kind(m) == "int8" and is_fully_int8(m)
    # int8 and float16 weights behind DEQUANTIZE do not make a model quantized
    f = read_model(float_mix())
    assert quantization_kind(f) == "float" and not is_fully_int8(f)


# -- inspect --------------------------------------------------------------------------------------

def test_inspect_counts_params_and_macs_exactly():
    d = inspect_model(int8_cnn(), "small.tflite")
    json.dumps(d)  # plain JSON types only
    rows = {op["op"]: op for op in d["ops"]}
    # conv 3x3/2 2->4 on 8x8 -> 4x4; depthwise x2 -> 8 channels; FC 32 -> 5 (see tflite_builders)
    assert (rows["CONV_2D"]["macs"], rows["CONV_2D"]["params"]) == (4 * 4 * 4 * 3 * 3 * 2, 4 * 3 * 3 * 2 + 4)
    assert (rows["DEPTHWISE_CONV_2D"]["macs"], rows["DEPTHWISE_CONV_2D"]["params"]) == (4 * 4 * 8 * 3 * 3, 3 * 3 * 8 + 8)
    assert (rows["FULLY_CONNECTED"]["macs"], rows["FULLY_CONNECTED"]["params"]) == (5 * 32, 5 * 32 + 5)
    assert rows["SOFTMAX"]["macs"] == rows["RESHAPE"]["params"] == 0
    assert d["totals"] == {"ops": 6, "params": 321, "macs": 2464}
    assert d["quantization"] == "int8" and d["size_bytes"] == len(int8_cnn())
    assert rows["DEPTHWISE_CONV_2D"]["weight_quantization"]["scheme"] == "per-channel"
    assert rows["DEPTHWISE_CONV_2D"]["weight_quantization"]["axis"] == 3
    assert rows["SOFTMAX"]["output_quantization"] == {"dtype": "int8", "scheme": "per-tensor",
                                                      "scale": 1 / 256, "zero_point": -128}
    assert d["inputs"][0]["shape"] == [1, 8, 8, 2] and rows["CONV_2D"]["output_shapes"] == [[1, 4, 4, 4]]
    from rich.console import Console
    out = io.StringIO()
    Console(file=out, width=200).print(render_inspect(d))
    assert "DEPTHWISE_CONV_2D" in out.getvalue() and "2,464" in out.getvalue()


def test_inspect_float_model():
    d = inspect_model(float_mix())
    assert d["quantization"] == "float"
    assert d["ops"][0]["op"] == "DEQUANTIZE" and d["ops"][0]["params"] == 4 * 3 * 3 * 3
    assert d["ops"][1]["output_quantization"] is None


# -- importing float models -----------------------------------------------------------------------

def test_import_float_model_matches_litert():
    data = float_mix()
    g = import_tflite(data, "mix")
    kinds = [op.kind for op in g.ops]
    assert "relu" in kinds and kinds.count("relu6") == 2  # fused on pool / concat: separate ops
    x = np.random.default_rng(0).normal(0, 1, (8, 6, 6, 3)).astype(np.float32)
    from edgekit import reference
    ours = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
    # LiteRT's built-in CONCATENATION refuses a fused activation, which XNNPACK runs on x86-64 but
    # not on aarch64 (LiteRT 2.3.0): the same model with the RELU6 as its own op runs everywhere
    np.testing.assert_allclose(ours, litert.run(float_mix(fused_concat=False), x)[0][0], atol=1e-5)
    if platform.machine() == "x86_64":
        np.testing.assert_allclose(ours, litert.run(data, x)[0][0], atol=1e-5)


def test_import_round_trips_edgekit_writer():
    from edgekit.export import tflite_writer as writer
    import ir_models
    from edgekit import reference
    g = ir_models.ds_block()
    back = import_tflite(writer.write_tflite(g))
    assert [op.kind for op in back.ops] == [op.kind for op in g.ops]
    assert back.ops[3].attrs["multiplier"] == 2 and back.ops[3].attrs["stride"] == (2, 2)
    x = ir_models.calibration(g, 4)
    np.testing.assert_allclose(reference.run(back, {back.inputs[0]: x})[back.outputs[0]],
                               reference.run(g, {g.inputs[0]: x})[g.outputs[0]], atol=1e-6)


def test_import_reads_hard_swish():
    """A float MobileNetV3 from TensorFlow carries HARD_SWISH ops: they import as hard_swish."""
    from edgekit import reference
    g = import_tflite(float_with(OP.HARD_SWISH))
    assert [op.kind for op in g.ops] == ["hard_swish"]
    x = np.linspace(-5, 5, 32, dtype=np.float32).reshape(1, 4, 4, 2)
    want = x * np.clip(x + 3, 0, 6) / 6
    np.testing.assert_allclose(reference.run(g, {g.inputs[0]: x})[g.outputs[0]], want, atol=1e-6)


def test_import_refuses_what_it_cannot_convert():
    with pytest.raises(UnsupportedError, match=r"op ELU in layer 'layer_out'; supported: CONV_2D"):
        import_tflite(float_with(OP.ELU))
    tanh = _options(fb.AddOptionsT, fusedActivationFunction=fb.ActivationFunctionType.TANH)
    with pytest.raises(UnsupportedError, match="fused activation TANH"):
        import_tflite(float_with(OP.ADD, tanh))
    with pytest.raises(EdgekitError, match="already quantized"):
        import_tflite(int8_cnn())


# -- TFLite Micro ---------------------------------------------------------------------------------

def _tflm_fits(model: bytes, arena: int) -> bool:
    """Load + invoke in this process: safe here, the model is known to be good."""
    from tflite_micro.python.tflite_micro import runtime
    try:
        it = runtime.Interpreter.from_bytes(model, arena_size=arena)
        it.set_input(np.zeros((1, 8, 8, 2), np.int8), 0)
        it.invoke()
        return True
    except RuntimeError:
        return False


@needs_tflm
def test_tflm_matches_litert_and_finds_the_minimum_arena():
    model = int8_cnn()
    x = np.random.default_rng(1).integers(-128, 128, (6, 8, 8, 2)).astype(np.int8)
    res = run_tflm(model, [x])
    expected = litert.run(model, x, raw=True)[0][0]
    assert res.outputs[0].shape == expected.shape == (6, 5) and res.outputs[0].dtype == np.int8
    assert np.abs(res.outputs[0].astype(int) - expected).max() <= 1
    assert _tflm_fits(model, res.arena_bytes)
    assert not _tflm_fits(model, res.arena_bytes - 16)
    assert not _tflm_fits(model, res.arena_bytes - 1)
    # a tiny model: TFLite Micro's own recorded total (head + tail) is too low (tflite-micro PR 798)
    assert res.arena_bytes >= res.arena_head + res.arena_tail > 0


@needs_tflm
def test_tflm_crash_is_isolated():
    with pytest.raises(EdgekitError, match=r"TFLite Micro crashed on this model \(signal 8"):
        run_tflm(tflm_crasher(), [np.zeros((1, 4, 4, 2), np.int8)])
    with pytest.raises(EdgekitError):  # crashes or errors, depending on what the bytes overwrite
        run_tflm(with_data_in_buffer0(int8_cnn()), [np.zeros((2, 8, 8, 2), np.int8)])
    assert run_tflm(int8_cnn(), [np.zeros((1, 8, 8, 2), np.int8)]).arena_bytes > 0  # still alive


def test_tflm_checks_inputs_first():
    with pytest.raises(EdgekitError, match="is float32 but the model wants int8"):
        run_tflm(int8_cnn(), [np.zeros((1, 8, 8, 2), np.float32)])
    with pytest.raises(EdgekitError, match="shape"):
        run_tflm(int8_cnn(), [np.zeros((1, 8, 8, 3), np.int8)])
    with pytest.raises(EdgekitError, match="truncated"):
        run_tflm(int8_cnn()[:1000], [np.zeros((1, 8, 8, 2), np.int8)])


# -- real models (only where ../shared/models exists) ---------------------------------------------

@needs_reference_models
@pytest.mark.parametrize("name,arena,macs", [("kws_ref_model", 24272, 2656768),
                                             ("pretrainedResnet_quant", 55984, 12501632),
                                             ("person_detect", 85264, 7157888)])
def test_reference_models(name, arena, macs):
    data = (REFERENCE_MODELS / f"{name}.tflite").read_bytes()
    d = inspect_model(data, name)
    assert d["quantization"] == "int8" and d["totals"]["macs"] == macs
    if tflm_available()[0]:
        shape = d["inputs"][0]["shape"]
        res = run_tflm(data, [np.zeros([2] + shape[1:], np.int8)])
        assert res.arena_bytes == arena == res.arena_head + res.arena_tail  # head + tail, as TFLM's arena_used_bytes() (micro_allocator.cc)
