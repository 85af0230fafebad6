"""Hostile calibration files and size bombs: each is refused with a one-line
error and exit 2, before its data is read or inflated; nothing is written."""
import io
import json
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import fuzzing
import ir_models
from edgekit.cli import main
from edgekit.export.tflite_writer import write_tflite

DENSE_INPUTS = 64  # one sample is 256 bytes as float32: 2 million of them are 512 MB


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory):
    """A float .tflite taking (N, 64): small enough that a valid conversion takes milliseconds."""
    path = tmp_path_factory.mktemp("model") / "dense.tflite"
    path.write_bytes(write_tflite(ir_models.wide_dense(inputs=DENSE_INPUTS, outputs=4)))
    return path


def good(n=16):
    return np.random.default_rng(0).uniform(-1, 1, (n, DENSE_INPUTS)).astype(np.float32)


def npy(arr) -> bytes:
    f = io.BytesIO()
    np.save(f, arr, allow_pickle=True)
    return f.getvalue()


def npz(members: dict) -> bytes:
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return f.getvalue()


def with_header(arr, old: str, new: str) -> bytes:
    """arr as .npy with its header text edited in place (same length), the data left as it was."""
    data = npy(arr)
    n = int.from_bytes(data[8:10], "little")
    text = data[10:10 + n].decode("latin1").replace(old, new)
    return data[:10] + text[:n].ljust(n).encode("latin1") + data[10 + n:]


BAD = {  # name: (file bytes, suffix, words the one-line error must contain)
    "zero_d": (npy(np.float32(1.5)), ".npy", ["0-d"]),
    "corrupt_magic": (b"\x93NUMPY\x09\x00" + npy(good())[8:], ".npy", ["corrupt .npy header"]),
    "garbage_header": (npy(good())[:10] + b"{'descr': <<<garbage>>>" + npy(good())[33:], ".npy", ["corrupt .npy header"]),
    "unknown_descr": (with_header(good(), "'<f4'", "'zz9'"), ".npy", ["corrupt .npy header"]),
    "negative_shape": (with_header(good(), "(16,", "(-3,"), ".npy", ["corrupt .npy header"]),
    "truncated": (npy(good())[:200], ".npy", ["truncated"]),
    "datetime": (npy(np.zeros((16, DENSE_INPUTS), "datetime64[s]")), ".npy", ["dates"]),
    "timedelta": (npy(np.ones((16, DENSE_INPUTS), "timedelta64[ms]")), ".npy", ["durations"]),
    "complex": (npy(good().astype(np.complex64) + 1j), ".npy", ["complex", "imaginary"]),
    "bool": (npy(good() > 0), ".npy", ["booleans"]),
    "object": (npy(good().astype(object)), ".npy", ["never unpickles"]),
    "structured": (npy(np.zeros(16, [("a", "<f4", (DENSE_INPUTS,))])), ".npy", ["structured"]),
    "strings": (npy(good().astype("U6")), ".npy", ["numbers"]),
    "nan": (npy(np.where(np.arange(DENSE_INPUTS) == 5, np.nan, good())), ".npy", ["NaN"]),
    "inf": (npy(np.where(np.arange(DENSE_INPUTS) == 5, -np.inf, good())), ".npy", ["infinite"]),
    "float32_overflow": (npy(np.full((16, DENSE_INPUTS), 1e300)), ".npy", ["float32"]),
    "wrong_rank": (npy(good().reshape(-1)), ".npy", ["shape"]),
    "wrong_shape": (npy(np.zeros((16, DENSE_INPUTS + 1), np.float32)), ".npy", ["shape", "64"]),
    "no_samples": (npy(np.zeros((0, DENSE_INPUTS), np.float32)), ".npy", ["empty"]),
    "empty_file": (b"", ".npy", ["empty"]),
    "not_numpy": (b"time,x,y\n0,1,2\n" * 20, ".npy", ["not a .npy or .npz"]),
    "npz_text_member": (npz({"x": b"not an array"}), ".npz", ["corrupt .npy header"]),
    "npz_unnamed": (npz({"a.npy": npy(good()), "b.npy": npy(good())}), ".npz", ["name the inputs 'x'"]),
    "npz_empty": (npz({}), ".npz", ["no arrays"]),
    "npz_corrupt": (npz({"x.npy": npy(good())})[:-30], ".npz", ["not a readable .npz"]),
    "npz_member_truncated": (npz({"x.npy": with_header(good(), "(16,", "(99,")}), ".npz", ["truncated"]),
    "header_claims_1e12_samples": (with_header(good(), "(16,", "(1000000000000,"), ".npy",
                                   ["calibration budget", "--max-calib-mb"]),
}


