"""A model turned into a ready-to-build Arduino sketch for a board (generate), built and flashed with
arduino-cli and esptool (build). The C++ itself is the data package edgekit.firmware (firmware/
at the repository root: firmware/<board>/<board>.ino and firmware/common/); `firmware_dir()` finds it.

    from edgekit.sketch import generate_project, build_and_flash
    project = generate_project(tflite_bytes, "nano33ble", "out/digits_nano")
    result = build_and_flash(project, "nano33ble", progress=print)   # result.port: the sketch's port
"""
from .build import FlashResult, ToolMissing, build_and_flash, build_commands
from .generate import OP_METHODS, arena_budget, firmware_dir, generate_project, model_ops
from .project import ArenaBudget, Project

__all__ = ["ArenaBudget", "FlashResult", "OP_METHODS", "Project", "ToolMissing", "arena_budget",
           "build_and_flash", "build_commands", "firmware_dir", "generate_project", "model_ops"]
