"""edgekit.edgetpu.compiler: edgetpu_compiler's log, a fake compiler on PATH, compiled models."""
import json

import pytest

import edgetpu_builders as eb
import fake_edgetpu_compiler
import ir_models
from edgekit.edgetpu import compile, edgetpu_compiler_available, from_compiled_model, parse_log, predict
from edgekit.edgetpu import compiler as ec
from edgekit.edgetpu.rules import DATA_TYPE, MAPPED, MORE_THAN_ONE_SUBGRAPH, UNSPECIFIED
from edgekit.errors import EdgekitError

KiB, MiB = 1024, 1024 ** 2

# Excerpts of logs pasted in public issues (test data, shortened where marked).

# github.com/google-coral/edgetpu/issues/60 (compiler 2.1, -s; the op table cut after 4 rows)
LOG_I60 = """\
edgetpu_compiler -s model2.tflite
Edge TPU Compiler version 2.1.302470888

Model compiled successfully in 12264 ms.

Input model: model2.tflite
Input size: 8.11MiB
Output model: model2_edgetpu.tflite
Output size: 9.47MiB
On-chip memory used for caching model parameters: 6.86MiB
On-chip memory remaining for caching model parameters: 7.75KiB
Off-chip memory used for streaming uncached model parameters: 1.22MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 93
Operation log: model2_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model \
will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations \
supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 83
Number of operations that will run on CPU: 10

Operator                       Count      Status

LOGISTIC                       1          More than one subgraph is not supported
ADD                            10         Mapped to Edge TPU
CONCATENATION                  1          More than one subgraph is not supported
CONCATENATION                  3          Mapped to Edge TPU
"""

# github.com/f0cal/google-coral/issues/20 (a post-training quantized MobileNet v2 with float I/O; the
# summary and the whole table)
LOG_F0CAL20 = """\
Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model \
will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations \
supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 70
Number of operations that will run on CPU: 2

Operator                       Count      Status

ADD                            10         Mapped to Edge TPU
PAD                            5          Mapped to Edge TPU
QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
CONV_2D                        35         Mapped to Edge TPU
DEPTHWISE_CONV_2D              17         Mapped to Edge TPU
DEQUANTIZE                     1          Operation is working on an unsupported data type
MEAN                           1          Mapped to Edge TPU
FULLY_CONNECTED                1          Mapped to Edge TPU
SOFTMAX                        1          Mapped to Edge TPU
"""

# github.com/google-coral/edgetpu/issues/572 (compiler 16, without -s: everything mapped, part streamed)
LOG_I572 = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 542 ms.

Input model: quantized_model.tflite
Input size: 4.04MiB
Output model: quantized_model_edgetpu.tflite
Output size: 4.13MiB
On-chip memory used for caching model parameters: 604.50KiB
On-chip memory remaining for caching model parameters: 511.50KiB
Off-chip memory used for streaming uncached model parameters: 3.45MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 50
Operation log: quantized_model_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""


def test_units():
    assert ec.to_bytes("0.00", "B") == 0
    assert ec.to_bytes("7.75", "KiB") == 7936
    assert ec.to_bytes("1.23", "MiB") == round(1.23 * MiB)
    assert ec.to_bytes("1", "GiB") == 1024 ** 3


def test_log_with_partial_table():
    log = parse_log(LOG_I60)
    assert log.source == "compiled" and log.compiler_version == "2.1.302470888" and log.compile_ms == 12264
    assert (log.input_model, log.output_model, log.operation_log) == ("model2.tflite", "model2_edgetpu.tflite",
                                                                       "model2_edgetpu.log")
    assert (log.input_bytes, log.output_bytes) == (round(8.11 * MiB), round(9.47 * MiB))
    assert log.on_chip_bytes == round(6.86 * MiB) and log.remaining_bytes == 7936
    assert log.off_chip_bytes == round(1.22 * MiB)
    assert (log.subgraphs, log.total_ops, log.mapped_ops, log.cpu_count) == (1, 93, 83, 10)
    assert log.op_table == [("LOGISTIC", 1, MORE_THAN_ONE_SUBGRAPH), ("ADD", 10, MAPPED),
                            ("CONCATENATION", 1, MORE_THAN_ONE_SUBGRAPH), ("CONCATENATION", 3, MAPPED)]
    assert log.cpu_ops == ["LOGISTIC", "CONCATENATION"]  # what the (cut) table shows
    assert log.cpu_reasons == [MORE_THAN_ONE_SUBGRAPH] * 2
    assert any("table counts 15" in n for n in log.notes)


