"""edgekit.pi.on_board: latency on this machine (the Pi's CPU, the Coral), every path and failure.

No Coral is attached here: the accelerator paths run with injected lookups (the runtime
functions are parameters of measure()), and the stand-in runs LiteRT on the CPU, labelled so.
"""
import ctypes.util
import json
import os
import sys

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import interpreter as litert_interpreter
from ai_edge_litert import schema_py_generated as fb

import ir_models
from edgekit.errors import EdgekitError
from edgekit.pi import STAND_IN_LABEL, infer, measure, profile_on_board
from edgekit.pi import on_board as runner
from edgekit.targets import Connection


@pytest.fixture(scope="module")
def int8_model():
    return ir_models.int8(ir_models.cnn())


def compiled_like(model: bytes) -> bytes:
    """The model's graph replaced by one edgetpu-custom-op from its inputs to its outputs: the
    shape of an edgetpu_compiler output (whose op only libedgetpu can run)."""
    m = fb.ModelT.InitFromPackedBuf(model, 0)
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.CUSTOM
    code.customCode, code.version = runner.EDGETPU_OP, 1
    m.operatorCodes = [code]
    sg = m.subgraphs[0]
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs, op.customOptions = 0, list(sg.inputs), list(sg.outputs), [0] * 16
    sg.operators = [op]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="module")
def compiled_model(int8_model):
    return compiled_like(int8_model)


CORAL = Connection("coral", "usb", "usb:2-1", "runtime", "18d1", "9302", speed_mbps=5000)


def _sane(r, runs):
    assert r["runs"] == runs and r["warmup"] >= 0
    assert r["first_ms"] >= 0
    assert 0 < r["latency_ms_min"] <= r["latency_ms"] <= r["latency_ms_p90"]
    assert r["latency_ms"] < 1000 and r["first_ms"] < 10_000


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def test_stand_in_runs_the_accelerator_path_on_the_cpu_and_says_so(int8_model):
    r = measure(int8_model, accelerator=True, runs=30, warmup=3, stand_in_cpu=True)
    _sane(r, 30)
    assert r["mode"] == "stand-in" and r["stand_in"] is True
    assert r["label"] == STAND_IN_LABEL
    assert "not an Edge TPU measurement" in r["label"]
    assert r["runtime"] == "litert (CPU, XNNPACK, 4 threads)"
    assert r["libedgetpu"] is None and "tpu_clock_hz" not in r


def test_rpi4_cpu_path(int8_model):
    r = measure(int8_model, accelerator=False, runs=20, warmup=2, threads=2)
    _sane(r, 20)
    assert r["mode"] == "measured" and "label" not in r
    assert r["runtime"] == "litert (CPU, XNNPACK, 2 threads)" and r["threads"] == 2
    assert r["compiled"] is False and r["accelerator"] is False


def test_cpu_path_needs_no_accelerator_lookups(int8_model):
    def boom(*a, **k):
        raise AssertionError("the CPU path looked for the Coral")
    r = measure(int8_model, accelerator=False, runs=3, find_usb=boom, find_libedgetpu=boom, import_pycoral=boom,
                load_delegate=boom, libedgetpu_flavour=boom)
    assert r["mode"] == "measured"


def test_infer_matches_litert_reference(int8_model):
    from edgekit.runtime import litert
    x = np.random.default_rng(1).integers(-128, 128, (3, 16, 16, 3)).astype(np.int8)
    got = infer(int8_model, x, accelerator=False)
    want = litert.run(int8_model, x, raw=True)[0]
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


# ---------------------------------------------------------------------------------------------
# The accelerator paths, with injected lookups (the plumbing; no Edge TPU is exercised)
# ---------------------------------------------------------------------------------------------

class _FakePycoral:
    """Stands in for pycoral.utils.edgetpu: make_interpreter gives a LiteRT CPU interpreter of the
    uncompiled model, so the pycoral path's timing and labelling run end to end."""

    def __init__(self, plain):
        self.plain, self.calls = plain, []

    def make_interpreter(self, model_content):
        self.calls.append(len(model_content))
        return litert_interpreter.Interpreter(model_content=self.plain)


def test_pycoral_is_used_when_it_imports(int8_model, compiled_model):
    fake = _FakePycoral(int8_model)
    r = measure(compiled_model, accelerator=True, runs=5, usb=CORAL, find_libedgetpu=lambda name: name,
                import_pycoral=lambda: fake, libedgetpu_flavour=lambda: "max")
    _sane(r, 5)
    assert fake.calls == [len(compiled_model)]
    assert r["runtime"] == "pycoral" and r["mode"] == "measured"
    assert r["libedgetpu"] == "max" and r["tpu_clock_hz"] == 500_000_000
    assert r["usb"] == {"device": "usb:2-1", "role": "runtime", "speed_mbps": 5000, "id": "18d1:9302"}
    assert "parameters" in r["first_note"] and "warning" not in r
    assert r["compiled"] and r["edgetpu_ops"] == 1 and r["cpu_ops"] == []


