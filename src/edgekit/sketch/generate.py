"""A model as a ready-to-build Arduino sketch folder for one board.

`generate_project(model, "nano33ble", "out/digits")` writes out/digits/ with

- digits.ino                    the board's sketch (firmware/<board>/<board>.ino, renamed: Arduino
                                wants folder X to hold X.ino), plus any other sources beside it;
- edgekit_protocol.h/.cpp       the serial protocol core (firmware/common/);
- model_data.h / model_data.cc  `alignas(16) const unsigned char g_model[]`, `g_model_len`;
- model_ops.h                   `EDGEKIT_OP_COUNT` and `edgekit_register_ops(resolver)`, which
                                registers exactly the model's distinct builtin ops;
- model_config.h                arena size (with its derivation), model sha256, board, clock;
- README.txt                    the exact arduino-cli (and esptool) commands to build and upload.

The folder appears whole or not at all: everything is written to a temporary folder beside it and
renamed into place; a folder holding an earlier edgekit project is replaced the same way.

The arena (`arena_budget`):
    EDGEKIT_ARENA_BYTES = round_up_16( host + scratch + margin )
    host    = TFLite Micro's exact minimum arena measured on this machine (run_tflm), or edgekit's
              planner replaying TFLM's allocator for x86-64 where the tflite-micro wheel does not run;
    scratch = what the board's optimized kernels ask for beyond TFLM's reference kernels, both
              planned for the board's CPU: plan_arena(arch, kernels) - plan_arena(arch, reference)
              (CMSIS-NN on the Nano, ESP-NN on the ESP32-S3; never below 0);
    margin  = memory.arena_margin_bytes of the board descriptor (targets/<board>.toml, with its source).
On the ESP32-S3 the arena goes to PSRAM (EDGEKIT_ARENA_IN_PSRAM) when it and the runtime's RAM
(memory.runtime_ram_bytes) do not fit the data RAM the linker offers a sketch (memory.data_ram_max_bytes).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgekitError
from ..runtime.tflm import run_tflm, tflm_available
from ..sim.arena import kernel_library, plan_arena
from ..sim.memory import MemoryPlan, plan_memory
from ..targets import Board, load_board
from ..tflite_file import TFLiteModel, builtin_name, model_of
from ..version import __version__
from .build import build_commands, setup_commands
from .project import MARKER, ArenaBudget, Project
from .tools import board_tools

ALIGN = 16                     # TFLM aligns the arena and every buffer in it to 16 bytes
BYTES_PER_LINE = 12            # model_data.cc: 12 bytes per line, as xxd -i
GENERATED = ("model_data.h", "model_data.cc", "model_ops.h", "model_config.h", "README.txt")
SOURCE_EXTS = (".ino", ".h", ".hpp", ".hh", ".c", ".cpp", ".cc", ".cxx", ".S")
# Arduino sketch specification: letters/digits first, then letters, digits, _ . -; at most 63.
SKETCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# BuiltinOperator name -> tflite::MicroMutableOpResolver method (tflite-micro
# tensorflow/lite/micro/micro_mutable_op_resolver.h, 2025). Custom ops TFLM ships as "CUSTOM(name)".
# Older TFLM snapshots in Arduino libraries lack the newest (BATCH_MATMUL, REVERSE_V2, REDUCE_MIN,
# EMBEDDING_LOOKUP, ...): such a build fails with "has no member named 'Add...'".
OP_METHODS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax", "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum", "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad",
    "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth", "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt", "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum",
    "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
    "CUSTOM(TFLite_Detection_PostProcess)": "AddDetectionPostprocess",
    "CUSTOM(CIRCULAR_BUFFER)": "AddCircularBuffer",
}

# ---------------------------------------------------------------------------------------------
# Where the sketches are
# ---------------------------------------------------------------------------------------------

def firmware_dir() -> Path:
    """The folder holding <board>/<board>.ino and common/edgekit_protocol.{h,cpp}.

    $EDGEKIT_FIRMWARE_DIR if set; else the installed data package `edgekit.firmware`
    (a wheel that ships firmware/); else firmware/ in the source checkout this module comes from.
    """
    env = os.environ.get("EDGEKIT_FIRMWARE_DIR")
    if env:
        if not Path(env).is_dir():
            raise EdgekitError(f"EDGEKIT_FIRMWARE_DIR={env} is not a folder; point it at edgekit's "
                               "firmware/ folder or unset it")
        return Path(env)
    try:
        import importlib
        pkg = importlib.import_module("edgekit.firmware")
        for entry in getattr(pkg, "__path__", []):
            if (Path(entry) / "common").is_dir():
                return Path(entry)
    except ImportError:
        pass
    return Path(__file__).resolve().parents[3] / "firmware"


def _sources(board_key: str, root: Path) -> tuple[Path, list[Path], list[Path]]:
    """(the board's main .ino, the board folder's other sources, the common sources)."""
    board_dir, common = root / board_key, root / "common"
    main = board_dir / f"{board_key}.ino"
    needed = [main, common / "edgekit_protocol.h", common / "edgekit_protocol.cpp"]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise EdgekitError(f"edgekit's firmware sources are incomplete: {missing[0]} is missing; "
                           "reinstall edgekit (pip install --force-reinstall edgekit) or set "
                           "EDGEKIT_FIRMWARE_DIR to a firmware/ checkout")
    extra = sorted(p for p in board_dir.iterdir()
                   if p != main and p.is_file() and p.suffix in SOURCE_EXTS and p.name not in GENERATED)
    common_files = sorted(p for p in common.iterdir() if p.is_file() and p.suffix in SOURCE_EXTS)
    return main, extra, common_files


# ---------------------------------------------------------------------------------------------
# What the model needs: ops and arena
# ---------------------------------------------------------------------------------------------

def model_ops(model: TFLiteModel | bytes) -> list[str]:
    """The model's distinct ops (builtin names, custom ones as 'CUSTOM(name)'), in first-use order,
    over every subgraph (TFLM resolves the ops of IF/WHILE bodies too)."""
    m = model_of(model).parsed
    ops: list[str] = []
    for sg in m.subgraphs:
        for op in sg.operators or []:
            name = builtin_name(m, op.opcodeIndex)
            if name not in ops:
                ops.append(name)
    return ops


def resolver_methods(ops: list[str]) -> list[str]:
    """The MicroMutableOpResolver method for each op; EdgekitError naming the first op TFLM lacks."""
    if not ops:
        raise EdgekitError("the model has no ops; export it again with its layers")
    methods = []
    for name in ops:
        method = OP_METHODS.get(name)
        if method is None:
            raise EdgekitError(f"the model uses {name}, which TensorFlow Lite Micro's op resolver cannot "
                               "register (no TFLM kernel); replace that layer with supported ops "
                               "(e.g. RELU/RELU6, CONV_2D, FULLY_CONNECTED) and convert again")
        methods.append(method)
    return methods


def _seeded_inputs(model: TFLiteModel) -> list[np.ndarray]:
    """One seeded random sample per model input, of its type and shape."""
    rng = np.random.default_rng(0)
    out = []
    for full, dtype in model.inputs:
        shape = (1,) + full[1:]
        if dtype.kind in "iu":
            out.append(rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, shape).astype(dtype))
        else:
            out.append(rng.standard_normal(shape).astype(dtype))
    return out


def _host_arena(model: TFLiteModel) -> tuple[int, str]:
    ok, why = tflm_available()
    if ok:
        # TFLM refusing the model here means the board's TFLM refuses it too: that error stands.
        measured = run_tflm(model, _seeded_inputs(model)).arena_bytes
        return measured, ("measured: TFLite Micro on this machine (tflite-micro wheel, x86-64), "
                          "exact minimum arena_size that loads and invokes the model (run_tflm)")
    planned = plan_arena(model, "host", "reference").minimum
    return planned, (f"planned: edgekit's replay of TFLM's allocator for x86-64 (plan_arena host/reference), "
                     f"since TFLite Micro cannot run here ({why})")


def arena_budget(model: TFLiteModel | bytes, board, host_arena: int | None = None) -> tuple[ArenaBudget, MemoryPlan]:
    """The arena the firmware allocates for `model` on `board` (a Board or its key), and the memory
    plan it comes from (edgekit.sim.memory: the one rule the simulator uses too); see the module doc."""
    model = model_of(model)
    b = load_board(board) if isinstance(board, str) else board
    if host_arena is not None:
        host, host_source = int(host_arena), "given by the caller (host_arena: TFLite Micro's measured arena)"
    else:
        host, host_source = _host_arena(model)
    plan = plan_memory(model, b, host)
    scratch = plan.parts["kernel_scratch_bytes"]
    lib = kernel_library(b.kernels)
    if lib:
        scratch_source = (f"planned: {b.kernels} ({lib}) needs {scratch:,} B more than TFLM's reference kernels "
                          f"on {b.arch} (plan_arena; the host measurement uses reference kernels)")
    else:
        scratch_source = f"none: {b.key} runs TFLM's reference kernels, as measured on the host"
    margin_source = (f"memory.arena_margin_bytes in {b.path.name}: {b.source('memory.arena_margin_bytes')}"
                     if b.has("memory.arena_margin_bytes") else f"no memory.arena_margin_bytes in {b.path.name}")
    budget = ArenaBudget(b.key, host, host_source, scratch, scratch_source, plan.margin_bytes, margin_source,
                         plan.arena_bytes, in_psram=plan.arena_in == "psram")
    runtime, ram = plan.parts["runtime_ram_bytes"], plan.ram.available
    if plan.arena_in == "psram":
        budget.placement = (f"PSRAM: arena {budget.total_bytes:,} B + runtime {runtime:,} B "
                            f"(memory.runtime_ram_bytes) > {ram:,} B of data RAM "
                            f"(memory.data_ram_max_bytes); {plan.psram.available:,} B of PSRAM")
    else:
        budget.placement = (f"internal RAM: arena {budget.total_bytes:,} B + runtime {runtime:,} B "
                            f"(memory.runtime_ram_bytes) <= {ram:,} B")
    return budget, plan


def _check_fit(model: TFLiteModel, budget: ArenaBudget, plan: MemoryPlan, b) -> None:
    """Refuse a project that cannot link or load on the board, saying by how much (plan.fits decides)."""
    if plan.psram is not None and plan.psram.short_by:
        raise EdgekitError(f"the arena needs {budget.total_bytes:,} B but {b.name} has {plan.psram.available:,} B "
                           "of PSRAM; shrink the activations (smaller input, fewer early channels)")
    if plan.ram.short_by:
        runtime = plan.parts["runtime_ram_bytes"]
        where = f"the arena ({budget.total_bytes:,} B) and the runtime ({runtime:,} B)" if plan.psram is None \
            else f"the runtime ({runtime:,} B)"
        psram = "" if b.has("memory.psram_bytes") else " or deploy to esp32s3 (8 MB PSRAM)"
        raise EdgekitError(f"{where} exceed {b.name}'s {plan.ram.available:,} B of RAM by {plan.ram.short_by:,} B; "
                           f"shrink the activations (smaller input, fewer early channels, a stride-2 first layer){psram}")
    if plan.flash.short_by:
        code = plan.parts["runtime_flash_bytes"]
        raise EdgekitError(f"the model ({len(model):,} B) and the firmware (~{code:,} B) exceed {b.name}'s "
                           f"{plan.flash.available:,} B of sketch flash by {plan.flash.short_by:,} B; use fewer parameters")


# ---------------------------------------------------------------------------------------------
# The generated sources
# ---------------------------------------------------------------------------------------------

def _version() -> str:
    return __version__


def _header(what: str, board, sha: str) -> str:
    return (f"// {what}\n// Generated by edgekit {_version()} for {b_name(board)}: do not edit, regenerate "
            f"(edgekit.sketch.generate_project).\n// Model sha256: {sha}\n")


def b_name(board) -> str:
    return f"{board.name} ({board.key})"


def render_model_data(model: bytes, board, sha: str) -> tuple[str, str]:
    """(model_data.h, model_data.cc): the model as a 16-byte-aligned array, 12 bytes a line."""
    h = (_header("The model, as a C array (model_data.cc).", board, sha)
         + "#ifndef EDGEKIT_MODEL_DATA_H_\n#define EDGEKIT_MODEL_DATA_H_\n\n"
         + "// TFLite Micro reads the flatbuffer in place: it must be 16-byte aligned.\n"
         + "alignas(16) extern const unsigned char g_model[];\n"
         + "extern const unsigned int g_model_len;\n\n#endif  // EDGEKIT_MODEL_DATA_H_\n")
    lines = []
    for i in range(0, len(model), BYTES_PER_LINE):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in model[i:i + BYTES_PER_LINE]) + ",")
    cc = (_header(f"The model: {len(model):,} bytes, sha256 {sha}.", board, sha)
          + '#include "model_data.h"\n\n'
          + "alignas(16) const unsigned char g_model[] = {\n" + "\n".join(lines) + "\n};\n"
          + f"const unsigned int g_model_len = {len(model)};\n")
    return h, cc


def render_model_ops(ops: list[str], methods: list[str], board, sha: str) -> str:
    body = "\n".join(f"  r.{m}();  // {op}" for op, m in zip(ops, methods))
    return (_header(f"The model's {len(ops)} distinct ops, registered with TFLite Micro.", board, sha)
            + "#ifndef EDGEKIT_MODEL_OPS_H_\n#define EDGEKIT_MODEL_OPS_H_\n\n"
            + '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
            + f"#define EDGEKIT_OP_COUNT {len(ops)}\n\n"
            + "// Registers exactly the ops the model uses (a missing one fails at AllocateTensors with\n"
            + "// \"Didn't find op for builtin opcode\").\n"
            + "inline void edgekit_register_ops(tflite::MicroMutableOpResolver<EDGEKIT_OP_COUNT>& r) {\n"
            + body + "\n}\n\n#endif  // EDGEKIT_MODEL_OPS_H_\n")


def _comment_wrap(text: str, prefix: str = "//   ", width: int = 100) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(prefix) + len(line) + 1 + len(w) > width:
            lines.append(prefix + line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    if line:
        lines.append(prefix + line)
    return "\n".join(lines)


# The sketches' sensor build flags (firmware/<board>/<board>.ino says what each one compiles in).
SENSOR_FLAGS = {
    ("nano33ble", "Rev1"): ("EDGEKIT_NANO_REV1",),
    ("nano33ble", "Rev2"): ("EDGEKIT_NANO_REV2",),
    ("esp32s3", "Sense"): ("EDGEKIT_XIAO_SENSE", "EDGEKIT_IMU_LSM6DS3"),
}
DEFAULT_SENSOR_SET = {"nano33ble": "Rev2", "esp32s3": "Sense"}  # Rev2 is the Nano sold since 2023


def sensor_flags(board_key: str, sensors: str | None) -> tuple[str, ...]:
    """The build flags for a board's sensors: sensors=None (none: no sensor libraries needed),
    "default", or a set name ("Rev1"/"Rev2" on the Nano, "Sense" on the XIAO)."""
    if sensors is None:
        return ()
    name = DEFAULT_SENSOR_SET.get(board_key) if sensors == "default" else sensors
    flags = SENSOR_FLAGS.get((board_key, name))
    if flags is None:
        names = [n for (k, n) in SENSOR_FLAGS if k == board_key]
        raise EdgekitError(f"'{sensors}' is not a sensor set of {board_key}; use one of: {', '.join(names)}")
    return flags


def render_model_config(board, sha: str, budget: ArenaBudget, n_model: int, flags: tuple[str, ...] = ()) -> str:
    clock = int(board.clock_hz)
    a = budget
    derivation = "\n".join([
        "// Tensor arena: EDGEKIT_ARENA_BYTES = round_up_16(host + scratch + margin)",
        f"//   host    {a.host_bytes:>9,} B",
        _comment_wrap(a.host_source, "//             "),
        f"// + scratch {a.scratch_bytes:>9,} B",
        _comment_wrap(a.scratch_source, "//             "),
        f"// + margin  {a.margin_bytes:>9,} B",
        _comment_wrap(a.margin_source, "//             "),
        f"// = {a.sum_bytes:,} B, rounded up to a multiple of 16 (TFLM's arena alignment): {a.total_bytes:,} B",
        f"// Placement: {a.placement}" if a.placement else "// Placement: internal RAM",
    ])
    psram = ("// The arena does not fit internal RAM: the sketch allocates it in PSRAM.\n"
             "#define EDGEKIT_ARENA_IN_PSRAM 1\n" if a.in_psram else "")
    return (_header("Build configuration: board, model identity, arena size.", board, sha)
            + "#ifndef EDGEKIT_MODEL_CONFIG_H_\n#define EDGEKIT_MODEL_CONFIG_H_\n\n"
            + f'#define EDGEKIT_BOARD "{board.key}"\n'
            + f'#define EDGEKIT_FIRMWARE_VERSION "{_version()}"\n'
            + f'#define EDGEKIT_MODEL_SHA256 "{sha}"\n'
            + f"#define EDGEKIT_MODEL_BYTES {n_model}\n"
            + f"// chip.clock_hz in {board.path.name}: {board.source('chip.clock_hz')}\n"
            + f"#define EDGEKIT_CLOCK_HZ {clock}UL\n\n"
            + derivation + "\n"
            + f"#define EDGEKIT_ARENA_BYTES {a.total_bytes}\n"
            + psram
            + ("\n// The board's sensors for `stream` (edgekit capture); see the sketch for what each flag adds.\n"
               + "".join(f"#define {f} 1\n" for f in flags) if flags else "")
            + "\n#endif  // EDGEKIT_MODEL_CONFIG_H_\n")


_PORT = "PORT_PLACEHOLDER"


def _shell(argv: list[str]) -> str:
    """A command line to copy: quoted for this OS, the port left as <port> to fill in."""
    line = subprocess.list2cmdline(argv) if sys.platform == "win32" else shlex.join(argv)
    return line.replace(_PORT, "<port>")


def render_readme(board, project_dir: Path, sketch: str, sha: str, n_model: int, ops: list[str],
                  budget: ArenaBudget, flags: tuple[str, ...] = ()) -> str:
    cmds = build_commands(project_dir, board, port=_PORT)
    try:
        setup = setup_commands(board) + (list(board_tools(board.key).sensor_library_install) if flags else [])
    except KeyError:  # no install table for this board (stm32l4r5: built for the emulator only)
        setup = [f"arduino-cli core install {board.fqbn.rsplit(':', 2)[0] if board.fqbn else '<core>'}"]
    lines = [
        f"edgekit firmware project for {b_name(board)}",
        f"Generated by edgekit {_version()}.",
        "",
        f"Model:  {n_model:,} bytes, sha256 {sha}",
        f"Ops:    {', '.join(ops)}",
        f"Arena:  {budget.total_bytes:,} bytes ({'PSRAM' if budget.in_psram else 'internal RAM'}); "
        "model_config.h shows how it was sized.",
        f"Sensors: {', '.join(flags) if flags else 'none but adc (edgekit capture --flash builds them in)'}",
        "",
        "1. Tools (once). `edgekit doctor` checks them and prints what is missing:",
        *[f"     {c}" for c in setup],
        "",
        "2. Build:",
        f"     {_shell(cmds['compile'])}",
        "",
        "3. Find the board's port (e.g. /dev/ttyACM0, /dev/cu.usbmodem1101, COM3):",
        "     arduino-cli board list",
        "",
        "4. Upload (replace <port>):",
        f"     {_shell(cmds['upload'])}",
    ]
    if "esptool" in cmds:
        lines += ["   or, with esptool (pip install esptool), the merged image the build wrote:",
                  f"     {_shell(cmds['esptool'])}"]
    if board.key == "nano33ble":
        lines += ["", "The Nano 33 BLE restarts into its bootloader for the upload and comes back on another",
                  "port once the sketch runs: run `arduino-cli board list` again afterwards. If an upload",
                  "fails, double-tap the reset button (the LED pulses) and upload to the port it shows."]
    if board.key == "esp32s3":
        lines += ["", "If the upload cannot connect, hold BOOT, press and release RESET, release BOOT, and",
                  "upload again; then press RESET to start the sketch."]
    lines += ["", f"The sketch folder name and {sketch} must match (Arduino's rule); rename both together.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The project
# ---------------------------------------------------------------------------------------------

def _is_replaceable(path: Path) -> bool:
    return path.is_dir() and (not any(path.iterdir()) or (path / MARKER).is_file())


def generate_project(model: TFLiteModel | bytes, board_key: Board | str, out_dir, host_arena: int | None = None, *,
                     firmware_root: str | Path | None = None, check_fit: bool = True,
                     sensors: str | None = None) -> Project:
    """Write a ready-to-build Arduino sketch folder for `model` on `board_key` at `out_dir`.

    out_dir's last component names the sketch (Arduino: folder X holds X.ino). An existing
    out_dir is replaced only if it is empty or an earlier edgekit project. host_arena: TFLite
    Micro's measured arena if the caller has it (else measured here, or planned). firmware_root:
    where the sketches are (default `firmware_dir()`). check_fit: refuse a model whose arena or
    flash cannot fit the board. sensors: None, "default" or a sensor set (see sensor_flags) to
    compile the board's sensors in for `stream`. Raises EdgekitError; on any failure nothing is
    left at out_dir.
    """
    model = model_of(model)
    board = load_board(board_key) if isinstance(board_key, str) else board_key
    if board.runtime != "tflm":
        raise EdgekitError(f"'{board.key}' is not a TFLite Micro board; firmware projects are for "
                           "nano33ble and esp32s3")
    out = Path(out_dir).expanduser().absolute()
    if not SKETCH_NAME.match(out.name):
        raise EdgekitError(f"'{out.name}' cannot name an Arduino sketch folder; use letters, digits, _ . - "
                           "(starting with a letter or digit, at most 63 characters)")
    if out.exists() and not _is_replaceable(out):
        raise EdgekitError(f"{out} exists and is not an edgekit project; choose a new folder or remove it")
    root = Path(firmware_root) if firmware_root is not None else firmware_dir()
    main_ino, extra, common = _sources(board.key, root)

    # Everything that can fail on the model is decided before anything is written.
    flags = sensor_flags(board.key, sensors)
    ops = model_ops(model)
    methods = resolver_methods(ops)
    sha = model.sha256
    budget, plan = arena_budget(model, board, host_arena)
    if check_fit:
        _check_fit(model, budget, plan, board)
    data_h, data_cc = render_model_data(model.data, board, sha)
    texts = {
        "model_data.h": data_h,
        "model_data.cc": data_cc,
        "model_ops.h": render_model_ops(ops, methods, board, sha),
        "model_config.h": render_model_config(board, sha, budget, len(model), flags),
        "README.txt": render_readme(board, out, f"{out.name}.ino", sha, len(model), ops, budget, flags),
    }
    project = Project(out, board.key, out / f"{out.name}.ino", sha, len(model), ops, methods, budget)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the project is an ordinary folder
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8", newline="\n")
        copies = [(main_ino, f"{out.name}.ino")] + [(p, p.name) for p in common + extra]
        for src, name in copies:
            if name in texts:
                continue  # a placeholder model_*.h in firmware/ never wins over the generated one
            shutil.copyfile(src, tmp / name)
        project.files = sorted(p.name for p in tmp.iterdir())
        (tmp / MARKER).write_text(json.dumps(project.to_dict(), indent=1) + "\n", encoding="utf-8")
        _swap_in(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise EdgekitError(f"could not write the project at {out}: {e.strerror or e}; nothing was "
                               "changed there: free space or fix permissions and run again") from None
        raise
    return project


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished temporary folder to `out`, replacing an earlier project whole."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
