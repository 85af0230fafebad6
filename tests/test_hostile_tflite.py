"""Hostile and broken .tflite files: each named malformation ends in exit 2 and one line naming
what is wrong (never an internal error, a crash or a hang), and a size bomb is refused before
anything allocates it.

Every case runs `edgekit.cli.main` in a forked child, so a crash in LiteRT shows up as a failed
test (a signal) instead of taking pytest down.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import flatbuffers
import numpy as np
import pytest

from edgekit import cli
from tflite_builders import OP, ModelBuilder, _options, fb, float_mix, int8_cnn

TIMEOUT_S = 60


def run_cli(argv: list[str]) -> tuple[str, str, str]:
    """('rc<N>' or 'signal<N>' or 'hang', stderr, stdout) of `edgekit argv` run in a forked child."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            try:
                os.dup2(err.fileno(), 2)
                os.dup2(out.fileno(), 1)
                sys.stderr, sys.stdout = open(2, "w", closefd=False), open(1, "w", closefd=False)  # not pytest's
                code = cli.main(argv)
                sys.stderr.flush()
                sys.stdout.flush()
            except BaseException:
                code = 99
            os._exit(code)
        deadline = time.monotonic() + TIMEOUT_S
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "hang", "", ""
            time.sleep(0.01)
        status = done[1]
        texts = []
        for f in (err, out):
            f.seek(0)
            texts.append(f.read().decode(errors="replace").strip())
    return (f"signal{os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"rc{os.WEXITSTATUS(status)}"), *texts


def repack(data: bytes, change) -> bytes:
    """The model after change(ModelT), packed again: one field malformed, the rest intact."""
    m = fb.ModelT.InitFromPackedBuf(data, 0)
    change(m)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def tensor(m, name: str) -> fb.TensorT:
    return next(t for t in m.subgraphs[0].tensors if t.name == name.encode())


def op(m, k: int) -> fb.OperatorT:
    return m.subgraphs[0].operators[k]


def setattrs(obj, **fields):
    for k, v in fields.items():
        setattr(obj, k, v)


def shape_of(name, shape):
    return lambda m: setattr(tensor(m, name), "shape", np.array(shape, np.int32))


def no_options(k):
    return lambda m: setattrs(op(m, k), builtinOptions=None, builtinOptionsType=fb.BuiltinOptions.NONE)


def swap_options(a, b):
    def change(m):
        x, y = op(m, a), op(m, b)
        x.builtinOptions, y.builtinOptions = y.builtinOptions, x.builtinOptions
        x.builtinOptionsType, y.builtinOptionsType = y.builtinOptionsType, x.builtinOptionsType
    return change


def quant(name, **fields):
    return lambda m: setattrs(tensor(m, name).quantization, **fields)


def split_without_options() -> bytes:
    """int8 x -> SPLIT(x, w) -> y with no SplitOptions: LiteRT 2.3 dies of SIGSEGV on this."""
    b = ModelBuilder()
    x, y = b.tensor("x", [1, 4, 4, 8], np.int8, scale=0.1), b.tensor("y", [1, 4, 4, 8], np.int8, scale=0.1)
    w = b.tensor("w", [1, 3, 3, 8], np.int8, np.ones((1, 3, 3, 8)), 0.1)
    b.op(OP.SPLIT, [x, w], [y])
    return b.finish([x], [y])


def conv_filter_for_4_channels(m):
    """Shape and buffer agree, but the filter does not fit the input: LiteRT refuses, TFLM dies of SIGFPE."""
    t = tensor(m, "conv/weights")
    t.shape, m.buffers[t.buffer].data = np.array([4, 3, 3, 4], np.int32), np.ones(144, np.uint8)


# int8_cnn ops: 0 CONV_2D, 1 DEPTHWISE_CONV_2D, 2 AVERAGE_POOL_2D, 3 RESHAPE, 4 FULLY_CONNECTED, 5 SOFTMAX
# float_mix ops: 0 DEQUANTIZE, 1 CONV_2D, 2 PAD, 3 MAX_POOL_2D, 4 TANH, 5 LOGISTIC, 6 CONCATENATION, 7 MUL,
#                8 DEQUANTIZE, 9 DEPTHWISE_CONV_2D, 10 MEAN, 11 RESHAPE, 12 FULLY_CONNECTED, 13 ADD, 14 RELU6, 15 SOFTMAX
INT8 = {
    "no subgraphs": (lambda m: setattr(m, "subgraphs", []), "no subgraph"),
    "no model inputs": (lambda m: setattr(m.subgraphs[0], "inputs", np.array([], np.int32)), "has no inputs"),
    "no model outputs": (lambda m: setattr(m.subgraphs[0], "outputs", np.array([], np.int32)), "has no outputs"),
    "model output out of range": (lambda m: setattr(m.subgraphs[0], "outputs", np.array([99], np.int32)),
                                  "lists tensor 99 among its outputs"),
    "buffer index out of range": (lambda m: setattr(tensor(m, "conv/weights"), "buffer", 99),
                                  "tensor 1 ('conv/weights') uses buffer 99"),
    "buffer shorter than its tensor": (lambda m: setattr(m.buffers[1], "data", m.buffers[1].data[:40]),
                                       "needs 72 bytes but its buffer 1 holds 40"),
    "op reads a missing tensor": (lambda m: setattr(op(m, 0), "inputs", np.array([0, 1, 77], np.int32)),
                                  "op 0 (CONV_2D) reads tensors [0, 1, 77]"),
    "op with no output": (lambda m: setattr(op(m, 2), "outputs", np.array([], np.int32)), "op 2 (AVERAGE_POOL_2D) has no output"),
    "conv with one input": (lambda m: setattr(op(m, 0), "inputs", np.array([0], np.int32)), "it needs at least 2"),
    "operator code out of range": (lambda m: setattr(op(m, 1), "opcodeIndex", 40), "op 1 uses operator code 40"),
    "swapped options": (swap_options(0, 2), "op 0 (CONV_2D) carries Pool2DOptions instead of Conv2DOptions"),
    "conv without options": (no_options(0), "op 0 (CONV_2D) has no Conv2DOptions"),
    "stride 0": (lambda m: setattr(op(m, 2).builtinOptions, "strideW", 0), "op 2 (AVERAGE_POOL_2D) has strideW = 0"),
    "pool window 0": (lambda m: setattr(op(m, 2).builtinOptions, "filterHeight", 0), "filterHeight = 0"),
    "unknown padding": (lambda m: setattr(op(m, 1).builtinOptions, "padding", 7), "padding code 7"),
    "unknown fused activation": (lambda m: setattr(op(m, 0).builtinOptions, "fusedActivationFunction", 42),
                                 "fused activation code 42"),
    "negative dimension": (shape_of("input", [1, -8, 8, 2]), "tensor 0 ('input') has shape [1, -8, 8, 2]"),
    "rank 9": (shape_of("pool", [1] * 9), "at most 8"),
    "tensor name not UTF-8": (lambda m: setattr(tensor(m, "dw"), "name", b"\x9b\xffdw"),
                              "tensor 6 has a name that is not UTF-8 text"),
    "unknown type": (lambda m: setattr(tensor(m, "dw"), "type", 99), "tensor 6 ('dw') has unknown type code 99"),
    "NaN scale": (quant("fc", scale=np.array([np.nan], np.float32)), "tensor 11 ('fc') has quantization scale [nan]"),
    "zero scale": (quant("probs", scale=np.array([0.0], np.float32)), "scales must be finite and > 0"),
    "scales do not match channels": (quant("conv/weights", scale=np.ones(3, np.float32), zeroPoint=np.zeros(3, np.int64)),
                                     "of shape [4, 3, 3, 2] has 3 per-channel scales along axis 0"),
    "zero points do not match scales": (quant("conv", zeroPoint=np.zeros(2, np.int64)), "1 quantization scales but 2 zero points"),
    "scale without zero points": (quant("fc", zeroPoint=np.array([], np.int64)), None),  # zero points 0: fine
    "zero point outside int8": (quant("conv", zeroPoint=np.array([300], np.int64)), "zero point [300] outside the int8 range"),
    "schema version 2": (lambda m: setattr(m, "version", 2), "schema version 2"),
    # consistent fields, inconsistent model: what only a runtime sees, passed on in one line naming the tensor/op
    "declared shape is not what the op makes": (shape_of("pool", [1, 3, 3, 8]),
                                                "tensor 7 ('pool') is declared [1, 3, 3, 8] but its op makes [1, 2, 2, 8]"),
    # a flipped bit (fuzz): LiteRT then refuses the file, and TFLite Micro, which trusts shapes, loops for minutes
    "conv output of rank 0": (shape_of("conv", []), "op 0 (CONV_2D) gets a rank-0 tensor 3 as its output; it takes 4-D"),
}
# well-formed fields that LiteRT still refuses: an int8 model made elsewhere passes through, and
# its report says which runtime refused it and why, in one line (verify.py)
REFUSED_BY_LITERT = {
    "weights with no data": (lambda m: setattr(tensor(m, "dw/weights"), "buffer", 0), "LiteRT cannot run this model"),
    "conv filter for 4 channels on a 2-channel input": (conv_filter_for_4_channels,
                                                         "LiteRT cannot load this model: op 0 (CONV_2D): input_channel"),
}
FLOAT = {
    "no ops": (lambda m: setattr(m.subgraphs[0], "operators", []), "output tensor 26 ('probs') is never computed"),
    "model output is a constant": (lambda m: setattr(m.subgraphs[0], "outputs", np.array([3], np.int32)),
                                   "output tensor 3 ('b1') is never computed"),
    "softmax options swapped with pad's": (swap_options(2, 15), "op 2 (PAD) carries SoftmaxOptions instead of PadOptions"),
    "softmax without options": (no_options(15), "layer 'probs' (SOFTMAX) has no options"),
    "concatenation of scalars": (shape_of("concat", []), "CONCATENATION) takes an axis of tensor"),
    "reshape that changes the element count": (shape_of("flatten", [1, 7]), "RESHAPE) turns [1, 1, 1, 8] into [1, 7]"),
    "negative padding": (
        lambda m: setattr(m.buffers[tensor(m, "pads").buffer], "data",
                          np.array([[0, 0], [-1, 1], [1, 1], [0, 0]], np.int32).view(np.uint8).ravel()),
        "(PAD) has paddings [[0, 0], [-1, 1], [1, 1], [0, 0]]"),
    "conv weights of rank 3": (shape_of("w1", [4, 3, 9]), "op 1 (CONV_2D) gets a rank-3 tensor 2 as its weights"),
    "int32 weights without a scale": (lambda m: setattr(tensor(m, "fc_w"), "type", fb.TensorType.INT32),
                                      "uses tensor 22 ('fc_w') of type int32 as weights, without quantization"),
    "conv bias that is not constant": (lambda m: setattr(tensor(m, "b1"), "buffer", 0), "needs tensor 3 ('b1') to hold constant values"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    np.save(d / "calib8.npy", np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 2)).astype(np.float32))
    np.save(d / "calib6.npy", np.random.default_rng(0).uniform(-1, 1, (8, 6, 6, 3)).astype(np.float32))
    return d


def assert_one_line_error(outcome, message, stdout, expected):
    assert outcome == "rc2", (outcome, message)
    assert "\n" not in message and message.startswith("error:") and "internal" not in message, message
    assert expected in message, message


@pytest.mark.parametrize("case", INT8)
def test_hostile_int8_model(case, workdir):
    change, expected = INT8[case]
    path = workdir / "model.tflite"
    path.write_bytes(repack(int8_cnn(), change))
    for argv in (["convert", str(path), "-o", str(workdir / "out.tflite")], ["inspect", str(path), "--json"]):
        outcome, message, _ = run_cli(argv)
        if expected is None:
            assert outcome in ("rc0", "rc2") and "internal" not in message, (outcome, message)
            continue
        if argv[0] == "inspect" and "declared" in expected:
            assert outcome == "rc0", message  # well-formed fields: inspect describes what LiteRT refuses to run
            continue
        assert_one_line_error(outcome, message, None, expected)


@pytest.mark.parametrize("case", FLOAT)
def test_hostile_float_model(case, workdir):
    change, expected = FLOAT[case]
    path = workdir / "model.tflite"
    path.write_bytes(repack(float_mix(), change))
    assert_one_line_error(*run_cli(["convert", str(path), "--calib", str(workdir / "calib6.npy"), "--no-verify"]),
                          expected)


@pytest.mark.parametrize("case", REFUSED_BY_LITERT)
def test_runtime_refusal_is_reported(case, workdir):
    change, expected = REFUSED_BY_LITERT[case]
    path = workdir / "model.tflite"
    path.write_bytes(repack(int8_cnn(), change))
    outcome, message, stdout = run_cli(["convert", str(path), "--json"])
    if outcome == "rc2":  # refused while running it: one line
        assert_one_line_error(outcome, message, stdout, expected)
    else:  # refused while loading it: the report says so
        assert outcome == "rc0", (outcome, message)
        reason = json.loads(stdout)["litert"]["reason"]
        assert expected in reason and "\n" not in reason, reason


LITERT_CRASHERS = {  # each made LiteRT 2.3 die of SIGSEGV
    "split without options": (split_without_options, "op 0 (SPLIT) has no SplitOptions, which LiteRT needs"),
    "depthwise without a bias slot": (
        lambda: repack(int8_cnn(), lambda m: setattr(op(m, 1), "inputs", op(m, 1).inputs[:2])),
        "op 1 (DEPTHWISE_CONV_2D) has 2 inputs; LiteRT needs 3"),
    "reshape with its shape input absent": (
        lambda: repack(int8_cnn(), lambda m: setattr(op(m, 3), "inputs", np.array([7, -1], np.int32))),
        "op 3 (RESHAPE) leaves input 1 absent (-1)"),
}


@pytest.mark.parametrize("case", LITERT_CRASHERS)
def test_litert_crasher_is_refused_before_litert_sees_it(case, workdir):
    make, expected = LITERT_CRASHERS[case]
    path = workdir / "crasher.tflite"
    path.write_bytes(make())
    outcome, message, stdout = run_cli(["convert", str(path), "--json"])
    assert outcome == "rc0", (outcome, message)  # not signal11: LiteRT never saw it
    assert expected in json.loads(stdout)["litert"]["reason"]
    assert run_cli(["inspect", str(path)])[0] == "rc0"


def test_the_unmodified_models_still_convert(workdir):
    """The cases above fail because of their one change, not because the fixtures are broken."""
    (workdir / "int8.tflite").write_bytes(repack(int8_cnn(), lambda m: None))
    (workdir / "float.tflite").write_bytes(repack(float_mix(), lambda m: None))
    assert run_cli(["convert", str(workdir / "int8.tflite"), "-o", str(workdir / "a.tflite")])[0] == "rc0"
    assert run_cli(["convert", str(workdir / "float.tflite"), "--calib", str(workdir / "calib6.npy"),
                    "--no-verify"])[0] == "rc0"


# -- the size bomb -----------------------------------------------------------------------------------

def huge_model(dtype) -> bytes:
    """1x31623x31623x1 input -> 3x3 conv to 16 channels: 1e9 input elements, 59.6 GiB of float32 output."""
    b = ModelBuilder()
    q = dict(scale=0.1) if dtype == np.int8 else {}
    x = b.tensor("input", [1, 31623, 31623, 1], dtype, **q)
    w = b.tensor("w", [16, 3, 3, 1], dtype, np.ones((16, 3, 3, 1)), *([[0.1] * 16] if q else []))
    bias = b.tensor("b", [16], np.float32 if dtype == np.float32 else np.int32, np.zeros(16),
                    *([[0.01] * 16] if q else []))
    y = b.tensor("output", [1, 31623, 31623, 16], dtype, **q)
    b.op(OP.CONV_2D, [x, w, bias], [y], _options(fb.Conv2DOptionsT, padding=fb.Padding.SAME, strideH=1, strideW=1,
                                                  dilationHFactor=1, dilationWFactor=1), 3 if q else 1)
    return b.finish([x], [y])


MEASURE = """
import sys, time
from edgekit.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
# VmHWM: this process's own peak (getrusage's ru_maxrss survives exec, so it would report the forking pytest's)
print(time.perf_counter() - t, 1024 * next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:")))
sys.exit(code)
"""


@pytest.mark.parametrize("dtype", [np.float32, np.int8], ids=["float", "int8"])
def test_31623_squared_tensor_is_refused_fast_and_small(dtype, workdir):
    path = workdir / "huge.tflite"
    path.write_bytes(huge_model(dtype))
    calib = workdir / "calib_small.npy"
    np.save(calib, np.zeros((2, 4, 4, 1), np.float32))  # the model is refused before the calibration matters
    argv = ["convert", str(path), "--calib", str(calib), "-o", str(workdir / "huge_int8.tflite")]
    proc = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, timeout=120)
    seconds, peak = proc.stdout.split()
    message = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in message, message
    assert "memory budget" in message and "--max-memory" in message and "'huge.tflite'" in message, message
    assert float(seconds) < 2.0 and int(peak) < 300 * 2**20, (seconds, int(peak) / 2**20)
    assert not (workdir / "huge_int8.tflite").exists()
    # describing it allocates nothing, so inspect still works
    assert run_cli(["inspect", str(path), "--json"])[0] == "rc0"


