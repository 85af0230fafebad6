"""Firmware projects: generated sources (ops, model bytes, arena), atomic writing, and building and
flashing through arduino-cli / esptool, driven by fake tools on a temporary PATH (real subprocesses)."""
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

import ir_models
from edgekit.errors import EdgekitError
from edgekit.sketch import (OP_METHODS, Project, ToolMissing, arena_budget, build_and_flash,
                              generate_project, model_ops)
from edgekit.sketch.build import explain, telling_line, wait_for_sketch_port
from edgekit.sketch.generate import ALIGN, MARKER
from edgekit.runtime.tflm import run_tflm
from platforms import needs_tflm
from edgekit.sim.arena import plan_arena
from edgekit.sim.simulate import simulate
from edgekit.targets import load_board
from edgekit.tflite_file import builtin_name, read_model

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "data" / "tflm_stub"
GXX = shutil.which("g++")
ARM_GXX = shutil.which("arm-none-eabi-g++")
EXPECTED_OPS = {
    "cnn": {"CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"},
    "ds_block": {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "residual": {"CONV_2D", "ADD", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"},
}


@pytest.fixture(scope="module")
def models():
    return {name: ir_models.int8(getattr(ir_models, name)()) for name in ("cnn", "ds_block", "residual")}


@pytest.fixture
def fw_root(tmp_path):
    """A firmware/ tree shaped like the real one: the board sketches, one extra board source, a
    placeholder model_config.h the generated one must replace, and the protocol core."""
    root = tmp_path / "firmware"
    for key in ("nano33ble", "esp32s3"):
        d = root / key
        d.mkdir(parents=True)
        (d / f"{key}.ino").write_text(textwrap.dedent(f"""\
            // {key} sketch (test stand-in)
            #include "edgekit_protocol.h"
            #include "model_config.h"
            #include "model_data.h"
            #include "model_ops.h"
            void setup() {{}}
            void loop() {{}}
            """))
        (d / "model_config.h").write_text("#error placeholder: edgekit generates this file\n")
        (d / "board_pins.h").write_text(f"// pins of {key}\n")
        (d / "notes.txt").write_text("not a source file: not copied\n")
    (root / "common").mkdir()
    (root / "common" / "edgekit_protocol.h").write_text("#pragma once\nint edgekit_protocol_version();\n")
    (root / "common" / "edgekit_protocol.cpp").write_text(
        '#include "edgekit_protocol.h"\nint edgekit_protocol_version() { return 1; }\n')
    return root


def _gen(model, board, out, root, **kw):
    kw.setdefault("host_arena", plan_arena(model, "host", "reference").minimum)
    return generate_project(model, board, out, firmware_root=root, **kw)


def _listed_ops(project_dir: Path) -> tuple[int, list[str]]:
    """(EDGEKIT_OP_COUNT, the ops registered) parsed back from model_ops.h."""
    text = (project_dir / "model_ops.h").read_text()
    count = int(re.search(r"#define EDGEKIT_OP_COUNT (\d+)", text).group(1))
    by_method = {m: op for op, m in OP_METHODS.items()}
    body = re.search(r"edgekit_register_ops\([^)]*\) \{(.*?)\n\}", text, re.S).group(1)
    return count, [by_method[m] for m in re.findall(r"r\.(Add\w+)\(\);", body)]


def _model_ops_independently(model: bytes) -> set[str]:
    m = read_model(model)
    return {builtin_name(m, op.opcodeIndex) for sg in m.subgraphs for op in sg.operators}


# ---------------------------------------------------------------------------------------------
# Generated sources
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cnn", "ds_block", "residual"])
def test_model_ops_registers_exactly_the_models_ops(models, fw_root, tmp_path, name):
    p = _gen(models[name], "nano33ble", tmp_path / name, fw_root)
    count, listed = _listed_ops(p.path)
    assert set(listed) == EXPECTED_OPS[name] == _model_ops_independently(models[name])
    assert len(listed) == len(set(listed)) == count == len(EXPECTED_OPS[name])
    assert p.ops == listed and model_ops(models[name]) == listed  # first-use order


def test_model_data_round_trips_to_the_exact_bytes(models, fw_root, tmp_path):
    model = models["cnn"]
    p = _gen(model, "esp32s3", tmp_path / "cnn_esp", fw_root)
    cc = (p.path / "model_data.cc").read_text()
    h = (p.path / "model_data.h").read_text()
    rows = re.search(r"g_model\[\] = \{\n(.*?)\n\};", cc, re.S).group(1).splitlines()
    data = bytes(int(x, 16) for row in rows for x in re.findall(r"0x([0-9a-f]{2})", row))
    assert data == model
    assert all(len(re.findall("0x", r)) == 12 for r in rows[:-1]) and 1 <= len(re.findall("0x", rows[-1])) <= 12
    assert f"const unsigned int g_model_len = {len(model)};" in cc
    assert "alignas(16) const unsigned char g_model[] = {" in cc
    assert "alignas(16) extern const unsigned char g_model[];" in h
    assert "extern const unsigned int g_model_len;" in h
    sha = hashlib.sha256(model).hexdigest()
    assert f"sha256 {sha}" in cc and p.model_sha256 == sha
    assert f'#define EDGEKIT_MODEL_SHA256 "{sha}"' in (p.path / "model_config.h").read_text()


def _config_value(project_dir: Path, name: str) -> str | None:
    m = re.search(rf"^#define {name} (.+)$", (project_dir / "model_config.h").read_text(), re.M)
    return m.group(1) if m else None


@pytest.mark.parametrize("board, lib", [("nano33ble", "cmsis-nn-dsp"), ("esp32s3", "esp-nn-1.2")])
def test_arena_is_measured_plus_kernel_scratch_plus_margin(models, fw_root, tmp_path, board, lib):
    model = models["ds_block"]
    b = load_board(board)
    host = 6_320  # what TFLite Micro measures for ds_block on x86-64 (given, as a caller would)
    scratch = max(plan_arena(model, b.arch, lib).minimum - plan_arena(model, b.arch, "reference").minimum, 0)
    margin = b.num("memory.arena_margin_bytes")
    want = -(-(host + scratch + margin) // 16) * 16
    p = _gen(model, board, tmp_path / board, fw_root, host_arena=host)
    a = p.arena
    assert (a.host_bytes, a.scratch_bytes, a.margin_bytes, a.total_bytes) == (host, scratch, margin, want)
    assert want % ALIGN == 0 and want >= host + scratch + margin
    assert _config_value(p.path, "EDGEKIT_ARENA_BYTES") == str(want)
    # the simulator plans the same arena as the firmware allocates (one memory rule)
    assert simulate(model, board, host_arena=host).arena_bytes == want
    config = (p.path / "model_config.h").read_text()
    # each term is stated with its number and its source
    for number in (host, scratch, margin, want):
        assert f"{number:,} B" in config
    assert "host_arena" in config and lib in config and f"memory.arena_margin_bytes in {board}.toml" in config
    # the margin's source is in the config's comments (wrapped over lines): compare the words
    words = " ".join(config.replace("//", " ").split())
    assert " ".join(b.source("memory.arena_margin_bytes").split()) in words
    assert _config_value(p.path, "EDGEKIT_BOARD") == f'"{board}"'
    assert _config_value(p.path, "EDGEKIT_CLOCK_HZ") == f"{int(b.clock_hz)}UL"
    assert re.fullmatch(r'"\d+\.\d+\.\d+.*"', _config_value(p.path, "EDGEKIT_FIRMWARE_VERSION"))


@needs_tflm
def test_host_term_is_tflite_micros_own_measurement(models):
    model = models["residual"]
    a, plan = arena_budget(model, "nano33ble")
    assert plan.arena_bytes == a.total_bytes and plan.parts["arena_host_bytes"] == a.host_bytes
    x = read_model(model)
    sg = x.subgraphs[0]
    import numpy as np
    shape = (1,) + tuple(int(d) for d in sg.tensors[sg.inputs[0]].shape[1:])
    assert a.host_bytes == run_tflm(model, [np.zeros(shape, np.int8)]).arena_bytes
    assert a.host_source.startswith("measured: TFLite Micro")


def test_esp32s3_arena_goes_to_psram_only_when_sram_cannot_hold_it(models, fw_root, tmp_path):
    small = _gen(models["cnn"], "esp32s3", tmp_path / "small", fw_root)
    assert not small.arena.in_psram and _config_value(small.path, "EDGEKIT_ARENA_IN_PSRAM") is None
    big_model = ir_models.int8(ir_models.big_activations())
    big = _gen(big_model, "esp32s3", tmp_path / "big", fw_root)
    b = load_board("esp32s3")
    assert big.arena.total_bytes + b.num("memory.runtime_ram_bytes") > b.num("memory.data_ram_max_bytes")
    assert big.arena.in_psram and _config_value(big.path, "EDGEKIT_ARENA_IN_PSRAM") == "1"
    assert "memory.data_ram_max_bytes" in (big.path / "model_config.h").read_text()
    # the Nano has no PSRAM: the same model is refused before anything is written
    with pytest.raises(EdgekitError, match=r"exceed .*RAM by [\d,]+ B.*esp32s3") as e:
        _gen(big_model, "nano33ble", tmp_path / "big_nano", fw_root)
    assert "\n" not in str(e.value) and not (tmp_path / "big_nano").exists()


def test_an_op_tflite_micro_lacks_is_named(fw_root, tmp_path):
    from tflite_builders import OP, float_with
    with pytest.raises(EdgekitError, match=r"uses GELU, which TensorFlow Lite Micro's op resolver cannot"):
        generate_project(float_with(OP.GELU), "nano33ble", tmp_path / "gelu", firmware_root=fw_root)
    assert not (tmp_path / "gelu").exists() and list(tmp_path.iterdir()) == [fw_root]


def _compile(compiler: str, args: list[str], cwd: Path):
    proc = subprocess.run([compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


CHECK_TU = """\
#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
static_assert(EDGEKIT_ARENA_BYTES % 16 == 0, "arena is a multiple of 16");
static_assert(EDGEKIT_ARENA_BYTES > 0 && EDGEKIT_CLOCK_HZ > 0, "sizes");
static_assert(__alignof__(g_model) == 16, "the declaration carries the 16-byte alignment");
static_assert(sizeof(EDGEKIT_MODEL_SHA256) == 65 && sizeof(EDGEKIT_BOARD) > 1, "strings");
alignas(16) unsigned char tensor_arena[EDGEKIT_ARENA_BYTES];
void edgekit_setup_check() {
  static tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT> resolver;
  edgekit_register_ops(resolver);
}
"""
DEF_TU = '#include "model_data.cc"\nstatic_assert(__alignof__(g_model) >= 16, "the definition is 16-byte aligned");\n'


@pytest.mark.skipif(GXX is None, reason="needs a host g++")
@pytest.mark.parametrize("name, board", [("cnn", "nano33ble"), ("ds_block", "esp32s3"), ("residual", "nano33ble")])
def test_generated_sources_compile_against_tflms_names(models, fw_root, tmp_path, name, board):
    p = _gen(models[name], board, tmp_path / f"{name}_{board}", fw_root)
    (tmp_path / "check.cpp").write_text(CHECK_TU)
    (tmp_path / "def_check.cpp").write_text(DEF_TU)
    inc = ["-I", str(p.path), "-I", str(STUB)]
    _compile(GXX, ["-pedantic", "-fsyntax-only", *inc, str(tmp_path / "check.cpp")], tmp_path)
    _compile(GXX, ["-pedantic", "-fsyntax-only", *inc, str(tmp_path / "def_check.cpp")], tmp_path)
    _compile(GXX, ["-c", "model_data.cc", "-o", str(tmp_path / "model_data.o")], p.path)
    if ARM_GXX and board == "nano33ble":  # the Nano's compiler family, where CI has it
        cortex = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
        _compile(ARM_GXX, [*cortex, "-fsyntax-only", *inc, str(tmp_path / "check.cpp")], tmp_path)
        _compile(ARM_GXX, [*cortex, "-c", "model_data.cc", "-o", str(tmp_path / "m.o")], p.path)


@pytest.mark.skipif(GXX is None, reason="needs a host g++")
def test_every_method_edgekit_can_generate_exists_in_tflm(tmp_path):
    # the stub is transcribed from TFLM's header by hand: a misspelt OP_METHODS entry fails here
    calls = "\n".join(f"  r.{m}();" for m in sorted(set(OP_METHODS.values())))
    tu = tmp_path / "all.cpp"
    tu.write_text('#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
                  f"void all(tflite::MicroMutableOpResolver<{len(OP_METHODS)}>& r) {{\n{calls}\n}}\n")
    _compile(GXX, ["-fsyntax-only", "-I", str(STUB), str(tu)], tmp_path)
    tu.write_text('#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
                  "void bad(tflite::MicroMutableOpResolver<1>& r) { r.AddConv(); }\n")
    proc = subprocess.run([GXX, "-fsyntax-only", "-I", str(STUB), str(tu)], capture_output=True, text=True)
    assert proc.returncode != 0 and "AddConv" in proc.stderr


# ---------------------------------------------------------------------------------------------
# The project folder
# ---------------------------------------------------------------------------------------------

def test_project_folder_is_a_valid_sketch_with_build_instructions(models, fw_root, tmp_path):
    out = tmp_path / "sketches" / "kws_s3"
    p = _gen(models["ds_block"], "esp32s3", out, fw_root)
    names = {f.name for f in out.iterdir()}
    assert {"kws_s3.ino", "edgekit_protocol.h", "edgekit_protocol.cpp", "board_pins.h", "model_data.h",
            "model_data.cc", "model_ops.h", "model_config.h", "README.txt", MARKER} == names
    assert "esp32s3.ino" not in names and "notes.txt" not in names
    assert (out / "kws_s3.ino").read_text() == (fw_root / "esp32s3" / "esp32s3.ino").read_text()
    assert "#error placeholder" not in (out / "model_config.h").read_text()
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # an ordinary folder, not mkdtemp's 0700
    readme = (out / "README.txt").read_text()
    assert (f"arduino-cli compile --fqbn esp32:esp32:XIAO_ESP32S3 --board-options PSRAM=opi "
            f"--output-dir {out}/build {out}") in readme
    assert (f"arduino-cli upload -p <port> --fqbn esp32:esp32:XIAO_ESP32S3 --board-options PSRAM=opi "
            f"--input-dir {out}/build {out}") in readme
    assert f"esptool.py --chip esp32s3 --port <port> write_flash 0x0 {out}/build/kws_s3.ino.merged.bin" in readme
    assert "arduino-cli core install esp32:esp32" in readme and "lib install" not in readme  # TFLM comes with the core
    loaded = Project.load(out)
    assert loaded.to_dict() == p.to_dict() and loaded.sketch == out / "kws_s3.ino"


def test_nano_readme_names_its_core_and_the_port_change(models, fw_root, tmp_path):
    out = tmp_path / "digits"
    _gen(models["cnn"], "nano33ble", out, fw_root)
    readme = (out / "README.txt").read_text()
    assert f"arduino-cli compile --fqbn arduino:mbed_nano:nano33ble --output-dir {out}/build {out}" in readme
    assert "arduino-cli core install arduino:mbed_nano" in readme and "esptool" not in readme
    assert "arduino-cli lib install Chirale_TensorFLowLite" in readme
    assert "bootloader" in readme and "--board-options" not in readme


def test_writing_is_atomic(models, fw_root, tmp_path, monkeypatch):
    out = tmp_path / "proj"
    real_copy, calls = shutil.copyfile, []

    def disk_full_on_second_copy(src, dst, *a, **k):
        calls.append(src)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copyfile", disk_full_on_second_copy)
    with pytest.raises(EdgekitError, match=r"could not write the project at .*proj: No space left on device;"
                                          r" nothing was changed"):
        _gen(models["cnn"], "nano33ble", out, fw_root)
    assert not out.exists() and sorted(tmp_path.iterdir()) == [fw_root]  # no half project, no temp folder

    monkeypatch.setattr(shutil, "copyfile", real_copy)
    first = _gen(models["cnn"], "nano33ble", out, fw_root)
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    calls.clear()
    monkeypatch.setattr(shutil, "copyfile", disk_full_on_second_copy)
    with pytest.raises(EdgekitError, match="No space left"):
        _gen(models["residual"], "nano33ble", out, fw_root)
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before  # the earlier project, untouched
    assert sorted(tmp_path.iterdir()) == [fw_root, out]

    monkeypatch.setattr(shutil, "copyfile", real_copy)
    second = _gen(models["residual"], "nano33ble", out, fw_root)  # regenerating replaces it whole
    assert second.model_sha256 != first.model_sha256
    assert Project.load(out).model_sha256 == second.model_sha256
    assert sorted(tmp_path.iterdir()) == [fw_root, out]


def test_refuses_to_overwrite_a_folder_that_is_not_a_project(models, fw_root, tmp_path):
    out = tmp_path / "mywork"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(EdgekitError, match="exists and is not an edgekit project"):
        _gen(models["cnn"], "nano33ble", out, fw_root)
    assert (out / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _gen(models["cnn"], "nano33ble", empty, fw_root).sketch == empty / "empty.ino"


@pytest.mark.parametrize("name", ["my project", "-dash", "ünïcode", "x" * 64])
def test_sketch_folder_names_follow_arduinos_rule(models, fw_root, tmp_path, name):
    with pytest.raises(EdgekitError, match="cannot name an Arduino sketch folder"):
        _gen(models["cnn"], "nano33ble", tmp_path / name, fw_root)


def test_missing_firmware_sources_and_wrong_boards_are_one_line(models, fw_root, tmp_path):
    (fw_root / "common" / "edgekit_protocol.cpp").unlink()
    with pytest.raises(EdgekitError, match=r"edgekit_protocol.cpp is missing; reinstall edgekit"):
        _gen(models["cnn"], "nano33ble", tmp_path / "p", fw_root)
    with pytest.raises(EdgekitError, match="not a TFLite Micro board"):
        _gen(models["cnn"], "coral", tmp_path / "p", fw_root)
    with pytest.raises(EdgekitError, match="unknown target"):
        _gen(models["cnn"], "uno", tmp_path / "p", fw_root)


def test_the_real_firmware_tree_makes_a_project(models, tmp_path):
    for board in ("nano33ble", "esp32s3"):
        p = generate_project(models["cnn"], board, tmp_path / f"real_{board}",
                             host_arena=plan_arena(models["cnn"]).minimum)
        assert p.sketch.read_text() == (ROOT / "firmware" / board / f"{board}.ino").read_text()
        common = {f.name for f in (ROOT / "firmware" / "common").iterdir() if f.suffix in (".h", ".cpp")}
        assert common <= set(p.files) and "library.properties" not in p.files
        # every generated name the sketch includes is there
        for name in re.findall(r'#include "([^"]+)"', p.sketch.read_text()):
            if not name.startswith("tensorflow/"):
                assert (p.path / name).is_file(), name


# ---------------------------------------------------------------------------------------------
# Building and flashing, with fake tools on PATH
# ---------------------------------------------------------------------------------------------

FAKE_TOOL = """\
#!{python}
# A stand-in for {name}: logs its argv, then behaves as the test asks (FAKE_MODE_{env}).
import json, os, sys
with open({log!r}, "a") as f:
    f.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
args = sys.argv[1:]
mode = os.environ.get("FAKE_MODE_{env}", "ok")
if mode == "ok":
    if args[:1] == ["compile"]:
        out = args[args.index("--output-dir") + 1]
        os.makedirs(out, exist_ok=True)
        name = os.path.basename(os.path.normpath(args[-1]))
        if ":esp32:" in args[args.index("--fqbn") + 1]:
            open(os.path.join(out, name + ".ino.merged.bin"), "wb").write(b"\\xe9" * 64)
        print("Sketch uses 165360 bytes (16%) of program storage space. Maximum is 983040 bytes.")
        print("Global variables use 63176 bytes (24%) of dynamic memory, leaving 198968 bytes for local "
              "variables. Maximum is 262144 bytes.")
    sys.exit(0)
sys.stderr.write(open(os.environ["FAKE_OUTPUT_{env}"]).read())
sys.exit(1)
"""

COMPILE_ERROR = """\
FQBN: arduino:mbed_nano:nano33ble
Using board 'nano33ble' from platform in folder: /home/s/.arduino15/packages/arduino/hardware/mbed_nano/4.1.5
Detecting libraries used...
In file included from /tmp/arduino/sketches/8F3A/sketch/digits.ino.cpp:5:
/home/s/digits/model_ops.h: In function 'void edgekit_register_ops(tflite::MicroMutableOpResolver<6>&)':
/home/s/digits/model_ops.h:17:5: error: 'class tflite::MicroMutableOpResolver<6>' has no member named 'AddBatchMatMul'; did you mean 'AddBatchToSpaceNd'?
   17 |   r.AddBatchMatMul();  // BATCH_MATMUL
      |     ^~~~~~~~~~~~~~
      |     AddBatchToSpaceNd
/home/s/digits/model_ops.h:18:5: error: 'r' was not declared in this scope
Used library            Version     Path
Arduino_TensorFlowLite  2.4.0-ALPHA /home/s/Arduino/libraries/Arduino_TensorFlowLite
Used platform Version Path
arduino:mbed_nano 4.1.5   /home/s/.arduino15/packages/arduino/hardware/mbed_nano/4.1.5
Error during build: exit status 1
"""

MISSING_LIBRARY = """\
/home/s/digits/digits.ino:31:10: fatal error: Chirale_TensorFlowLite.h: No such file or directory
   31 | #include <Chirale_TensorFlowLite.h>
      |          ^~~~~~~~~~~~~~~~~~~~~~~~~~
compilation terminated.
Error during build: exit status 1
"""

NO_DEVICE = """\
No device found on ttyACM0
Failed uploading: uploading error: exit status 1
"""


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A temporary PATH holding fake arduino-cli and esptool.py; returns (bin dir, argv log reader)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir()
    for name, env in (("arduino-cli", "CLI"), ("esptool.py", "ESPTOOL")):
        exe = bin_dir / name
        exe.write_text(FAKE_TOOL.format(python=sys.executable, name=name, env=env, log=str(log)))
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))

    def calls():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
    return bin_dir, calls


def _port(device, vid, pid):
    return SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=None, description="")


NANO_SKETCH, NANO_BOOT = (0x2341, 0x805A), (0x2341, 0x005A)
S3_JTAG = (0x303A, 0x1001)


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s


def _ports_sequence(*snapshots):
    """list_ports(): each call returns the next snapshot; the last one repeats."""
    seq = list(snapshots)

    def list_ports():
        return seq.pop(0) if len(seq) > 1 else seq[0]
    return list_ports


@pytest.fixture
def nano_project(models, fw_root, tmp_path):
    return _gen(models["cnn"], "nano33ble", tmp_path / "digits", fw_root)


def test_without_arduino_cli_the_message_has_the_folder_and_commands(nano_project, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(ToolMissing) as e:
        build_and_flash(nano_project, "nano33ble")
    msg, d = str(e.value), nano_project.path
    assert "\n" not in msg
    assert msg.startswith(f"arduino-cli is not installed (not on PATH); the project folder was written at {d}")
    assert f"`arduino-cli compile --fqbn arduino:mbed_nano:nano33ble --output-dir {d}/build {d}`" in msg
    assert f"`arduino-cli upload -p <port> --fqbn arduino:mbed_nano:nano33ble --input-dir {d}/build {d}`" in msg
    assert "install.sh" in msg and "edgekit doctor" in msg
    assert e.value.tool == "arduino-cli" and len(e.value.commands) == 3


def test_nano_compile_upload_and_port_refound_after_reenumeration(nano_project, fake_bin):
    _, calls = fake_bin
    t, said = FakeTime(), []
    ports = _ports_sequence(
        [_port("/dev/ttyACM0", *NANO_SKETCH)],       # found before the upload
        [],                                           # gone: the board resets
        [_port("/dev/ttyACM0", *NANO_BOOT)],          # its bootloader
        [_port("/dev/ttyACM1", *NANO_SKETCH)])        # the sketch, on a new port
    r = build_and_flash(nano_project, "nano33ble", progress=said.append, list_ports=ports,
                        sleep=t.sleep, clock=t.clock)
    d = str(nano_project.path)
    assert calls() == [
        ["arduino-cli", "compile", "--fqbn", "arduino:mbed_nano:nano33ble", "--output-dir", f"{d}/build", d],
        ["arduino-cli", "upload", "-p", "/dev/ttyACM0", "--fqbn", "arduino:mbed_nano:nano33ble",
         "--input-dir", f"{d}/build", d]]
    assert r.port == "/dev/ttyACM1" and r.uploaded_with == "arduino-cli"
    assert (r.flash_used, r.ram_used) == (165360, 63176)
    assert 0 < t.now <= 10 and any("uploading to /dev/ttyACM0" in m for m in said)


def test_the_board_never_coming_back_is_one_line(nano_project, fake_bin):
    t = FakeTime()
    ports = _ports_sequence([_port("/dev/ttyACM0", *NANO_SKETCH)], [_port("/dev/ttyACM0", *NANO_BOOT)])
    with pytest.raises(EdgekitError, match=r"upload to /dev/ttyACM0 succeeded but .* did not come back as a "
                                           r"sketch port within 10 s; press its reset button"):
        build_and_flash(nano_project, "nano33ble", list_ports=ports, sleep=t.sleep, clock=t.clock)
    assert 10 <= t.now < 11


def test_no_board_plugged_in(nano_project, fake_bin):
    with pytest.raises(EdgekitError, match=r"no Arduino Nano 33 BLE.* found on a USB port \(USB IDs 2341:805a, "
                                           r"2341:005a\).*the firmware was built in"):
        build_and_flash(nano_project, "nano33ble", list_ports=lambda: [])
    _, calls = fake_bin
    assert [c[1] for c in calls()] == ["compile"]


def test_esp32s3_flashes_the_merged_image_with_esptool(models, fw_root, tmp_path, fake_bin):
    _, calls = fake_bin
    p = _gen(models["ds_block"], "esp32s3", tmp_path / "kws", fw_root)
    t = FakeTime()
    r = build_and_flash(p, "esp32s3", port="/dev/ttyACM3", sleep=t.sleep, clock=t.clock,
                        list_ports=lambda: [_port("/dev/ttyACM3", *S3_JTAG)])
    d = str(p.path)
    image = f"{d}/build/kws.ino.merged.bin"
    assert calls() == [
        ["arduino-cli", "compile", "--fqbn", "esp32:esp32:XIAO_ESP32S3", "--board-options", "PSRAM=opi",
         "--output-dir", f"{d}/build", d],
        ["esptool.py", "--chip", "esp32s3", "--port", "/dev/ttyACM3", "write_flash", "0x0", image]]
    assert r.uploaded_with == "esptool" and str(r.image) == image and r.port == "/dev/ttyACM3"


def test_esp32s3_without_esptool_uploads_with_arduino_cli(models, fw_root, tmp_path, fake_bin):
    bin_dir, calls = fake_bin
    (bin_dir / "esptool.py").unlink()
    p = _gen(models["cnn"], "esp32s3", tmp_path / "cnn", fw_root)
    r = build_and_flash(p, "esp32s3", port="/dev/ttyACM0", list_ports=lambda: [_port("/dev/ttyACM0", *S3_JTAG)])
    assert calls()[1] == ["arduino-cli", "upload", "-p", "/dev/ttyACM0", "--fqbn", "esp32:esp32:XIAO_ESP32S3",
                          "--board-options", "PSRAM=opi", "--input-dir", f"{p.path}/build", str(p.path)]
    assert r.uploaded_with == "arduino-cli"


def test_compile_only(nano_project, fake_bin):
    _, calls = fake_bin
    r = build_and_flash(nano_project, upload=False)
    assert r.port is None and r.uploaded_with == "" and [c[1] for c in calls()] == ["compile"]


@pytest.mark.parametrize("output, step, want", [
    (COMPILE_ERROR, "compile", r"arduino-cli compile failed \(exit 1\): model_ops.h:17:5: error: 'class "
                               r"tflite::MicroMutableOpResolver<6>' has no member named 'AddBatchMatMul'"),
    (MISSING_LIBRARY, "compile", r"arduino-cli compile failed \(exit 1\): digits.ino:31:10: fatal error: "
                                 r"Chirale_TensorFlowLite.h: No such file or directory; the TFLite Micro Arduino library "
                                 r"is not installed .*edgekit doctor"),
    (NO_DEVICE, "upload", r"arduino-cli upload to /dev/ttyACM0 failed \(exit 1\): No device found on ttyACM0; "
                          r"the board was not on that port"),
])
def test_tool_failures_are_one_line_with_the_telling_error(nano_project, fake_bin, tmp_path, monkeypatch,
                                                           output, step, want):
    (tmp_path / "out.txt").write_text(output)
    monkeypatch.setenv("FAKE_OUTPUT_CLI", str(tmp_path / "out.txt"))
    if step == "compile":
        monkeypatch.setenv("FAKE_MODE_CLI", "fail")
    else:  # compile passes, the upload fails
        bin_dir, _ = fake_bin
        exe = bin_dir / "arduino-cli"
        exe.write_text(exe.read_text().replace('mode = os.environ.get("FAKE_MODE_CLI", "ok")',
                                               'mode = "ok" if args[:1] == ["compile"] else "fail"'))
    with pytest.raises(EdgekitError, match=want) as e:
        build_and_flash(nano_project, "nano33ble", port="/dev/ttyACM0", list_ports=lambda: [])
    assert "\n" not in str(e.value)


def test_telling_lines_and_hints():
    assert explain("E (1234) MicroInterpreter: Didn't find op for builtin opcode 'MEAN' version '1'") \
        .startswith("the op resolver misses an op the model uses")
    assert "dialout" in explain("could not open port '/dev/ttyACM0': [Errno 13] Permission denied")
    assert "download mode" in explain("A fatal error occurred: Failed to connect to ESP32-S3: No serial data "
                                      "received.")
    assert "RAM" in explain("region `RAM' overflowed by 81234 bytes")
    assert telling_line("compiling...\nSketch uses 1 bytes\nError during build: exit status 1\n") \
        == "compiling..."
    assert telling_line("") == "no output"


def test_wait_for_sketch_port_accepts_the_sketch_role_only():
    board, t = load_board("nano33ble"), FakeTime()
    conn = wait_for_sketch_port(board, _ports_sequence([_port("/dev/ttyACM0", *NANO_BOOT)],
                                                       [_port("/dev/ttyACM2", *NANO_SKETCH)]),
                                sleep=t.sleep, clock=t.clock)
    assert conn.device == "/dev/ttyACM2" and conn.role == "sketch" and t.now == 0.25


def test_build_refuses_a_project_for_another_board(nano_project, fake_bin):
    with pytest.raises(EdgekitError, match="generated for nano33ble, not esp32s3"):
        build_and_flash(nano_project, "esp32s3")
    assert build_and_flash(str(nano_project.path), upload=False).project == nano_project.path
