"""The Coral Edge TPU: which ops map, where parameters go, and the real compiler when it is there.

    from edgekit.edgetpu import predict, compile, parse_log, from_compiled_model
    p = predict(model_bytes)                  # from the documented rules (rules.py)
    path, log = compile("m.tflite", "out/")   # edgetpu_compiler -s (x86-64 Linux only; compiler.py)
    p.mapped_ops, p.cpu_ops, p.subgraphs, p.on_chip_bytes, p.off_chip_bytes   # same fields on both
"""
from .compiler import (CompileLog, compile, compile_model, edgetpu_compiler_available, from_compiled_model,
                       parse_log)
from .rules import RULES, OpPlacement, Partition, predict

# `compile` is importable by name but left out of __all__, so a star import does not shadow the builtin
__all__ = ["CompileLog", "OpPlacement", "Partition", "RULES", "compile_model", "edgetpu_compiler_available",
           "from_compiled_model", "parse_log", "predict"]