def test_log_with_float_interface():
    """The same statuses predict() gives a float-interface model's QUANTIZE and DEQUANTIZE."""
    log = parse_log(LOG_F0CAL20)
    assert (log.total_ops, log.mapped_ops, log.cpu_count, log.subgraphs) == (72, 70, 2, 1)
    assert log.cpu_ops == ["QUANTIZE", "DEQUANTIZE"] and log.cpu_reasons == [UNSPECIFIED, DATA_TYPE]
    assert sum(n for _, n, _ in log.op_table) == 72 and not log.notes
    assert log.compiler_version == "" and log.on_chip_bytes == 0  # not in the excerpt
    p = predict(eb.float_interface())
    assert [(op, r.split(":")[0]) for op, r in zip(p.cpu_ops, p.cpu_reasons)] == list(zip(log.cpu_ops, log.cpu_reasons))


def test_log_without_table_all_mapped():
    log = parse_log(LOG_I572)
    assert log.compiler_version == "16.0.384591198" and log.compile_ms == 542
    assert (log.total_ops, log.mapped_ops, log.cpu_count, log.cpu_ops, log.op_table) == (50, 50, 0, [], [])
    assert (log.on_chip_bytes, log.remaining_bytes, log.off_chip_bytes) == (
        round(604.5 * KiB), round(511.5 * KiB), round(3.45 * MiB))
    assert not log.notes


def test_wrapped_warning_and_quoting():
    """Compiler 14 wraps its warning over lines; logs pasted as markdown quotes start with '> '."""
    text = LOG_I572.replace("Total number of operations: 50", "Total number of operations: 24") + (
        "Model successfully compiled but not all operations are supported by the\nEdge TPU. A percentage of the "
        "model will instead run on the CPU, which is\nslower.\nNumber of operations that will run on Edge TPU: 6\n"
        "Number of operations that will run on CPU: 18\n")
    log = parse_log("\n".join("> " + line for line in text.splitlines()))
    assert (log.total_ops, log.mapped_ops, log.cpu_count, log.cpu_ops) == (24, 6, 18, [])
    assert any("-s" in n for n in log.notes)


def test_last_report_wins():
    """Co-compiled models (or -d's attempts) print several reports: the last one is read."""
    log = parse_log(LOG_I572 + LOG_I60.split("Model compiled successfully in 12264 ms.")[1])
    assert log.input_model == "model2.tflite" and log.total_ops == 93


def test_compiler_failure_and_garbage():
    with pytest.raises(EdgekitError, match="edgetpu_compiler failed: Internal compiler error. Aborting!"):
        parse_log("Edge TPU Compiler version 14.1.317412892\n\nInternal compiler error. Aborting!\n")
    with pytest.raises(EdgekitError, match="not an edgetpu_compiler log"):
        parse_log("hello\nworld\n")


def test_table_text_round_trips():
    p = predict(eb.unsupported_in_middle())
    log = parse_log(p.table_text())
    assert log.op_table == p.op_table and log.mapped_ops == p.mapped_ops and sorted(log.cpu_ops) == sorted(p.cpu_ops)


# -- compiled models ------------------------------------------------------------------------------------

def test_from_compiled_model():
    info = from_compiled_model(eb.compiled_like(("SOFTMAX", "RELU"), payload=1000))
    assert info["edgetpu_ops"] == 1 and info["cpu_ops"] == ["SOFTMAX", "RELU"]
    assert info["cpu_before"] == [] and info["cpu_after"] == ["SOFTMAX", "RELU"]
    assert info["ops"][0] == "CUSTOM(edgetpu-custom-op)" and info["executable_bytes"] == 1000
    assert info["estimated_cycles"] is None  # zeros are no package: nothing to report, no failure


