"""Build a generated project with arduino-cli and flash it; find the board again afterwards.

    build_and_flash(project, "nano33ble", progress=print)

1. `arduino-cli compile --fqbn <fqbn> [--board-options <opts>] --output-dir <dir>/build <dir>`
2. the port: the one given, or the board found by its USB IDs (targets/<board>.toml `usb`);
3. upload: the ESP32-S3 with esptool (`esptool --chip esp32s3 --port P write_flash 0x0
   <dir>/build/<sketch>.ino.merged.bin`) when esptool is installed and the core wrote the merged
   image, else `arduino-cli upload -p P --fqbn ... --input-dir <dir>/build <dir>`;
4. the board restarts (the Nano 33 BLE leaves its bootloader, whose port differs from the
   sketch's): poll for up to `wait_s` until a port with a 'sketch' role USB ID appears.

Without arduino-cli, `ToolMissing` (an EdgekitError) says where the project is and the exact
commands. A tool that fails becomes one EdgekitError line: the tool, its most telling error
line, and what it usually means.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EdgekitError
from ..targets import detect, load_board
from .project import Project
from .tools import arduino_cli_install, board_tools

COMPILE_TIMEOUT_S = 1800    # a core's first build compiles the whole framework (ESP32: minutes)
UPLOAD_TIMEOUT_S = 300


# ---------------------------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------------------------

def merged_image(project_dir: Path) -> Path:
    """The ESP32 image arduino-esp32 (3.x) writes: bootloader, partitions and app in one, at 0x0."""
    return Path(project_dir) / "build" / f"{Path(project_dir).name}.ino.merged.bin"


def _board(board):
    return load_board(board) if isinstance(board, str) else board


def build_commands(project_dir, board, port: str = "<port>", arduino_cli: str = "arduino-cli",
                   esptool: list[str] | None = None) -> dict[str, list[str]]:
    """{'compile': argv, 'upload': argv[, 'esptool': argv]} for a project folder on `board`."""
    b = _board(board)
    d = Path(project_dir)
    opts = ["--board-options", b.board_options] if b.board_options else []
    cmds = {
        "compile": [arduino_cli, "compile", "--fqbn", b.fqbn, *opts, "--output-dir", str(d / "build"), str(d)],
        "upload": [arduino_cli, "upload", "-p", port, "--fqbn", b.fqbn, *opts,
                   "--input-dir", str(d / "build"), str(d)],
    }
    if b.key == "esp32s3":
        cmds["esptool"] = [*(esptool or ["esptool.py"]), "--chip", "esp32s3", "--port", port,
                           "write_flash", "0x0", str(merged_image(d))]
    return cmds


def setup_commands(board) -> list[str]:
    """What to install once for `board`: arduino-cli, its core, the TFLite Micro library."""
    b = _board(board)
    t = board_tools(b.key)
    return [arduino_cli_install(), *t.core_install, *t.library_install]


# ---------------------------------------------------------------------------------------------
# Running tools, and their errors in one line
# ---------------------------------------------------------------------------------------------

Run = Callable[[list[str], float], tuple[int, str]]


def run_tool(argv: list[str], timeout: float) -> tuple[int, str]:
    """Run a tool; (exit code, stdout and stderr together)."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace", timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} did not finish within "
                           f"{timeout:g} s; run it by hand to see where it hangs: {_shell(argv)}") from None
    return p.returncode, p.stdout or ""


def _shell(argv: list[str]) -> str:
    import shlex
    line = subprocess.list2cmdline(argv) if sys.platform == "win32" else shlex.join(argv)
    return line.replace("'<port>'", "<port>")


_NOISE = re.compile(
    r"^(exit status \d+|compilation terminated\.?|(Error during build|Compilation error|Failed uploading"
    r"|uploading error|Error during Upload): .*exit status \d+|In file included from .*|\s*from .*"
    r"|Used (library|platform) .*|Using (board|core|library|cached|previously) .*|Multiple libraries were found.*"
    r"|\s*(Used|Not used): .*|Sketch uses .*|Global variables use .*|\s*\^+~*\s*|\s*\|.*|\s*\d+ \| .*)$", re.I)
_GCC_ERROR = re.compile(r"(^|\s|:)(fatal error|error):\s", re.I)
_TELLING = re.compile(r"error|failed|fatal|not found|no such|timed out|could not|cannot|can't|unable|"
                      r"denied|invalid|overflowed|too big|exceeds", re.I)