def convert_cli(model, calib, out, *extra):
    return main(["convert", str(model), "--calib", str(calib), "-o", str(out), "--no-verify", *extra])


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_calibration_file_is_one_line_exit_2(name, dense_model, tmp_path, capsys):
    data, suffix, words = BAD[name]
    calib = tmp_path / f"calib{suffix}"
    calib.write_bytes(data)
    code = convert_cli(dense_model, calib, tmp_path / "out.tflite")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    for w in words:
        assert w.lower() in err.lower(), err
    assert not (tmp_path / "out.tflite").exists()


@pytest.mark.parametrize("arr", [good().astype(">f4"), np.asfortranarray(good()), good().astype(np.float16),
                                 (good() * 100).astype(np.int16), (good() > 0).astype(np.uint8)],
                         ids=["big_endian", "fortran", "float16", "int16", "uint8"])
def test_valid_variants_are_accepted(arr, dense_model, tmp_path, capsys):
    np.save(tmp_path / "calib.npy", arr)
    assert convert_cli(dense_model, tmp_path / "calib.npy", tmp_path / "out.tflite") == 0, capsys.readouterr().err
    assert (tmp_path / "out.tflite").exists()


def test_npz_member_chosen_by_name(dense_model, tmp_path, capsys):
    (tmp_path / "calib.npz").write_bytes(npz({"labels.npy": npy(np.arange(16)), "x.npy": npy(good())}))
    assert convert_cli(dense_model, tmp_path / "calib.npz", tmp_path / "out.tflite") == 0, capsys.readouterr().err


def test_complex_never_silently_loses_its_imaginary_part():
    from edgekit.convert import load_array
    from edgekit.errors import EdgekitError
    with pytest.raises(EdgekitError, match="imaginary"):
        load_array(good().astype(np.complex64))  # in memory too, not only from files


def test_calibration_budget_flag_and_env(dense_model, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "calib.npy", good(8192))  # 2 MB as float32
    assert convert_cli(dense_model, tmp_path / "calib.npy", tmp_path / "out.tflite", "--max-calib-mb", "1") == 2
    assert "--max-calib-mb" in capsys.readouterr().err
    assert convert_cli(dense_model, tmp_path / "calib.npy", tmp_path / "out.tflite", "--max-calib-mb", "3") == 0
    monkeypatch.setenv("EDGEKIT_MAX_CALIB_MB", "1")
    assert convert_cli(dense_model, tmp_path / "calib.npy", tmp_path / "out2.tflite") == 2
    assert "EDGEKIT_MAX_CALIB_MB" in capsys.readouterr().err


# ------------------------------------------------------------------ bombs, measured in a child

MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from edgekit.cli import main
    import edgekit.convert, edgekit.importers.onnx_import, edgekit.importers.tflite_import  # start-up is not timed
    t = time.perf_counter()
    code = main(sys.argv[1:])
    # VmHWM, this process's own peak: getrusage's ru_maxrss survives exec, so a child of a big
    # pytest process would report the parent's size
    peak_kb = int(next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")).split()[1])
    print(json.dumps({"code": code, "seconds": time.perf_counter() - t, "peak_mb": peak_kb / 1024,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def measured(*argv, cwd):
    """Exit code, wall time of main() (after imports) and peak RSS (VmHWM) of a fresh process running `edgekit argv`."""
    res = subprocess.run([sys.executable, "-c", MEASURE, *map(str, argv)], capture_output=True, text=True,
                         timeout=120, cwd=cwd)
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    return stats, res.stderr.strip()


def assert_refused_fast(stats, err, *words):
    assert stats["code"] == 2, err
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    assert stats["seconds"] < 2, stats
    assert stats["peak_mb"] < 300, stats


def test_inflating_npz_refused_in_under_2_s_and_300_mb(dense_model, tmp_path):
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(fuzzing._bomb((DENSE_INPUTS,)))  # 2,097,152 samples of 64 floats: 512 MB inflated
    assert bomb.stat().st_size < 600_000
    with zipfile.ZipFile(bomb) as z:
        assert z.infolist()[0].file_size > 512 * 2**20
    stats, err = measured("convert", dense_model, "--calib", bomb, "-o", tmp_path / "out.tflite", cwd=tmp_path)
    assert_refused_fast(stats, err, "calibration budget", "--max-calib-mb", "512 MB")
    assert not (tmp_path / "out.tflite").exists()


def pad_bomb() -> bytes:
    """The probe's 425-byte ONNX: a Reshape, then a Pad to 30,008 x 30,008."""
    init = [numpy_helper.from_array(np.array([1, 1, 8, 8], np.int64), "shape"),
            numpy_helper.from_array(np.array([0, 0, 15000, 15000, 0, 0, 15000, 15000], np.int64), "pads")]
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], "reshape"),
             helper.make_node("Pad", ["r", "pads"], ["y"], "pad")]
    graph = helper.make_graph(nodes, "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def test_pad_bomb_refused_in_under_2_s_and_300_mb(tmp_path):
    (tmp_path / "bomb.onnx").write_bytes(pad_bomb())
    assert len(pad_bomb()) < 500
    np.save(tmp_path / "calib.npy", np.zeros((4, 64), np.float32))
    stats, err = measured("convert", tmp_path / "bomb.onnx", "--calib", tmp_path / "calib.npy", "-o",
                          tmp_path / "out.tflite", cwd=tmp_path)
    assert_refused_fast(stats, err, "memory budget", "--max-memory")
    assert not (tmp_path / "out.tflite").exists()


def huge_input_tflite() -> bytes:
    """A float .tflite declaring a 1 x 31623 x 31623 input (4 GB per sample) to one RELU."""
    from tflite_builders import OP, ModelBuilder
    b = ModelBuilder()
    x, y = b.tensor("input", [1, 31623, 31623]), b.tensor("relu", [1, 31623, 31623])
    b.op(OP.RELU, [x], [y])
    return b.finish([x], [y])


def test_huge_declared_input_refused_in_under_2_s_and_300_mb(tmp_path):
    (tmp_path / "huge.tflite").write_bytes(huge_input_tflite())
    np.save(tmp_path / "calib.npy", np.zeros((1, 4), np.float32))  # the shape is not what is refused
    stats, err = measured("convert", tmp_path / "huge.tflite", "--calib", tmp_path / "calib.npy", "-o",
                          tmp_path / "out.tflite", cwd=tmp_path)
    assert_refused_fast(stats, err, "memory budget", "--max-memory")


def test_memory_budget_flag_raises_the_limit(tmp_path, capsys):
    """A model needing ~10 MB to calibrate: refused under --max-memory 1, converted under the default."""
    path = tmp_path / "big.tflite"
    g = ir_models.big_activations(size=64)
    path.write_bytes(write_tflite(g))
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 4))
    assert convert_cli(path, tmp_path / "calib.npy", tmp_path / "out.tflite", "--max-memory", "1") == 2
    err = capsys.readouterr().err
    assert "memory budget of 1 MB" in err and "--max-memory" in err, err
    assert convert_cli(path, tmp_path / "calib.npy", tmp_path / "out.tflite") == 0


