"""Run a command as a grandchild and write its wall time and own rusage (os.wait4) as JSON.

    python -I -S launch.py RESULT.json CMD ARG...

Why not Popen + os.wait4 straight from bench/peers.py: on Linux a child's ru_maxrss starts from the
peak RSS of the process it was forked from (carried over by exec), so every child of the big
benchmark process would report at least the benchmark's own peak. Forked from this tiny process
instead, a child's floor is this process's few MB.
"""
import os
import sys
import time

result, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as f:
    f.write('{"wall_s": %r, "peak_rss_mb": %r, "cpu_s": %r, "returncode": %d}'
            % (wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, code))
sys.exit(0 if code == 0 else 1)
