"""The emulated board's firmware image: a model's generated files, the protocol core and the
board-support layer (firmware/emulated), linked against the cached TFLite Micro library.

    image = build_image(model, "nano33ble", "build/kws_emulated", progress=print)

The build folder holds sketch/ (what generate_project writes: model_data, model_ops, model_config,
the protocol core, and firmware/emulated/main.cpp as the sketch), obj/, image.elf and image.map;
a folder that holds anything else is refused, since a build replaces what it holds.
Only these few files compile per model; the library is built once (library.py).
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import EdgekitError
from ..sketch.generate import firmware_dir, generate_project
from ..sketch.project import MARKER as PROJECT_MARKER
from ..targets import Board, all_boards, load_board
from ..tflite_file import TFLiteModel, model_of
from .library import (CXX_FLAGS, DEFINES, build_library, cache_root, compile_all, compile_flags, find_library,
                      library_name, tool)

MACHINE_BYTES = 4 * 2**20   # mps2-an386: 4 MB of SSRAM for code at 0, 4 MB for data at 0x20000000
LINKER_SCRIPT = "mps2_an386.ld"
MARKER = ".edgekit-emulated"


@dataclass
class Image:
    path: Path              # the linked ELF
    board: str              # board key
    flags: str              # the compiler flags used, as one string
    flags_source: str       # why these flags (the board's real firmware build), from the descriptor
    text_bytes: int
    data_bytes: int
    bss_bytes: int
    flash_bytes: int        # text + data (what a flash image holds)
    ram_bytes: int          # data + bss (static RAM, the arena included)
    arena_bytes: int        # EDGEKIT_ARENA_BYTES compiled in
    model_sha256: str
    library: str            # e.g. "Arduino_TensorFlowLite 2.4.0-ALPHA"
    map_path: Path | None = None


def emulated_boards() -> list[str]:
    return [b.key for b in all_boards() if b.text("emulation.cflags", None)]


def emulated_board(board: Board | str) -> Board:
    """The board, if it can be emulated (a descriptor with an [emulation] table); else EdgekitError."""
    b = load_board(board) if isinstance(board, str) else board
    if not b.text("emulation.cflags", None):
        raise EdgekitError(f"'{b.key}' cannot be emulated: only Cortex-M4 boards with an [emulation] table in "
                           f"their descriptor can; use one of: {', '.join(emulated_boards())}")
    return b


def _firmware_root(out: Path, board_key: str) -> Path:
    """A firmware folder for generate_project: the common sources, and the emulated main as the
    board's sketch (the emulated firmware is the same for every board; not every board has one)."""
    src = firmware_dir()
    root = out / ".firmware"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(src / "common", root / "common")
    (root / board_key).mkdir(parents=True)
    shutil.copyfile(src / "emulated" / "main.cpp", root / board_key / f"{board_key}.ino")
    return root


def _link_error(stderr: str, b: Board, arena: int, model_bytes: int, ram: int, flash: int) -> EdgekitError:
    """The linker's refusal in the generator's words (what did not fit, by how much, what to do)."""
    m = re.search(r"region `RAM' overflowed by (\d+) bytes", stderr)
    if m:
        return EdgekitError(f"the arena ({arena:,} B) and the firmware's data exceed {b.name}'s {ram:,} B of RAM "
                            f"by {int(m.group(1)):,} B; shrink the activations (smaller input, fewer early "
                            "channels, a stride-2 first layer)")
    if "EDGEKIT_RAM: no room left for the stack" in stderr:
        return EdgekitError(f"the arena ({arena:,} B) and the firmware's data leave no room for the stack in "
                            f"{b.name}'s {ram:,} B of RAM; shrink the activations (smaller input, fewer early "
                            "channels, a stride-2 first layer)")
    m = re.search(r"region `FLASH' overflowed by (\d+) bytes", stderr)
    if m:
        return EdgekitError(f"the model ({model_bytes:,} B) and the firmware exceed {b.name}'s {flash:,} B of "
                            f"flash by {int(m.group(1)):,} B; use fewer parameters")
    lines = [ln.strip() for ln in stderr.splitlines() if "error" in ln or "undefined reference" in ln]
    first = (lines or stderr.strip().splitlines() or ["no message"])[0]
    return EdgekitError(f"the emulated board's firmware did not link: {first}; report this with the build "
                        "folder's files")