@pytest.mark.parametrize("command", ["profile", "deploy"])
def test_deploy_and_profile_take_the_budget_flags(command, dense_model, tmp_path, capsys):
    np.save(tmp_path / "calib.npy", good(8192))  # 2 MB as float32
    argv = [command, str(dense_model), "--target", "nano33ble", "--sim", "--calib", str(tmp_path / "calib.npy")]
    assert main(argv + ["--max-calib-mb", "1"]) == 2
    assert "--max-calib-mb" in capsys.readouterr().err
    assert main(argv + ["--max-memory", "0"]) == 2
    assert "positive number of megabytes" in capsys.readouterr().err


# ------------------------------------------- NaN and infinity from the model's own computation

def overflowing_model(path):
    """A dense layer whose finite weights (1e37) overflow float32 on ordinary inputs."""
    g = ir_models.wide_dense(inputs=DENSE_INPUTS, outputs=4)
    w = next(t for t in g.tensors.values() if t.is_const and t.data.ndim == 2)
    w.data = np.full_like(w.data, 1e37)
    path.write_bytes(write_tflite(g))
    return path


def test_overflow_to_inf_in_a_layer_is_one_line_naming_it(tmp_path, capsys):
    model = overflowing_model(tmp_path / "overflow.tflite")
    np.save(tmp_path / "calib.npy", np.abs(good()) + 0.5)
    assert convert_cli(model, tmp_path / "calib.npy", tmp_path / "out.tflite") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "layer 'fc'" in err, err
    # x86-64's numpy overflows this layer to inf; on aarch64 (numpy 2.4, the arm64 check) it stops at
    # 3.4e38, float32's largest: refused as too large for int8 kernels, the same one line
    assert "infinite" in err or "reaches 3.4e+38 on the calibration set, beyond the" in err, err
    assert not (tmp_path / "out.tflite").exists()


def test_quantizer_refuses_nan_ranges_and_weights_naming_the_layer():
    from edgekit.errors import EdgekitError
    from edgekit.quantize.calibrate import calibrate
    from edgekit.quantize.scheme import quantize_graph
    g = ir_models.wide_dense(inputs=DENSE_INPUTS, outputs=4)
    ranges = calibrate(g, good())
    out = g.outputs[0]
    with pytest.raises(EdgekitError, match="layer 'fc'"):
        quantize_graph(g, {**ranges, out: (float("nan"), 1.0)})
    w = next(t for t in g.tensors.values() if t.is_const and t.data.ndim == 2)
    w.data = w.data.copy()
    w.data[0, 0] = np.nan
    with pytest.raises(EdgekitError, match="layer 'fc'.*NaN"):
        calibrate(g, good())  # the NaN reaches the activations: refused before any scale is made
    with pytest.raises(EdgekitError, match="layer 'fc'"):
        quantize_graph(g, ranges)  # and the weights themselves, if ranges came from elsewhere


