"""The fork server: `python -m edgekit.olympics.forkserver`, started once per run slot (sandbox.Zygote).

A fresh worker pays Python, numpy, LiteRT, TFLite Micro and edgekit's imports before it reads its
job, which is more than most evaluations take (bench/olympics.py: 0.57 s per evaluation that way,
0.12 s forked from here). So this process pays them once and forks
a fresh child per job: the child starts its own session, sets the job's limits and runs
worker.main, exactly as a worker started from scratch would. Each submission still gets a process
of its own, with its limits; this server never reads a submitted byte, and each child starts from
its clean state, not from a previous submission's.

One job at a time, one JSON line each way on stdin/stdout:
  -> {"work": folder, "memory_mb": M, "seconds": S}
  <- {"pid": P}         as the child starts (the run kills its group on a timeout or Ctrl-C)
  <- {"exit": code}     when it ended: negative for a signal, as subprocess's returncode
"""
from __future__ import annotations

import json
import os
import sys
import traceback

from ..runtime import litert
from . import sandbox, worker


def preload() -> None:
    """Import now what every evaluation imports later."""
    import onnx  # noqa: F401 - lazy: what an ONNX submission's worker imports, here once
    litert.interpreter_module()
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401 - lazy: the microcontrollers' runtime, here once
    except ImportError:  # not on this platform: the worker says so per evaluation
        pass


def child(request: dict) -> None:
    """In the forked child: become the worker of this job, never return."""
    code = 1
    try:
        os.setsid()  # its own group: the run kills it and whatever it started at once
        sandbox.limits_applier(request["memory_mb"], request["seconds"])()
        work = request["work"]
        os.chdir(work)
        log = os.open(os.path.join(work, "worker.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the server's pipes are no business of the child
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = worker.main([work])
    except BaseException:  # noqa: BLE001 - said in the log, which the run reads back
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def serve(requests, replies) -> None:
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"exit": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


if __name__ == "__main__":
    preload()
    serve(sys.stdin, sys.stdout)