def _lite_with_delegate(plain, seen):
    """A LiteRT module whose Interpreter records the delegate it is given and runs the plain model."""
    class Lite:
        __name__ = "ai_edge_litert.interpreter"

        @staticmethod
        def Interpreter(model_content, experimental_delegates=None, num_threads=None):
            seen.append(experimental_delegates)
            return litert_interpreter.Interpreter(model_content=plain, num_threads=num_threads)
    return Lite


def test_litert_with_libedgetpu_when_pycoral_is_missing(int8_model, compiled_model):
    seen, loads = [], []
    usb2 = Connection("coral", "usb", "usb:1-1.2", "runtime", "18d1", "9302", speed_mbps=480)
    r = measure(compiled_model, accelerator=True, runs=5, find_usb=lambda: usb2, find_libedgetpu=lambda name: name,
                import_pycoral=lambda: None, interpreter_module=lambda: _lite_with_delegate(int8_model, seen),
                load_delegate=lambda lib, opts: loads.append(lib) or "DELEGATE", libedgetpu_flavour=lambda: "std")
    assert r["runtime"] == "litert+libedgetpu"
    assert loads == [runner.delegate_library_name()] and seen == [["DELEGATE"]]
    assert r["libedgetpu"] == "std" and r["tpu_clock_hz"] == 250_000_000
    assert "USB 3 (blue) port" in r["warning"]  # found on a 480 Mb/s link


def test_a_broken_pycoral_falls_back_to_litert_with_a_note(int8_model, compiled_model):
    def broken():
        raise ImportError("numpy.core.multiarray failed to import")
    r = measure(compiled_model, accelerator=True, runs=3, usb=CORAL, find_libedgetpu=lambda name: name,
                import_pycoral=broken, interpreter_module=lambda: _lite_with_delegate(int8_model, []),
                load_delegate=lambda lib, opts: "DELEGATE", libedgetpu_flavour=lambda: None)
    assert r["runtime"] == "litert+libedgetpu" and r["libedgetpu"] is None
    assert "pycoral is installed but does not import" in r["note"]


def test_delegate_library_names():
    assert runner.delegate_library_name("Linux") == "libedgetpu.so.1"
    assert runner.delegate_library_name("Darwin") == "libedgetpu.1.dylib"
    assert runner.delegate_library_name("Windows") == "edgetpu.dll"


# ---------------------------------------------------------------------------------------------
# Errors: one line each, saying what to do
# ---------------------------------------------------------------------------------------------

def _one_line(e):
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_accelerator(compiled_model):
    with pytest.raises(EdgekitError) as e:
        measure(compiled_model, accelerator=True, find_usb=lambda: None,
                find_libedgetpu=lambda n: pytest.fail("looked for libedgetpu before the accelerator"))
    msg = _one_line(e)
    assert "1a6e:089a" in msg and "18d1:9302" in msg
    assert "plug the Coral USB Accelerator into a USB 3 (blue) port" in msg


def test_missing_libedgetpu_gives_the_install_commands(compiled_model):
    with pytest.raises(EdgekitError) as e:
        measure(compiled_model, accelerator=True, usb=CORAL, find_libedgetpu=lambda name: None,
                import_pycoral=lambda: pytest.fail("imported pycoral without libedgetpu"))
    msg = _one_line(e)
    assert "libedgetpu" in msg and "not installed" in msg
    assert ('echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | '
            "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list") in msg
    assert "https://packages.cloud.google.com/apt/doc/apt-key.gpg" in msg
    assert "sudo apt-get install libedgetpu1-std" in msg and "libedgetpu1-max" in msg
    assert "sudo apt-get install python3-pycoral" in msg


def test_the_real_libedgetpu_lookup_finds_nothing_here(compiled_model):
    """The default lookup (ctypes) on this machine, where libedgetpu is not installed."""
    if runner.find_libedgetpu(runner.delegate_library_name()):
        pytest.skip("libedgetpu is installed here")
    with pytest.raises(EdgekitError, match="coral-edgetpu-stable"):
        measure(compiled_model, accelerator=True, usb=CORAL)


@pytest.mark.skipif(sys.platform != "linux" or not ctypes.util.find_library("c"), reason="needs a Linux libc")
def test_delegate_load_failure_is_one_line(compiled_model):
    """A real LiteRT load_delegate() on a real library that is no TFLite delegate (libc)."""
    libc = ctypes.util.find_library("c")
    with pytest.raises(EdgekitError) as e:
        measure(compiled_model, accelerator=True, usb=CORAL, delegate_library=libc,
                find_libedgetpu=lambda name: name, import_pycoral=lambda: None, libedgetpu_flavour=lambda: None)
    msg = _one_line(e)
    assert "delegate failed to load" in msg and libc in msg and "replug" in msg