@pytest.mark.parametrize("method", ["percentile", "entropy"])
@pytest.mark.parametrize("low, high", [(2.0**63 - 1,) * 2, (1e-40,) * 2, (0.0, 7e-43), (0.0,) * 2],
                         ids=["huge_constant", "denormal", "denormal_range", "zero"])
def test_histogram_calibrators_take_degenerate_inputs(method, low, high):
    """An input of 9.2e18 (lo + 1 == lo), of denormals or of zeros still has finite bins (fuzz seed 1111)."""
    from edgekit.quantize.calibrate import calibrate
    g = ir_models.wide_dense(inputs=DENSE_INPUTS, outputs=4)
    samples = np.linspace(low, high, 8 * DENSE_INPUTS).astype(np.float32).reshape(8, DENSE_INPUTS)
    ranges = calibrate(g, samples, method)
    assert all(np.isfinite(lo) and np.isfinite(hi) and lo <= hi for lo, hi in ranges.values()), ranges


def dense_with(tmp_path, weight):
    """wide_dense with one weight set to `weight`, as a float .tflite."""
    g = ir_models.wide_dense(inputs=DENSE_INPUTS, outputs=4)
    w = next(t for t in g.tensors.values() if t.is_const and t.data.ndim == 2)
    w.data = w.data.copy()
    w.data[1, :] = weight
    path = tmp_path / "model.tflite"
    path.write_bytes(write_tflite(g))
    return path


@pytest.mark.parametrize("weight, calib, words", [
    (1e25, np.abs(good()) + 0.5, ["layer 'fc'", "reaches"]),  # else converted "fine": garbage scales
    (0.1, np.full((16, DENSE_INPUTS), 1e30, np.float32), ["the input", "reaches"]),
    (1e30, np.zeros((16, DENSE_INPUTS), np.float32), ["layer 'fc'", "rescaling"]),  # zero input: a normal output
], ids=["huge_activation", "huge_input", "huge_multiplier"])  # the last: else XNNPACK fails, vaguely
def test_scales_int8_kernels_cannot_represent_are_one_line(weight, calib, words, tmp_path):
    """Finite but absurd values (found by the fuzzer: a bit-flipped weight of 2e37 made LiteRT abort)."""
    np.save(tmp_path / "calib.npy", calib)
    res = subprocess.run([sys.executable, "-m", "edgekit", "convert", dense_with(tmp_path, weight), "--calib",
                          tmp_path / "calib.npy", "-o", tmp_path / "out.tflite"], capture_output=True, text=True,
                         timeout=120)  # in a child: without the check, LiteRT aborts the process
    err = res.stderr.strip()
    assert res.returncode == 2, (res.returncode, err)
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err


def test_huge_weight_before_an_add_is_one_line_not_an_abort(tmp_path):
    """The fuzzer's case: a bit-flipped conv weight (2e37) before an ADD made LiteRT abort the process."""
    g = ir_models.residual()
    w = g.tensors["conv2/weights"]
    w.data = w.data.copy()
    w.data[0] = 1e34
    (tmp_path / "model.tflite").write_bytes(write_tflite(g))
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 8))
    res = subprocess.run([sys.executable, "-m", "edgekit", "convert", tmp_path / "model.tflite", "--calib",
                          tmp_path / "calib.npy", "-o", tmp_path / "out.tflite"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "layer 'conv2'" in res.stderr, (res.returncode, res.stderr)


def test_add_whose_input_dwarfs_its_output_is_one_line_not_an_abort(tmp_path):
    """An ADD whose input scale is 2^19 or more times its output's aborts TFLite's Prepare (found by fuzzing:
    huge weights before a HardSigmoid's x + 3 with its clip). Here a relu'd sum of a hugely negative conv."""
    g = ir_models.residual()
    w = g.tensors["conv2/weights"]
    w.data = -np.abs(w.data) * 1e6
    (tmp_path / "model.tflite").write_bytes(write_tflite(g))
    np.save(tmp_path / "calib.npy", ir_models.calibration(g, 8))
    res = subprocess.run([sys.executable, "-m", "edgekit", "convert", tmp_path / "model.tflite", "--calib",
                          tmp_path / "calib.npy", "-o", tmp_path / "out.tflite"], capture_output=True, text=True,
                         timeout=120)  # in a child: without the check, LiteRT aborts the process (SIGABRT)
    err = res.stderr.strip()
    assert res.returncode == 2, (res.returncode, err)
    assert len(err.splitlines()) == 1 and "layer 'add'" in err and "2^19" in err, err
    assert not (tmp_path / "out.tflite").exists()
