"""The TFLite Micro Arduino library (Arduino_TensorFlowLite, with CMSIS-NN) compiled for the emulated
Cortex-M4 into a static archive, once per (library version, compiler flags, compiler version).

    archive = build_library(board.text("emulation.cflags"), progress=print)

The archive is cached in $EDGEKIT_CACHE/tflm/<key>/ (default ~/.cache/edgekit/tflm/<key>/). A build
compiles the library's ~212 sources over os.cpu_count() compiler processes in a temporary folder
beside the cache entry and renames it into place when it is complete, so a cache entry is whole or
absent (a second process building the same key at the same time keeps the first one's).
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..errors import EdgekitError

LIBRARY_DIR = "Arduino_TensorFlowLite"
CLONE = "git clone https://github.com/tensorflow/tflite-micro-arduino-examples ~/Arduino/libraries/Arduino_TensorFlowLite"
# What the Arduino build defines too (-DARDUINO: the library switches its CMSIS-NN kernel
# registrations on it; ARM_MATH_CM4 comes from the Mbed core's defines.txt), and the rest that a
# build outside the Arduino IDE needs for the same code (TFLM's DebugLog-based abort, no x86 NEON).
DEFINES = ("-DARDUINO=10819", "-DARM_MATH_CM4", "-DCMSIS_NN", "-DTF_LITE_DISABLE_X86_NEON",
           "-DTF_LITE_MCU_DEBUG_LOG")
# The Arduino mbed core's language flags (variants/*/cflags.txt, cxxflags.txt).
C_FLAGS = ("-std=gnu11",)
CXX_FLAGS = ("-std=gnu++14", "-fno-rtti", "-fno-exceptions")
INCLUDES = ("", "third_party/flatbuffers/include", "third_party/gemmlowp", "third_party/ruy",
            "third_party/cmsis", "third_party/cmsis/CMSIS/Core/Include", "third_party/cmsis_nn",
            "third_party/cmsis_nn/Include")
# Arduino-only parts: the board peripherals and serial test harness, and the two files that
# include Arduino.h (the emulated board's support layer provides DebugLog and the clock instead).
SKIP_DIRS = ("peripherals", "test_over_serial")
SKIP_FILES = ("tensorflow/lite/micro/system_setup.cpp", "tensorflow/lite/micro/micro_time.cpp")
SOURCE_EXTS = (".c", ".cc", ".cpp")
ARCHIVE = "libtflm.a"


def cache_root() -> Path:
    env = os.environ.get("EDGEKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgekit"


def _is_library(path: Path) -> bool:
    return (path / "src" / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file()


def _arduino_user_dir() -> Path | None:
    """arduino-cli's configured sketchbook folder, if arduino-cli is installed and says."""
    cli = shutil.which("arduino-cli")
    if not cli:
        return None
    try:
        out = subprocess.run([cli, "config", "dump", "--format", "json"], capture_output=True, text=True,
                             timeout=15, stdin=subprocess.DEVNULL).stdout
        data = json.loads(out or "{}")
        data = data.get("config", data)  # arduino-cli 1.x wraps the settings in "config"
        user = (data.get("directories") or {}).get("user")
        return Path(user) if user else None
    except (OSError, subprocess.SubprocessError, ValueError, AttributeError):
        return None


def find_library() -> Path:
    """The Arduino_TensorFlowLite folder: $EDGEKIT_TFLM_SRC, else the Arduino libraries folder
    (~/Arduino/libraries, or arduino-cli's configured one), else ../shared/vendor next to a source
    checkout. EdgekitError if none holds it."""
    env = os.environ.get("EDGEKIT_TFLM_SRC")
    if env:
        path = Path(env).expanduser()
        for p in (path, path.parent):  # the library folder, or its src/
            if _is_library(p):
                return p
        raise EdgekitError(f"EDGEKIT_TFLM_SRC={env} is not the Arduino_TensorFlowLite library (no "
                           "src/tensorflow/lite/micro/micro_interpreter.h); point it at the library folder or unset it")
    candidates = [Path.home() / "Arduino" / "libraries" / LIBRARY_DIR]
    user = _arduino_user_dir()
    if user:
        candidates.insert(0, user / "libraries" / LIBRARY_DIR)
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "vendor" / LIBRARY_DIR)
    for p in candidates:
        if _is_library(p):
            return p
    raise EdgekitError(f"the TensorFlow Lite Micro Arduino library is not installed: {CLONE} "
                       "(or set EDGEKIT_TFLM_SRC to its folder)")


def library_name(root: Path) -> str:
    """'Arduino_TensorFlowLite 2.4.0-ALPHA' from library.properties."""
    props = {}
    try:
        for line in (root / "library.properties").read_text(errors="replace").splitlines():
            k, sep, v = line.partition("=")
            if sep:
                props[k.strip()] = v.strip()
    except OSError:
        pass
    return f"{props.get('name', root.name)} {props.get('version', 'unknown version')}".strip()