def test_pycoral_delegate_failure_is_one_line(compiled_model):
    class NoDevice:
        @staticmethod
        def make_interpreter(model):
            raise ValueError("Failed to load delegate from libedgetpu.so.1\n")
    with pytest.raises(EdgekitError) as e:
        measure(compiled_model, accelerator=True, usb=CORAL, find_libedgetpu=lambda n: n,
                import_pycoral=lambda: NoDevice, libedgetpu_flavour=lambda: "std")
    assert "Failed to load delegate from libedgetpu.so.1" in _one_line(e)


def test_uncompiled_model_on_the_accelerator(int8_model):
    with pytest.raises(EdgekitError) as e:
        measure(int8_model, accelerator=True, find_usb=lambda: CORAL)
    msg = _one_line(e)
    assert "not compiled for the Edge TPU" in msg and "edgetpu_compiler" in msg and "_edgetpu.tflite" in msg


def test_float_model_on_the_accelerator():
    from edgekit.export.tflite_writer import write_tflite
    with pytest.raises(EdgekitError) as e:
        measure(write_tflite(ir_models.cnn()), accelerator=True, usb=CORAL)
    msg = _one_line(e)
    assert "only fully 8-bit models" in msg and "edgekit convert" in msg


def test_compiled_model_on_the_cpu(compiled_model):
    with pytest.raises(EdgekitError) as e:
        measure(compiled_model, accelerator=False)
    assert "Edge TPU-compiled" in _one_line(e)
    with pytest.raises(EdgekitError, match="Edge TPU-compiled"):
        measure(compiled_model, accelerator=True, stand_in_cpu=True)


def test_bad_arguments(int8_model):
    with pytest.raises(EdgekitError, match="runs must be 1 or more"):
        measure(int8_model, accelerator=False, runs=0)
    with pytest.raises(EdgekitError, match="threads must be 1 or more"):
        measure(int8_model, accelerator=False, threads=0)
    with pytest.raises(EdgekitError, match="not a TFLite model|text file"):
        measure(b"hello, this is not a model", accelerator=False)


# ---------------------------------------------------------------------------------------------
# libedgetpu flavour from dpkg (a real subprocess: a fake dpkg-query on PATH)
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="a shell-script dpkg-query")
@pytest.mark.parametrize("installed, want", [("libedgetpu1-max ii \n", "max"),
                                             ("libedgetpu1-std ii \nlibedgetpu1-max un \n", "std"),
                                             ("libedgetpu1-std rc \n", None)])
def test_libedgetpu_flavour_from_dpkg(tmp_path, monkeypatch, installed, want):
    tool = tmp_path / "dpkg-query"
    tool.write_text(f"#!/bin/sh\nprintf '{installed}'\nexit 1\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert runner.libedgetpu_flavour() == want


# ---------------------------------------------------------------------------------------------
# profile_on_board: the report the measured Linux board and Coral backends return
# ---------------------------------------------------------------------------------------------

def test_profile_on_board_rpi4_is_a_standard_report(int8_model):
    from edgekit.profile_report import render_profile
    r = profile_on_board(int8_model, "rpi4", runs=5)
    assert r.target == "rpi4" and r.mode == "measured"
    assert r.latency_ms == r.extra["measured"]["latency_ms"] <= r.latency_ms_p90
    assert r.layers and r.extra["layers_source"] == "simulated" and r.extra["latency_ms_simulated"] > 0
    assert r.energy_mj == pytest.approx(6.4 * r.latency_ms)
    assert r.extra["runtime"] == "litert (CPU, XNNPACK, 4 threads)" and r.via is None
    d = r.to_json()
    assert "via" not in d and d["runtime"] == r.extra["runtime"] and d["measured"] == r.extra["measured"]
    json.dumps(d)  # --json prints it
    render_profile(r)


def test_profile_on_board_coral_stand_in_and_compiled(int8_model, compiled_model):
    from edgekit.profile_report import render_profile
    r = profile_on_board(int8_model, "coral", runs=5, stand_in_cpu=True)
    assert r.mode == "stand-in" and r.extra["measured"]["label"] == STAND_IN_LABEL
    render_profile(r)
    r = profile_on_board(compiled_model, "coral", runs=5, connection=CORAL, find_libedgetpu=lambda n: n,
                         import_pycoral=lambda: _FakePycoral(int8_model), libedgetpu_flavour=lambda: "std")
    assert r.mode == "measured" and r.layers == [] and r.extra["runtime"] == "pycoral"
    json.dumps(r.to_json())
    render_profile(r)
    with pytest.raises(EdgekitError, match="--sim"):
        profile_on_board(int8_model, "rpi4", duration_s=60)
