"""edgekit's firmware: a model turned into a ready-to-build Arduino sketch, built and flashed with
arduino-cli (and esptool for the ESP32-S3), and `doctor`, which checks the tools for all of that.

    from edgekit.sketch import generate_project, build_and_flash, doctor
    project = generate_project(tflite_bytes, "nano33ble", "out/digits_nano")
    result = build_and_flash(project, "nano33ble", progress=print)   # result.port: the sketch's port

The sketches themselves live in firmware/ at the repository root (firmware/<board>/<board>.ino and
firmware/common/edgekit_protocol.{h,cpp}); `firmware_dir()` finds them.
"""
from .build import FlashResult, ToolMissing, build_and_flash, build_commands
from .generate import (ArenaBudget, Project, arena_budget, firmware_dir, generate_project,
                       model_ops, OP_METHODS)

__all__ = ["ArenaBudget", "Check", "FlashResult", "Host", "OP_METHODS", "Project", "ToolMissing",
           "arena_budget", "build_and_flash", "build_commands", "doctor", "doctor_ok", "firmware_dir",
           "generate_project", "model_ops", "print_doctor", "render_doctor"]
