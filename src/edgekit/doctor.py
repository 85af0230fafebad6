"""`edgekit doctor`: is this machine ready to build, flash and talk to the boards?

Each check says what it found and, when something is missing, the exact command that fixes it:

- arduino-cli on PATH, and new enough (0.34+, which compiles the project's .cc files);
- the board cores (`arduino-cli core list`): arduino:mbed_nano, esp32:esp32;
- TFLite Micro for each board: the Chirale_TensorFLowLite library for the Nano (`arduino-cli
  lib list`); for the ESP32-S3 the esp32:esp32 core 3.x, which bundles esp-tflite-micro;
- esptool (flashes the ESP32-S3's merged image; optional: arduino-cli's core bundles one);
- serial ports: /dev/ttyACM*, /dev/ttyUSB* readable and writable by this user, and on Linux
  membership in the group that owns them (dialout, or uucp on Arch);
- Python packages: pyserial, LiteRT (ai-edge-litert), tflite-micro (Linux x86-64 only);
- on a Raspberry Pi only (informational): pycoral and libedgetpu for the Coral;
- gcc-arm-none-eabi (optional: compile-checks the protocol core for the Cortex-M4).

Tools are found with `which` and run with `run` (both parameters), and the machine's facts come
from a `Host` (serial devices, groups, OS), so tests drive every branch with fake executables on
a temporary PATH and a Host of their own.
"""
from __future__ import annotations

import glob
import importlib.util
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .sketch.build import Run, run_tool
from .sketch.tools import (FIRMWARE_BOARDS, MIN_ARDUINO_CLI, arduino_cli_install, board_tools, parse_version)

OK, MISSING, WARN, INFO, SKIP = "ok", "missing", "warn", "info", "skip"


@dataclass
class Check:
    name: str
    status: str                  # ok | missing | warn | info | skip
    detail: str                  # what was found (a version, a path) or what is wrong
    fix: str | None = None       # the exact command(s) that fix it; several are joined with " && "
    required: bool = True        # a missing required thing fails `edgekit doctor`

    @property
    def ok(self) -> bool:
        return self.status in (OK, INFO, SKIP) or (self.status == WARN and not self.required)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix,
                "required": self.required}


@dataclass
class Host:
    """What doctor needs to know about this machine; `Host.current()` reads it."""
    system: str                                   # platform.system(): Linux, Darwin, Windows
    machine: str                                  # platform.machine()
    is_root: bool = False
    user: str = ""
    groups: set[str] = field(default_factory=set)             # groups of this login session
    configured_groups: set[str] = field(default_factory=set)  # groups per /etc/group (after usermod)
    existing_groups: set[str] = field(default_factory=set)    # groups that exist on this machine
    serial_devices: dict[str, tuple[bool, str]] = field(default_factory=dict)  # path -> (rw ok, owner group)
    board: str | None = None     # the board this machine is (rpi4), as board detection says
    board_why: str = ""          # how that is known: $EDGEKIT_BOARD or the device tree's model
    coral_usb: str | None = None  # where a Coral USB Accelerator is plugged in, if one is

    @property
    def is_pi(self) -> bool:
        return self.board is not None

    @classmethod
    def current(cls) -> "Host":
        from .targets import detect, load_board, this_machine  # lazy: board descriptors, only for doctor
        system, machine = platform.system(), platform.machine()
        host = cls(system, machine)
        found = this_machine()  # one check for "am I the Pi?": the one board detection uses
        if found:
            host.board, host.board_why = found[0].key, found[1]
            coral = detect(load_board("coral"))
            host.coral_usb = coral.label() if coral else None
        if system == "Windows" or not hasattr(os, "getuid"):
            return host
        import grp
        import pwd
        host.is_root = os.getuid() == 0
        try:
            host.user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            host.user = str(os.getuid())
        all_groups = grp.getgrall()
        host.existing_groups = {g.gr_name for g in all_groups}
        gid_names = {g.gr_gid: g.gr_name for g in all_groups}
        host.groups = {gid_names.get(g, str(g)) for g in os.getgroups()}
        try:
            primary = gid_names.get(pwd.getpwnam(host.user).pw_gid)
        except KeyError:
            primary = None
        host.configured_groups = {g.gr_name for g in all_groups if host.user in g.gr_mem} | (
            {primary} if primary else set())
        for dev in sorted(glob.glob("/dev/ttyACM*") + glob.glob("/dev/ttyUSB*")):
            try:
                owner = gid_names.get(os.stat(dev).st_gid, "")
            except OSError:
                continue
            host.serial_devices[dev] = (os.access(dev, os.R_OK | os.W_OK), owner)
        return host