def library_sources(root: Path) -> list[Path]:
    """The sources the archive holds, relative to root/src, sorted."""
    src = root / "src"
    out = []
    for p in src.rglob("*"):
        rel = p.relative_to(src).as_posix()
        if p.suffix in SOURCE_EXTS and p.is_file() and rel.split("/")[0] not in SKIP_DIRS and rel not in SKIP_FILES:
            out.append(Path(rel))
    return sorted(out)


def compile_flags(cflags: str, root: Path) -> list[str]:
    """The flags every file of the image and the library is compiled with (ABI and defines must match)."""
    src = root / "src"
    return [*shlex.split(cflags), *DEFINES, *(f"-I{src / d}" if d else f"-I{src}" for d in INCLUDES)]


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise EdgekitError(f"{name} is not installed: sudo apt-get install gcc-arm-none-eabi "
                           "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib")
    return path


def compiler_version() -> str:
    out = subprocess.run([tool("arm-none-eabi-g++"), "--version"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL).stdout
    return out.splitlines()[0].strip() if out.strip() else "unknown"


def cache_key(root: Path, cflags: str) -> str:
    """Library version, the sources' names and sizes (an edited checkout gets a new key), the flags
    and the compiler."""
    h = hashlib.sha256()
    h.update(json.dumps({"library": library_name(root), "cflags": shlex.split(cflags), "defines": DEFINES,
                         "c": C_FLAGS, "cxx": CXX_FLAGS, "compiler": compiler_version()}).encode())
    for p in sorted((root / "src").rglob("*")):
        if p.is_file():
            h.update(f"{p.relative_to(root).as_posix()}:{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def compile_one(src: Path, obj: Path, flags: list[str]) -> str | None:
    """Compiles one C or C++ file; None, or the compiler's first error line."""
    cc = tool("arm-none-eabi-gcc") if src.suffix == ".c" else tool("arm-none-eabi-g++")
    lang = C_FLAGS if src.suffix == ".c" else CXX_FLAGS
    if src.suffix == ".ino":
        lang = ("-x", "c++", *CXX_FLAGS)
    p = subprocess.run([cc, *lang, *flags, "-c", str(src), "-o", str(obj)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if p.returncode == 0:
        return None
    lines = [ln for ln in p.stderr.splitlines() if "error" in ln] or p.stderr.strip().splitlines() or ["failed"]
    return lines[0].strip()


def compile_all(jobs: list[tuple[Path, Path]], flags: list[str], what: str,
                progress: Callable[[str], None] = lambda msg: None) -> None:
    """Compiles (source, object) pairs over os.cpu_count() compiler processes; EdgekitError naming
    the first file that fails."""
    n, done, last = len(jobs), 0, -1
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [(src, pool.submit(compile_one, src, obj, flags)) for src, obj in jobs]
        for src, fut in futures:
            err = fut.result()
            if err:
                for _, f in futures:
                    f.cancel()
                raise EdgekitError(f"{src.name} does not compile for the emulated board: {err}")
            done += 1
            step = done * 10 // n
            if step != last:  # every tenth, not every file
                last = step
                progress(f"compiling {what} {done}/{n}")


def build_library(cflags: str, progress: Callable[[str], None] = lambda msg: None,
                  root: Path | None = None) -> Path:
    """The cached archive for these flags, built first if needed; returns its path."""
    root = root or find_library()
    key = cache_key(root, cflags)
    final = cache_root() / "tflm" / key
    archive = final / ARCHIVE
    if archive.is_file():
        return archive
    sources = library_sources(root)
    progress(f"building {library_name(root)} for the emulated Cortex-M4 once ({len(sources)} files, cached "
             f"in {final})")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=final.parent))
    try:
        t = time.monotonic()
        flags = compile_flags(cflags, root)
        jobs = [(root / "src" / rel, tmp / (rel.as_posix().replace("/", "__") + ".o")) for rel in sources]
        compile_all(jobs, flags, "TFLite Micro", progress)
        r = subprocess.run([tool("arm-none-eabi-ar"), "rcs", ARCHIVE, *(obj.name for _, obj in jobs)], cwd=tmp,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise EdgekitError(f"arm-none-eabi-ar could not make the TFLite Micro archive: {r.stderr.strip()}; "
                               f"check free space in {final.parent}")
        for _, obj in jobs:
            obj.unlink()
        (tmp / "build.json").write_text(json.dumps({
            "library": library_name(root), "path": str(root), "cflags": cflags, "defines": DEFINES,
            "compiler": compiler_version(), "files": len(sources), "seconds": round(time.monotonic() - t, 1)},
            indent=1) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the cache entry is an ordinary folder
        try:
            os.rename(tmp, final)
        except OSError:
            if not archive.is_file():  # not another process's finished build: a real failure
                raise
    except OSError as e:
        raise EdgekitError(f"could not write the TFLite Micro build in {final.parent}: {e.strerror or e}; "
                           "free space or set EDGEKIT_CACHE to a writable folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return archive