def _size(elf: Path) -> tuple[int, int, int]:
    out = subprocess.run([tool("arm-none-eabi-size"), "-B", str(elf)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout.splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return text, data, bss


def build_image(model: TFLiteModel | bytes, board: Board | str, out_dir=None, host_arena: int | None = None,
                progress: Callable[[str], None] = lambda msg: None) -> Image:
    """Generates the model's files (edgekit.sketch.generate, fit check included), compiles them with the
    board-support layer and the protocol core, links against the cached library; see the module doc."""
    b = emulated_board(board)
    model = model_of(model)
    cflags = b.text("emulation.cflags")
    out = Path(out_dir) if out_dir is not None else cache_root() / "emulated" / f"{b.key}_{model.sha256[:16]}"
    out = out.expanduser().absolute()
    ours = (out / MARKER).is_file() or (out / "sketch" / PROJECT_MARKER).is_file()  # (older builds: no MARKER)
    if out.is_dir() and any(out.iterdir()) and not ours:  # a build replaces its subfolders
        raise EdgekitError(f"{out} exists and is not an emulated-board build folder; choose a new folder or "
                           "remove it")
    root = find_library()
    archive = build_library(cflags, progress, root)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("an edgekit.emulator build folder: build_image replaces what is in it\n")
    project = generate_project(model, b, out / "sketch", host_arena, firmware_root=_firmware_root(out, b.key))
    bsp = firmware_dir() / "emulated"
    flags = [*compile_flags(cflags, root), f"-I{project.path}", f"-I{bsp}"]
    objs = out / "obj"
    shutil.rmtree(objs, ignore_errors=True)
    objs.mkdir()
    sources = [project.sketch, project.path / "model_data.cc", project.path / "edgekit_protocol.cpp",
               bsp / "board.cpp"]
    jobs = [(s, objs / f"{s.stem}.o") for s in sources]
    compile_all(jobs, flags, "the firmware", progress)

    ram = min(int(b.num("memory.sram_bytes")), MACHINE_BYTES)
    flash_key = "memory.sketch_flash_max_bytes" if b.has("memory.sketch_flash_max_bytes") else "memory.flash_bytes"
    flash = min(int(b.num(flash_key)), MACHINE_BYTES)
    elf, map_path = out / "image.elf", out / "image.map"
    elf.unlink(missing_ok=True)
    progress(f"linking the emulated {b.key} firmware")
    r = subprocess.run([tool("arm-none-eabi-g++"), *shlex.split(cflags), "-nostartfiles", "--specs=nosys.specs",
                        f"-T{bsp / LINKER_SCRIPT}", "-Wl,--gc-sections", f"-Wl,-Map={map_path}",
                        f"-Wl,--defsym=EDGEKIT_RAM_BYTES={ram}", f"-Wl,--defsym=EDGEKIT_FLASH_BYTES={flash}",
                        *(str(o) for _, o in jobs), str(archive), "-o", str(elf)],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise _link_error(r.stderr, b, project.arena.total_bytes, len(model), ram, flash)
    text, data, bss = _size(elf)
    cxx = [f for f in CXX_FLAGS if f not in cflags.split()]  # what C++ files (all but CMSIS-NN's C) add
    return Image(path=elf, board=b.key, flags=" ".join([cflags, *cxx, *DEFINES]),
                 flags_source=b.text("emulation.cflags_source", ""), text_bytes=text, data_bytes=data,
                 bss_bytes=bss, flash_bytes=text + data, ram_bytes=data + bss,
                 arena_bytes=project.arena.total_bytes, model_sha256=model.sha256, library=library_name(root),
                 map_path=map_path)