def _module_version(name: str, dist: str | None = None) -> str | None:
    """The installed version of a Python package (by import name), or None when it is not importable."""
    if importlib.util.find_spec(name) is None:
        return None
    try:
        from importlib.metadata import version
        return version(dist or name)
    except Exception:
        return "installed"


def _run(run: Run, argv: list[str], timeout: float = 30) -> tuple[int, str]:
    try:
        return run(argv, timeout)
    except Exception as e:  # a hanging or broken tool is a finding, not a crash
        return 1, str(e)


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------

def _check_arduino_cli(which, run, host) -> tuple[Check, str | None]:
    path = which("arduino-cli")
    if path is None:
        return Check("arduino-cli", MISSING, "not on PATH (builds and uploads the firmware)",
                     arduino_cli_install(host.system)), None
    code, out = _run(run, [path, "version"])
    v = parse_version(out) if code == 0 else None
    if code != 0:
        return Check("arduino-cli", MISSING, f"{path} does not run (`arduino-cli version` exit {code})",
                     arduino_cli_install(host.system)), None
    if v is not None and v < MIN_ARDUINO_CLI:
        need = ".".join(map(str, MIN_ARDUINO_CLI))
        return Check("arduino-cli", MISSING, f"{'.'.join(map(str, v))} at {path}: too old, {need}+ compiles the "
                     "project's .cc files", arduino_cli_install(host.system)), path
    shown = ".".join(map(str, v)) if v else (out.strip().splitlines() or ["unknown version"])[0]
    return Check("arduino-cli", OK, f"{shown} ({path})"), path


def _listed(output: str, name: str) -> str | None:
    """The line of an arduino-cli table (core list, lib list) whose first column is `name`."""
    for line in output.splitlines():
        cols = line.split()
        if cols and cols[0].lower() == name.lower():
            return line
    return None


def _core_versions(cli, run) -> tuple[int, str, dict[str, tuple[int, int, int] | None]]:
    """(exit code, output, {platform ID: installed version}) from `arduino-cli core list`."""
    code, out = _run(run, [cli, "core", "list"]) if cli else (0, "")
    versions = {}
    for line in out.splitlines()[1:] if code == 0 else []:
        cols = line.split()
        if cols and ":" in cols[0]:
            versions[cols[0].lower()] = parse_version(cols[1]) if len(cols) > 1 else None
    return code, out, versions


def _check_cores(cli, core_list, boards) -> list[Check]:
    code, out, versions = core_list
    checks = []
    for key in boards:
        t = board_tools(key)
        name = f"core {t.core}"
        have = t.core.lower() in versions
        v = versions.get(t.core.lower())
        if cli is None:
            checks.append(Check(name, SKIP, "needs arduino-cli first", " && ".join(t.core_install)))
        elif code != 0:
            checks.append(Check(name, MISSING, f"`arduino-cli core list` failed: {out.strip()[:120]}",
                                " && ".join(t.core_install)))
        elif not have:
            checks.append(Check(name, MISSING, f"not installed (for {key})", " && ".join(t.core_install)))
        elif t.core_min and v is not None and v < t.core_min:
            need = ".".join(map(str, t.core_min))
            checks.append(Check(name, MISSING, f"{'.'.join(map(str, v))} is too old for {key}: {need}+ brings "
                                f"TFLite Micro ({t.tflm_note})", " && ".join(t.core_upgrade)))
        else:
            shown = ".".join(map(str, v)) if v else "installed"
            checks.append(Check(name, OK, f"{shown} (for {key})"))
    return checks