def test_error_messages_survive_litert_loading_in_two_threads():
    """verify loads LiteRT in the TFLM thread too; each load sends fd 2 to /dev/null for a moment.
    Interleaved without a lock, the second restored /dev/null and the one-line error vanished."""
    import threading
    from edgekit.runtime import litert
    before, keep = os.fstat(2).st_ino, os.dup(2)
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()

    def first():
        with litert.quiet():
            a_inside.set()
            b_inside.wait(0.5)  # without the lock, the second thread gets in here
        a_done.set()

    def second():
        a_inside.wait(5)
        with litert.quiet():  # ... and leaves after the first, restoring the /dev/null it saved
            b_inside.set()
            a_done.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert os.fstat(2).st_ino == before
    finally:
        os.dup2(keep, 2)
        os.close(keep)


@pytest.mark.parametrize("target", ["rpi4", "coral"])
def test_31623_squared_int8_model_is_refused_before_a_simulated_board_allocates(target, workdir):
    """profile/deploy take an int8 file as it is: the budget is checked before the simulator or LiteRT
    allocate (without the check: 4.4 s and about 1 GB before the same error)."""
    path = workdir / "huge8.tflite"
    path.write_bytes(huge_model(np.int8))
    proc = subprocess.run([sys.executable, "-c", MEASURE, "profile", str(path), "--target", target, "--sim"],
                          capture_output=True, text=True, timeout=120)
    seconds, peak = proc.stdout.split()
    message = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in message and "--max-memory" in message, message
    assert float(seconds) < 2.0 and int(peak) < 300 * 2**20, (seconds, int(peak) / 2**20)