# (pattern over the whole output, what it means and what to do)
HINTS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"Didn't find op for builtin opcode|Failed to get registration from op code", re.I),
     "the op resolver misses an op the model uses: model_ops.h must register every op of the model; "
     "regenerate the project from this exact model"),
    (re.compile(r"(TensorFlowLite\w*\.h|tensorflow/lite/[\w/]+\.h): No such file", re.I),
     "the TFLite Micro Arduino library is not installed for this board: run `edgekit doctor` for the "
     "install command"),
    (re.compile(r"Platform '[^']+' not found|platform (is )?not installed|Invalid FQBN|Unknown FQBN", re.I),
     "the board's core is not installed: run `edgekit doctor` for the install command"),
    (re.compile(r"region `?'?(RAM|dram0_0_seg|DRAM|iram0_0_seg)'? overflowed|will not fit in region|"
                r"section `?'?\.(bss|data|dram0\.bss)'? will not fit", re.I),
     "the tensor arena and the sketch's globals exceed the board's RAM: shrink the model's activations "
     "(smaller input, fewer early channels)"),
    (re.compile(r"Sketch too big|text section exceeds available space|region `?'?(FLASH|irom0_0_seg|"
                r"drom0_0_seg)'? overflowed", re.I),
     "the model and firmware exceed the board's flash: use a model with fewer parameters"),
    (re.compile(r"Permission denied|could not open port|Access is denied|Errno 13", re.I),
     "no permission on the serial port: `sudo usermod -aG dialout $USER`, then log out and in "
     "(`edgekit doctor` checks it)"),
    (re.compile(r"Failed to connect to ESP32|No serial data received|Wrong boot mode", re.I),
     "the ESP32-S3 did not enter download mode: hold BOOT, press and release RESET, release BOOT, "
     "then run again"),
    (re.compile(r"No device found on|No upload port|port .* not found|device not configured", re.I),
     "the board was not on that port: plug it in (a data cable), double-tap reset on a Nano 33 BLE, and "
     "run again with the port `arduino-cli board list` shows"),
]


def explain(output: str) -> str | None:
    """What a tool's (or the board's) error output usually means, or None."""
    for pattern, hint in HINTS:
        if pattern.search(output):
            return hint
    return None


def telling_line(output: str) -> str:
    """The most telling line of a failed tool's output: the first compiler error, else the last
    line that names a failure, else the last line that is not progress noise."""
    lines = [l.rstrip() for l in output.splitlines() if l.strip() and not _NOISE.match(l.rstrip())]
    gcc = [l for l in lines if _GCC_ERROR.search(l)]
    pick = gcc[0] if gcc else next((l for l in reversed(lines) if _TELLING.search(l)), lines[-1] if lines else "")
    pick = re.sub(r"^(?:[A-Za-z]:)?[^\s:]*[/\\]([^/\\\s:]+:\d+(?::\d+)?:)", r"\1", pick.strip())  # drop dirs
    return pick or "no output"


def tool_failure(what: str, code: int, output: str) -> EdgekitError:
    line = telling_line(output)
    hint = explain(output)
    return EdgekitError(f"{what} failed (exit {code}): {line}" + (f"; {hint}" if hint else ""))


# ---------------------------------------------------------------------------------------------
# Build and flash
# ---------------------------------------------------------------------------------------------

class ToolMissing(EdgekitError):
    """A tool the build needs is not installed. `commands` holds the exact commands to run by hand."""

    def __init__(self, message: str, tool: str, commands: list[str]):
        super().__init__(message)
        self.tool = tool
        self.commands = commands


@dataclass
class FlashResult:
    project: Path
    board: str
    port: str | None                 # the sketch's port after the upload (None when not uploaded)
    build_dir: Path
    image: Path | None = None        # what was written (ESP32 merged image), if known
    uploaded_with: str = ""          # "esptool", "arduino-cli" or "" (compile only)
    flash_used: int | None = None    # from arduino-cli's "Sketch uses N bytes"
    ram_used: int | None = None      # "Global variables use N bytes" (a static arena included)
    commands: list[list[str]] = field(default_factory=list)


def _esptool(which) -> list[str] | None:
    for name in ("esptool", "esptool.py"):
        path = which(name)
        if path:
            return [path]
    return None


def _find_port(board, list_ports) -> str | None:
    conn = detect(board, ports=list_ports() if list_ports else None)
    return conn.device if conn else None