def _check_libraries(cli, run, core_list, boards) -> list[Check]:
    checks = []
    needs_list = any(board_tools(k).libraries for k in boards)
    code, out = _run(run, [cli, "lib", "list"]) if cli and needs_list else (0, "")
    _, _, versions = core_list
    for key in boards:
        t = board_tools(key)
        name = f"TFLite Micro ({key})"
        if not t.libraries:  # the core brings it
            core_ok = t.core.lower() in versions and (
                t.core_min is None or versions[t.core.lower()] is None or versions[t.core.lower()] >= t.core_min)
            checks.append(Check(name, OK if core_ok else SKIP, t.tflm_note if core_ok else
                                f"comes with the {t.core} core ({t.tflm_note}); see the core's row"))
            continue
        if cli is None:
            checks.append(Check(name, SKIP, "needs arduino-cli first", " && ".join(t.library_install)))
            continue
        found = [(lib, _listed(out, lib)) for lib in t.libraries] if code == 0 else []
        found = [(lib, line) for lib, line in found if line]
        if found:
            lib, line = found[0]
            cols = line.split()
            checks.append(Check(name, OK, f"{lib} {cols[1] if len(cols) > 1 else ''}".strip()))
        else:
            why = "not installed" if code == 0 else f"`arduino-cli lib list` failed: {out.strip()[:120]}"
            checks.append(Check(name, MISSING, f"{why}: needs the Arduino library {' or '.join(t.libraries)}",
                                " && ".join(t.library_install)))
        if t.sensor_libraries and code == 0:  # optional: only `edgekit capture --flash` builds them in
            missing = [lib for lib in t.sensor_libraries if not _listed(out, lib)]
            checks.append(Check(f"sensor libraries ({key})", INFO if missing else OK,
                                f"not installed: {', '.join(missing)} (for edgekit capture --flash)" if missing
                                else ", ".join(t.sensor_libraries),
                                " && ".join(t.sensor_library_install) if missing else None, required=False))
    return checks


def _check_esptool(which, run, boards) -> Check:
    needed = "esp32s3" in boards
    for exe in ("esptool", "esptool.py"):
        path = which(exe)
        if path:
            code, out = _run(run, [path, "version"])
            v = parse_version(out) if code == 0 else None
            detail = f"{'.'.join(map(str, v)) if v else 'unknown version'} ({path})"
            return Check("esptool", OK if code == 0 else WARN, detail if code == 0 else
                         f"{path} does not run (exit {code})", "pip install --upgrade esptool", required=False)
    return Check("esptool", WARN if needed else INFO,
                 "not on PATH: the ESP32-S3 is flashed with arduino-cli's bundled esptool instead",
                 "pip install esptool", required=False)


def _check_serial(host: Host) -> list[Check]:
    if host.system == "Windows":
        return [Check("serial ports", INFO, "Windows: COM ports need no group membership")]
    if host.system == "Darwin":
        return [Check("serial ports", INFO, "macOS: /dev/cu.usbmodem* ports need no group membership")]
    checks = []
    group = next((g for g in ("dialout", "uucp") if g in host.existing_groups), None)
    devices = host.serial_devices
    bad = {d: owner for d, (rw, owner) in devices.items() if not rw}
    if bad:
        owner = next(iter(bad.values())) or group or "dialout"
        fix = f"sudo usermod -aG {owner} $USER  # then log out and back in"
        checks.append(Check("serial ports", MISSING,
                            f"{', '.join(bad)} not readable/writable by {host.user or 'this user'} "
                            f"(owned by group {owner})", fix))
    elif devices:
        checks.append(Check("serial ports", OK, f"{', '.join(devices)} readable and writable"))
    else:
        checks.append(Check("serial ports", INFO, "no /dev/ttyACM* or /dev/ttyUSB* now (no board plugged in)"))
    if group and not host.is_root and not bad:
        if group in host.groups:
            checks.append(Check(f"group {group}", OK, f"{host.user or 'this user'} is a member"))
        elif group in host.configured_groups:
            checks.append(Check(f"group {group}", MISSING, f"{host.user} was added to {group} but this login "
                                "session predates it", "log out and back in (or reboot)"))
        else:
            checks.append(Check(f"group {group}", MISSING if devices else WARN,
                                f"{host.user or 'this user'} is not in {group}: serial ports will be refused",
                                f"sudo usermod -aG {group} $USER  # then log out and back in",
                                required=bool(devices)))
    return checks


