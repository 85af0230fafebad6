"""Profiling on a Raspberry Pi over ssh, from a laptop: the Pi needs only `pip install edgekit`.

    report = profile_remote("m_edgetpu.tflite", "coral", host="pi@raspberrypi.local", runs=50)

1. scp MODEL HOST:/tmp/edgekit-<sha256[:8]>.tflite
2. ssh HOST python3 -m edgekit profile /tmp/edgekit-<sha8>.tflite --target TARGET --hw --runs N --json
3. the JSON report printed there comes back, labelled with the host ("host", "remote", and
   " on HOST" after "selected").

ssh and scp run with BatchMode (never a password prompt: key login, `ssh-copy-id HOST`) and a
connect timeout. Every failure is one line: ssh missing, host unreachable or login refused
(ssh's exit 255), edgekit missing on the Pi (exit 127, "No module named edgekit"), edgekit's own
`error: ...` line from the Pi (passed through), or output that is no JSON report.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import EdgekitError
from ..profile_report import ProfileReport

DEFAULT_HOST = "pi@raspberrypi.local"
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")
REMOTE_PYTHON_FLAG = "--remote-python"   # the CLI option that sets `python` (see the wiring notes)
INSTALL_ON_PI = ("run `pip install edgekit` on the Pi (on Raspberry Pi OS 12+, in a venv: `python3 -m venv "
                 f"~/edgekit && ~/edgekit/bin/pip install edgekit`, then add {REMOTE_PYTHON_FLAG} ~/edgekit/bin/python)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EdgekitError(f"`{name}` is not installed (or not on PATH), and edgekit needs it to {what}: install "
                           "the OpenSSH client (Debian/Ubuntu: `sudo apt-get install openssh-client`; Windows: "
                           "Settings > Optional features > OpenSSH Client; macOS ships it)")
    return path


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in _ANSI.sub("", text or "").splitlines() if ln.strip()]


def _connection_error(host: str, rc: int, stderr: str) -> EdgekitError | None:
    """ssh's own failures (exit 255, or scp relaying them): unreachable, refused, no login."""
    lines = _lines(stderr)
    text = " ".join(lines)
    ssh_line = next((ln for ln in lines if ln.startswith("ssh:")), None)
    hint = None
    if "Could not resolve hostname" in text:
        hint = (f"cannot find {host.split('@')[-1]}: check the name (.local names need mDNS, avahi-daemon on "
                "the Pi) or use the Pi's IP address")
    elif "Permission denied" in text or "Too many authentication failures" in text:
        hint = (f"{host} refused the login (edgekit never types passwords): set up key login with "
                f"`ssh-copy-id {host}`, then check that `ssh {host} true` asks for nothing")
    elif "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        hint = f"ssh does not know {host}'s host key yet (or it changed): run `ssh {host}` once and answer yes"
    elif "Connection refused" in text:
        hint = (f"{host} refuses ssh connections: enable SSH on the Pi (`sudo raspi-config`, Interface Options, "
                "SSH) or check the port")
    elif any(s in text for s in ("timed out", "No route to host", "Network is unreachable", "Host is down")):
        hint = f"{host} is unreachable: is the Pi powered, booted and on the same network as this machine?"
    elif rc == 255:
        hint = (f"ssh to {host} failed ({ssh_line or (lines[-1] if lines else 'exit 255')}): check that the Pi is "
                f"on and reachable, and that `ssh {host} true` logs in without a password")
    if hint is None:
        return None
    return EdgekitError(hint if ssh_line is None or ssh_line in hint else f"{hint} ({ssh_line})")


def _remote_failure(host: str, rc: int, stdout: str, stderr: str, python: str) -> EdgekitError:
    lines = _lines(stderr)
    text = "\n".join(lines)
    conn = _connection_error(host, rc, stderr) if rc == 255 else None
    if conn is not None:
        return conn
    if rc == 127 or re.search(r"No module named '?edgekit'?(\s|$)", text):
        why = f"`{python}` not found" if rc == 127 else "No module named edgekit"
        return EdgekitError(f"edgekit is not installed on {host} ({why}): {INSTALL_ON_PI}")
    if "No module named edgekit.__main__" in text or re.search(r"usage: edgekit", text) and "error:" in text:
        said = next((ln for ln in reversed(lines) if "error:" in ln), lines[-1] if lines else "")
        return EdgekitError(f"the edgekit on {host} does not understand this command ({said}): update it there "
                            "with `pip install -U edgekit`")
    said = next((ln for ln in reversed(lines) if ln.startswith(("error:", "internal error:"))), None)
    if said is not None:  # edgekit's own one-line error, passed through
        return EdgekitError(f"on {host}: {said}")
    last = lines[-1] if lines else (_lines(stdout)[-1] if _lines(stdout) else "no output")
    return EdgekitError(f"edgekit on {host} failed (exit {rc}): {last}")