def wait_for_sketch_port(board, list_ports=None, wait_s: float = 10.0, poll_s: float = 0.25,
                         sleep=time.sleep, clock=time.monotonic):
    """The board's Connection once a port with a 'sketch' (or 'runtime') role USB ID is present, polling
    detect() for up to wait_s; None if it never appears."""
    deadline = clock() + wait_s
    while True:
        conn = detect(board, ports=list_ports() if list_ports else None)
        if conn is not None and conn.role in ("sketch", "runtime"):
            return conn
        if clock() >= deadline:
            return None
        sleep(poll_s)


def build_and_flash(project, board_key: str | None = None, port: str | None = None,
                    progress: Callable[[str], None] = lambda m: None, *, upload: bool = True,
                    which: Callable[[str], str | None] = shutil.which, run: Run = run_tool,
                    list_ports: Callable[[], list] | None = None, wait_s: float = 10.0,
                    poll_s: float = 0.25, sleep=time.sleep, clock=time.monotonic) -> FlashResult:
    """Compile `project` (a Project or its folder) with arduino-cli and flash it to the board.

    port: where the board is (default: found by its USB IDs). upload=False only compiles.
    which / run / list_ports / sleep / clock: how tools are found and run and how serial ports are
    listed (pyserial's comports() by default); tests pass their own.
    Returns a FlashResult whose `port` is where the sketch runs after the upload.
    """
    if not isinstance(project, Project):
        project = Project.load(project)
    key = board_key or project.board
    if key != project.board:
        raise EdgekitError(f"{project.path} was generated for {project.board}, not {key}; generate it for {key} "
                           "or flash it to a " + project.board)
    board = load_board(key)
    d = project.path
    cli = which("arduino-cli")
    if cli is None:
        cmds = build_commands(d, board, port=port or "<port>")
        steps = [_shell(cmds["compile"]), _shell(cmds["upload"])]
        raise ToolMissing(
            f"arduino-cli is not installed (not on PATH); the project folder was written at {d}: build and "
            f"upload it with `{steps[0]}` then `{steps[1]}` (the port from `arduino-cli board list`) after "
            f"installing arduino-cli (`{arduino_cli_install()}`); `edgekit doctor` lists anything else missing",
            "arduino-cli", [arduino_cli_install(), *steps])

    esptool = _esptool(which) if board.key == "esp32s3" else None
    cmds = build_commands(d, board, port=port or "<port>", arduino_cli=cli, esptool=esptool)
    result = FlashResult(d, key, None, d / "build")

    progress(f"compiling {d.name} for {board.fqbn}" + (f" ({board.board_options})" if board.board_options else "")
             + " (a core's first build takes minutes)")
    result.commands.append(cmds["compile"])
    code, out = run(cmds["compile"], COMPILE_TIMEOUT_S)
    if code != 0:
        raise tool_failure("arduino-cli compile", code, out)
    m = re.search(r"Sketch uses (\d+) bytes", out)
    result.flash_used = int(m.group(1)) if m else None
    m = re.search(r"Global variables use (\d+) bytes", out)
    result.ram_used = int(m.group(1)) if m else None
    if not upload:
        return result

    if port is None:
        port = _find_port(board, list_ports)
        if port is None:
            ids = ", ".join(f"{u.vid}:{u.pid}" for u in board.usb)
            raise EdgekitError(f"no {board.name} found on a USB port (USB IDs {ids}); plug it in with a data "
                               f"cable and run again, or give the port (`arduino-cli board list`); the firmware "
                               f"was built in {result.build_dir}")
        cmds = build_commands(d, board, port=port, arduino_cli=cli, esptool=esptool)

    image = merged_image(d)
    if esptool and image.is_file():
        argv, tool, result.image = cmds["esptool"], "esptool", image
    else:
        argv, tool = cmds["upload"], "arduino-cli"
    progress(f"uploading to {port} with {tool}")
    result.commands.append(argv)
    code, out = run(argv, UPLOAD_TIMEOUT_S)
    if code != 0:
        raise tool_failure(f"{tool} upload to {port}" if tool == "esptool" else f"arduino-cli upload to {port}",
                           code, out)
    result.uploaded_with = tool

    if board.usb:
        progress(f"waiting up to {wait_s:g} s for the {board.name} to restart into the sketch")
        conn = wait_for_sketch_port(board, list_ports, wait_s, poll_s, sleep, clock)
        if conn is None:
            raise EdgekitError(f"the upload to {port} succeeded but the {board.name} did not come back as a "
                               f"sketch port within {wait_s:g} s; press its reset button once and run "
                               "`arduino-cli board list` to find it")
        result.port = conn.device
    else:
        result.port = port
    return result