def _check_python(modules, host: Host) -> list[Check]:
    checks = []
    v = modules("serial", "pyserial")
    checks.append(Check("pyserial", OK, v) if v else
                  Check("pyserial", MISSING, "not importable (talks to the boards)", "pip install pyserial"))
    v = modules("ai_edge_litert", "ai-edge-litert")
    checks.append(Check("LiteRT", OK, f"ai-edge-litert {v}") if v else
                  Check("LiteRT", MISSING, "ai-edge-litert not importable (runs and checks models)",
                        "pip install ai-edge-litert"))
    tflm_platform = host.system == "Linux" and host.machine in ("x86_64", "AMD64")
    v = modules("tflite_micro", "tflite-micro")
    if v:
        checks.append(Check("tflite-micro", OK, f"{v} (exact host arena measurements)"))
    elif tflm_platform:
        checks.append(Check("tflite-micro", MISSING, "not installed: arenas are planned, not measured",
                            "pip install tflite-micro"))
    else:
        checks.append(Check("tflite-micro", INFO, f"no wheels for {host.system} {host.machine} (Linux x86-64 "
                            "only): edgekit plans the arena with TFLM's rules instead", required=False))
    return checks


def _check_coral(modules, host: Host) -> list[Check]:
    if not host.is_pi:
        return [Check("Coral (pycoral, libedgetpu)", SKIP, "only checked on a Raspberry Pi", required=False)]
    # pycoral is optional: without it edgekit loads the Edge TPU delegate into LiteRT itself
    checks = []
    v = modules("pycoral", "pycoral")
    checks.append(Check("pycoral", OK if v else INFO, v or "not installed (the Coral Edge TPU's Python API)",
                        None if v else "sudo apt-get install python3-pycoral", required=False))
    import ctypes.util
    lib = ctypes.util.find_library("edgetpu") or next(iter(glob.glob("/usr/lib/*/libedgetpu.so.1*")), None)
    checks.append(Check("libedgetpu", OK if lib else INFO, lib or "not installed (the Edge TPU runtime)",
                        None if lib else "sudo apt-get install libedgetpu1-std", required=False))
    return checks


def _check_edgetpu_compiler(which, host: Host) -> Check:
    """Coral's compiler: x86-64 Linux only; without it edgekit predicts the Edge TPU split."""
    if host.system != "Linux" or host.machine.lower() not in ("x86_64", "amd64"):
        return Check("edgetpu_compiler", INFO, f"not available for {host.system} {host.machine} (x86-64 Linux "
                     "only): edgekit predicts the Edge TPU split; compile on an x86-64 Linux machine or in "
                     "Coral's Colab notebook", required=False)
    path = which("edgetpu_compiler")
    if path:
        return Check("edgetpu_compiler", OK, path, required=False)
    return Check("edgetpu_compiler", INFO, "not installed (optional: edgekit predicts the Edge TPU split "
                 "instead of compiling it)", "add Coral's apt repository (coral.ai/docs/edgetpu/compiler), then "
                 "sudo apt-get install edgetpu-compiler", required=False)


def _check_arm_gcc(which, run, host: Host) -> Check:
    path = which("arm-none-eabi-g++")
    if path:
        code, out = _run(run, [path, "--version"])
        first = out.strip().splitlines()[0] if out.strip() else "unknown version"
        return Check("gcc-arm-none-eabi", OK, f"{first} ({path})", required=False)
    fix = {"Darwin": "brew install --cask gcc-arm-embedded",
           "Windows": "winget install Arm.GnuArmEmbeddedToolchain"}.get(host.system,
                                                                        "sudo apt-get install gcc-arm-none-eabi")
    return Check("gcc-arm-none-eabi", INFO, "not installed (optional: compile-checks the firmware core for "
                 "the Cortex-M4 without arduino-cli, and builds the emulated board's firmware for --emu)", fix,
                 required=False)