def test_compiled_model_cycle_estimate():
    """The compiler's cycle estimate is read from the executable that runs, not the cache loader's."""
    package = eb.dwn1_package([("model", 2, 21568, b""), ("Unknown", 1, 0, b"\x01" * 64)])
    model = eb.compiled_like((), payload=package)
    info = from_compiled_model(model)
    assert info["estimated_cycles"] == 21568
    from edgekit.edgetpu.plan import plan, summary
    part = plan(model).partition  # an already compiled model: what it carries, with the time it means
    assert part.estimated_cycles == summary(part)["compiler_estimated_cycles"] == 21568
    assert "21,568 Edge TPU cycles per call: 0.043 ms at the 500 MHz max clock" in part.notes[-1]
    from edgekit.edgetpu.executable import read_package
    exes = read_package(package)
    assert [(e.name, e.type, e.estimated_cycles, e.parameter_bytes) for e in exes] == \
        [("model", "execution-only", 21568, 0), ("Unknown", "parameter-caching", 0, 64)]
    with pytest.raises(EdgekitError, match="damaged"):
        read_package(package[:40])


# -- running the compiler -------------------------------------------------------------------------------

def test_availability_message(monkeypatch):
    monkeypatch.setattr(ec.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(ec.platform, "machine", lambda: "arm64")
    ok, why = edgetpu_compiler_available()
    assert not ok and "x86-64 Linux only" in why and "Darwin arm64" in why


def test_not_on_path(monkeypatch, tmp_path):
    monkeypatch.setattr(ec.platform, "system", lambda: "Linux")
    monkeypatch.setattr(ec.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, why = edgetpu_compiler_available()
    assert not ok and "not on PATH" in why
    with pytest.raises(EdgekitError, match="not on PATH"):
        compile(tmp_path / "m.tflite", tmp_path / "out")


# A stand-in for edgetpu_compiler: records its arguments, writes <name>_edgetpu.tflite into -o's directory
# (the file FAKE_OUTPUT names) and prints a compiler-16 style log for the 7-op int8 CNN.
@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
    exe = fake_edgetpu_compiler.install(monkeypatch, tmp_path)
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    return {"exe": exe, "model": model, "out": tmp_path / "out", "args": tmp_path / "args.json"}


def test_fake_compiler_run_and_parsed(fake_compiler):
    f = fake_compiler
    ok, path = edgetpu_compiler_available()
    assert ok and path == str(f["exe"])
    out, log = compile(f["model"], f["out"])
    assert json.loads(f["args"].read_text()) == ["-s", "-o", str(f["out"]), str(f["model"])]
    assert out == f["out"] / "cnn_int8_edgetpu.tflite" and out.is_file()
    assert log.source == "compiled" and log.compiler_version == "16.0.384591198" and log.compile_ms == 130
    assert (log.total_ops, log.mapped_ops, log.cpu_ops, log.subgraphs) == (7, 7, [], 1)
    assert log.on_chip_bytes == round(4.75 * KiB) and log.off_chip_bytes == 0
    assert log.output_model == f"{f['out']}/cnn_int8_edgetpu.tflite"
    # the compiler's table and the prediction agree on this model
    p = predict(f["model"].read_bytes())
    assert sorted(log.op_table) == sorted(p.op_table) and log.mapped_ops == p.mapped_ops
    assert from_compiled_model(out)["edgetpu_ops"] == 1


@pytest.mark.parametrize("mode, message", [
    ("fail", "edgetpu_compiler failed on 'cnn_int8.tflite': Internal compiler error. Aborting!"),
    ("no-output", "wrote no 'cnn_int8_edgetpu.tflite'"),
    ("sleep", "did not finish within 1 s"),
])
def test_fake_compiler_failures(fake_compiler, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_MODE", mode)
    with pytest.raises(EdgekitError) as e:
        compile(fake_compiler["model"], fake_compiler["out"], timeout=1)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_model(fake_compiler, tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        compile(tmp_path / "nope.tflite", tmp_path / "out")


@pytest.mark.skipif(not edgetpu_compiler_available()[0], reason="edgetpu_compiler is not on PATH (x86-64 Linux only)")
def test_real_compiler(tmp_path):
    model = tmp_path / "cnn_int8.tflite"
    model.write_bytes(ir_models.int8(ir_models.cnn()))
    out, log = compile(model, tmp_path)
    p = predict(model.read_bytes())
    assert log.mapped_ops == p.mapped_ops and log.subgraphs == p.subgraphs == 1
    info = from_compiled_model(out)
    assert info["edgetpu_ops"] == 1 and info["cpu_ops"] == p.cpu_ops == []