def _parse_report(host: str, stdout: str, command: str) -> ProfileReport:
    text = stdout.strip()
    start = text.find("{")
    report = None
    if start >= 0:
        try:
            report, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            report = None
    try:
        return ProfileReport.from_json(report)
    except (TypeError, ValueError):
        got = " ".join(text.split())[:80] or "nothing"
        raise EdgekitError(f"edgekit on {host} answered with no JSON profile report (got: {got!r}); run the "
                           f"command there to see why: ssh {host} {shlex.quote(command)}") from None


def _run(argv: list[str], timeout: float, what: str, host: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{what} on {host} took more than {timeout:g} s and was stopped: check the Pi "
                           "(`ssh {host} uptime`), or allow more time / fewer --runs".replace("{host}", host)) from None
    except OSError as e:
        raise EdgekitError(f"cannot run {argv[0]}: {e.strerror or e}; check the ssh installation") from None


def remote_command(remote_path: str, target: str, runs: int, *, command: str = "profile", force: str = "hw",
                   python: str = "python3", extra: Sequence[str] = ()) -> str:
    """The command line run on the Pi (one string: ssh hands it to the remote login shell)."""
    if command not in ("profile", "deploy"):
        raise ValueError(command)
    if force not in ("hw", "sim"):
        raise ValueError(force)
    # python stays unquoted, so ~/venv/bin/python still expands on the Pi
    argv = ["-m", "edgekit", command, remote_path, "--target", target, f"--{force}", "--runs", str(int(runs)),
            "--json", *extra]
    return " ".join([python] + [shlex.quote(a) for a in argv])


def profile_remote(model_path, target: str, host: str = DEFAULT_HOST, runs: int = 50, ssh: str = "ssh",
                   scp: str = "scp", timeout: float = 600.0, *, command: str = "profile", force: str = "hw",
                   python: str = "python3", remote_dir: str = "/tmp", options: Sequence[str] = (),
                   copy_timeout: float = 120.0, extra: Sequence[str] = ()) -> ProfileReport:
    """Profile (or deploy, command="deploy") a model on the Pi at `host`; the Pi's report, labelled.

    model_path: a .tflite file, or the model's bytes (e.g. converted here first). ssh/scp: the
    programs (names on PATH or paths). timeout: seconds for the run on the Pi; copy_timeout: for
    scp. force: "hw" (the board, as the brief's command line) or "sim". python: the Pi's Python
    with edgekit (a venv's python, e.g. ~/edgekit/bin/python). options: extra arguments given to
    both ssh and scp (e.g. ["-o", "Port=2222"] or ["-i", "~/.ssh/pi_key"]). extra: more arguments
    for the remote edgekit command (e.g. ["--duration", "10m"]).
    """
    ssh_path = _tool(ssh, "reach the Pi")
    scp_path = _tool(scp, "copy the model to the Pi")
    if isinstance(model_path, (bytes, bytearray)):
        data, label = bytes(model_path), "model"
    else:
        path = Path(model_path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise EdgekitError(f"{path} not found; check the path") from None
        except OSError as e:
            raise EdgekitError(f"cannot read {path}: {e.strerror or e}") from None
        label = path.name
    if int(runs) < 1:
        raise EdgekitError(f"--runs must be 1 or more, not {runs}")
    sha8 = hashlib.sha256(data).hexdigest()[:8]
    remote_path = f"{remote_dir.rstrip('/') or ''}/edgekit-{sha8}.tflite"
    opts = [*SSH_OPTIONS, *options]

    with tempfile.TemporaryDirectory(prefix="edgekit-remote-") as tmp:
        local = Path(tmp) / f"edgekit-{sha8}.tflite"
        local.write_bytes(data)
        done = _run([scp_path, *opts, str(local), f"{host}:{remote_path}"], copy_timeout, "copying the model", host)
    if done.returncode != 0:
        err = _connection_error(host, done.returncode, done.stderr)
        if err is not None:
            raise err
        last = (_lines(done.stderr) or [f"exit {done.returncode}"])[-1]
        raise EdgekitError(f"copying {label} to {host}:{remote_path} failed ({last}); check that {remote_dir} "
                           "exists on the Pi and has free space")

    cmd = remote_command(remote_path, target, runs, command=command, force=force, python=python, extra=extra)
    done = _run([ssh_path, *opts, host, cmd], timeout, f"`edgekit {command}`", host)
    if done.returncode != 0:
        raise _remote_failure(host, done.returncode, done.stdout, done.stderr, python)
    report = _parse_report(host, done.stdout, cmd)
    if report.selected:
        report.selected = f"{report.selected} on {host}"
    report.extra.update(host=host, remote={"host": host, "model": remote_path, "command": cmd,
                                           "model_sha256": hashlib.sha256(data).hexdigest()})
    return report


def deploy_remote(model_path, target: str, host: str = DEFAULT_HOST, runs: int = 50, **kwargs) -> ProfileReport:
    """`edgekit deploy` on the Pi at `host` (see profile_remote)."""
    return profile_remote(model_path, target, host, runs, command="deploy", **kwargs)