EMULATOR_APT = "sudo apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi " \
               "libstdc++-arm-none-eabi-newlib"


def _check_emulator(which, run, host: Host) -> list[Check]:
    """What `--emu` needs beyond gcc-arm-none-eabi: QEMU, and newlib and libstdc++ built for the Cortex-M4."""
    fix = EMULATOR_APT if host.system == "Linux" else "install QEMU (qemu-system-arm) and the Arm GNU toolchain"
    qemu = which("qemu-system-arm")
    if qemu:
        code, out = _run(run, [qemu, "--version"])
        first = out.strip().splitlines()[0] if code == 0 and out.strip() else "unknown version"
        checks = [Check("qemu-system-arm", OK, f"{first} ({qemu})", required=False)]
    else:
        checks = [Check("qemu-system-arm", INFO, "not installed (optional: --emu runs the real firmware and "
                        "TFLite Micro kernels on an emulated Cortex-M4)", fix, required=False)]
    gcc = which("arm-none-eabi-g++")
    if not gcc:
        checks.append(Check("newlib for arm-none-eabi", SKIP, "needs gcc-arm-none-eabi first", fix, required=False))
        return checks
    found = []
    for lib in ("libc.a", "libstdc++.a"):
        code, out = _run(run, [gcc, "-mcpu=cortex-m4", "-mthumb", f"-print-file-name={lib}"])
        path = out.strip()
        if code == 0 and os.path.isabs(path) and os.path.exists(path):
            found.append(lib)
    if len(found) == 2:
        checks.append(Check("newlib for arm-none-eabi", OK, "libc.a and libstdc++.a for the Cortex-M4",
                            required=False))
    else:
        checks.append(Check("newlib for arm-none-eabi", INFO, "missing (optional: the emulated board's firmware "
                            "links against newlib and libstdc++)", fix, required=False))
    return checks


def _check_lab(which, run) -> list[Check]:
    """labgrid (`--lab labgrid`, a lab's boards on other machines): optional, never fails doctor."""
    client = os.environ.get("EDGEKIT_LABGRID_CLIENT") or which("labgrid-client")
    install = ("python3 -m venv ~/labgrid && ~/labgrid/bin/pip install labgrid && "
               "export EDGEKIT_LABGRID_CLIENT=~/labgrid/bin/labgrid-client")
    checks = [Check("labgrid", OK, f"labgrid-client at {client}", required=False) if client else
              Check("labgrid", INFO, "not installed (only for --lab labgrid: boards on the lab's PCs)", install,
                    required=False)]
    ser2net = which("ser2net")
    checks.append(Check("ser2net", OK, ser2net, required=False) if ser2net else
                  Check("ser2net", INFO, "not installed (a lab PC's labgrid exporter serves its boards with it)",
                        "sudo apt-get install ser2net", required=False))
    coordinator = os.environ.get("LG_COORDINATOR")
    if client and coordinator:
        code, out = _run(run, [client, "places"], timeout=10)
        n = len([line for line in out.splitlines() if line.strip()])
        checks.append(Check("labgrid coordinator", OK, f"{coordinator}: {n} place(s)", required=False) if code == 0
                      else Check("labgrid coordinator", WARN, f"{coordinator} does not answer: "
                                 f"{(out.strip().splitlines() or ['no message'])[-1][:120]}", required=False))
    elif client:
        checks.append(Check("labgrid coordinator", INFO, "LG_COORDINATOR is not set (host:port of the lab's "
                            "coordinator)", required=False))
    return checks


def doctor(*, boards: tuple[str, ...] = FIRMWARE_BOARDS, which: Callable[[str], str | None] = shutil.which,
           run: Run = run_tool, host: Host | None = None,
           modules: Callable[[str, str], str | None] = _module_version) -> list[Check]:
    """Every check, in the order they are shown. `boards`: which boards' cores and libraries to check."""
    host = host or Host.current()
    if host.is_pi:
        return _pi_checks(which, run, host, modules)
    checks: list[Check] = []
    cli_check, cli = _check_arduino_cli(which, run, host)
    checks.append(cli_check)
    core_list = _core_versions(cli, run)
    checks += _check_cores(cli, core_list, boards)
    checks += _check_libraries(cli, run, core_list, boards)
    checks.append(_check_esptool(which, run, boards))
    checks += _check_serial(host)
    checks += _check_python(modules, host)
    checks += _check_coral(modules, host)
    checks.append(_check_edgetpu_compiler(which, host))
    checks.append(_check_arm_gcc(which, run, host))
    checks += _check_emulator(which, run, host)
    checks += _check_lab(which, run)
    return checks


def _pi_checks(which, run, host: Host, modules) -> list[Check]:
    """On the Pi (week 11): what running models here needs, and nothing of the microcontrollers'."""
    checks = [Check("this machine", OK, f"{host.board} ({host.board_why})")]
    checks += [c for c in _check_python(modules, host) if c.name != "tflite-micro"]
    checks += _check_coral(modules, host)
    checks.append(Check("Coral USB Accelerator", OK if host.coral_usb else INFO,
                        host.coral_usb or "not plugged in: `--target coral` is then simulated (`--hw` needs it)",
                        required=False))
    checks.append(Check("microcontroller tools", SKIP, "not needed on the Pi: the Nano and the ESP32-S3 are built "
                        "and flashed from a laptop or PC (run `edgekit doctor` there)", required=False))
    checks += _check_lab(which, run)
    return checks


def doctor_ok(checks: list[Check]) -> bool:
    """True when nothing required is missing (`edgekit doctor` exits 0)."""
    return all(c.ok or not c.required for c in checks)


_STYLE = {OK: "[green]ok[/green]", MISSING: "[red]missing[/red]", WARN: "[yellow]warn[/yellow]",
          INFO: "[cyan]info[/cyan]", SKIP: "[dim]skip[/dim]"}


def _fixes(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.fix and c.status != OK and not (c.status == SKIP and not c.required)]


def render_doctor(checks: list[Check]):
    """A rich renderable: the table of checks, each fix command, and the verdict. Rich wraps long
    commands at the console width; `print_doctor` prints them unwrapped, for copying."""
    from rich.console import Group
    return Group(_table(checks), *_fix_texts(checks), _verdict(checks))


def print_doctor(checks: list[Check], console=None) -> bool:
    """Print the report (what `edgekit doctor` shows); fix commands are soft-wrapped, so a copy
    from the terminal gives the whole command. Returns doctor_ok(checks): exit 0 or 1."""
    from rich.console import Console
    console = console or Console()
    console.print(_table(checks))
    for text in _fix_texts(checks):
        console.print(text, soft_wrap=True)
    console.print(_verdict(checks))
    return doctor_ok(checks)


def _table(checks: list[Check]):
    from rich.markup import escape
    from rich.table import Table
    table = Table(title="edgekit doctor", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("found")
    for c in checks:
        name = escape(c.name) + ("" if c.required else " [dim](optional)[/dim]")
        table.add_row(_STYLE.get(c.status, c.status), name, escape(c.detail))
    return table


def _fix_texts(checks: list[Check]) -> list:
    from rich.text import Text
    todo = _fixes(checks)
    if not todo:
        return []
    out = [Text("To fix, run:", style="bold")]
    for c in todo:
        out.append(Text(f"  # {c.name}{'' if c.required else ' (optional)'}", style="dim"))
        out.append(Text(f"  {c.fix}", style="bold" if c.required else ""))
    return out


def _verdict(checks: list[Check]):
    from rich.text import Text
    missing = [c for c in checks if c.required and not c.ok]
    if not missing:
        return Text("Ready: every required tool is installed.", style="green")
    return Text(f"{len(missing)} required item(s) missing: run the commands above, then `edgekit doctor` again.",
                style="red")
