"""edgekit.pi.remote: profiling on a Pi over ssh, with real subprocesses throughout.

The "Pi" is this machine: a fake `ssh` runs the remote command in a local shell (in a fake home
directory, with `python3` meaning this venv's Python, so `python3 -m edgekit` is the real edgekit)
and a fake `scp` copies the file locally. The round trip (copy, remote command line, edgekit's
JSON on stdout, its one-line errors on stderr, exit codes) is real; only the network is not.
"""
import ast
import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

import ir_models
from edgekit.errors import EdgekitError
from edgekit.pi import deploy_remote, profile_remote
from edgekit.pi.remote import remote_command

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fake ssh/scp are POSIX scripts")

HOST = "pi@fakepi"


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


# Both fakes skip ssh/scp options the way the real ones parse them (-o X, -i X, -p X, -P X, flags).
_OPTS = """
    import os, shutil, subprocess, sys, time
    args, i = sys.argv[1:], 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-o", "-i", "-p", "-P", "-F", "-l") else 1
    rest = args[i:]
"""


def fake_ssh(bin_dir: Path, home: Path, path_dirs: str, behaviour: str = "run") -> str:
    """A fake ssh: logs its argv, then (behaviour "run") runs the remote command like sshd would:
    joined with spaces, through the login shell, in the home directory."""
    return _script(bin_dir / "ssh", _OPTS + f"""
    with open({str(bin_dir / 'ssh.log')!r}, "a") as log:
        log.write(repr(args) + "\\n")
    host, command = rest[0], " ".join(rest[1:])
    behaviour = {behaviour!r}
    if behaviour == "refused":
        sys.stderr.write("ssh: connect to host fakepi port 22: Connection refused\\n"); sys.exit(255)
    if behaviour == "denied":
        sys.stderr.write(host + ": Permission denied (publickey,password).\\n"); sys.exit(255)
    if behaviour == "garbage":
        print("Linux raspberrypi 6.6.51+rpt-rpi-v8 #1 SMP PREEMPT aarch64"); print("profile done"); sys.exit(0)
    if behaviour == "slow":
        time.sleep(20); sys.exit(0)
    env = dict(os.environ, PATH={path_dirs!r}, HOME={str(home)!r})
    sys.exit(subprocess.run(["/bin/sh", "-c", command], cwd={str(home)!r}, env=env).returncode)
    """)


def fake_scp(bin_dir: Path, fail: str | None = None) -> str:
    return _script(bin_dir / "scp", _OPTS + f"""
    src, dst = rest
    host, _, path = dst.partition(":")
    if {fail!r}:
        sys.stderr.write({fail!r} + "\\n"); sys.exit(1)
    shutil.copyfile(src, path)
    """)


@pytest.fixture
def pi(tmp_path):
    """(bin dir, remote dir, kwargs for profile_remote) of a fake Pi whose python3 has edgekit."""
    bin_dir, pybin, home, remote = (tmp_path / d for d in ("bin", "pybin", "home", "remote"))
    for d in (bin_dir, pybin, home, remote):
        d.mkdir()
    (pybin / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (pybin / "python3").chmod(0o755)
    path = f"{pybin}{os.pathsep}/usr/bin{os.pathsep}/bin"
    kw = dict(host=HOST, ssh=fake_ssh(bin_dir, home, path), scp=fake_scp(bin_dir), remote_dir=str(remote),
              timeout=120)
    return bin_dir, remote, home, kw


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("model") / "cnn_int8.tflite"
    p.write_bytes(ir_models.int8(ir_models.cnn()))
    return p


def _ssh_calls(bin_dir):
    return [ast.literal_eval(line) for line in (bin_dir / "ssh.log").read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# The round trip
# ---------------------------------------------------------------------------------------------

def test_round_trip_returns_the_pis_report_labelled(pi, model_file):
    bin_dir, remote, home, kw = pi
    r = profile_remote(model_file, "rpi4", runs=3, force="sim", **kw)
    # the model arrived under its content hash, and edgekit there profiled it
    import hashlib
    sha = hashlib.sha256(model_file.read_bytes()).hexdigest()
    copied = remote / f"edgekit-{sha[:8]}.tflite"
    assert copied.read_bytes() == model_file.read_bytes()
    assert r.target == "rpi4" and r.mode == "simulated" and r.runs == 3
    assert r.model_sha256 == sha and r.latency_ms > 0
    assert r.extra["host"] == HOST and r.selected.endswith(f"on {HOST}")
    assert r.extra["remote"]["model"] == str(copied)
    d = r.to_json()  # what `edgekit profile --host ... --json` prints
    assert d["host"] == HOST and d["remote"]["model"] == str(copied)
    # the command line run there
    (argv,) = _ssh_calls(bin_dir)
    assert "BatchMode=yes" in argv and argv[-2] == HOST
    assert argv[-1] == f"python3 -m edgekit profile {copied} --target rpi4 --sim --runs 3 --json"


def test_model_bytes_and_the_coral(pi, model_file):
    _, _, _, kw = pi
    r = profile_remote(model_file.read_bytes(), "coral", runs=2, force="sim", **kw)
    assert r.target == "coral" and r.extra["host"] == HOST


def test_deploy_remote(pi, model_file):
    bin_dir, _, _, kw = pi
    r = deploy_remote(model_file, "rpi4", runs=2, force="sim", **kw)
    assert r.outputs_check["max_lsb"] <= 1 and r.extra["host"] == HOST
    assert " deploy " in _ssh_calls(bin_dir)[0][-1]


def test_the_pis_own_error_line_is_passed_through(pi, model_file):
    """--hw (the default) on a machine that is no Pi: edgekit there says so, in one line."""
    _, _, _, kw = pi
    with pytest.raises(EdgekitError) as e:
        profile_remote(model_file, "rpi4", runs=2, **kw)
    msg = str(e.value)
    assert msg.startswith(f"on {HOST}: error: --hw: this machine is not a Raspberry Pi 4") and "\n" not in msg
    assert "EDGEKIT_BOARD=rpi4" in msg


def test_command_line_quoting():
    cmd = remote_command("/tmp/my model.tflite", "rpi4", 5, python="~/edgekit/bin/python", extra=["--duration", "1m"])
    assert cmd == ("~/edgekit/bin/python -m edgekit profile '/tmp/my model.tflite' --target rpi4 --hw --runs 5 "
                   "--json --duration 1m")


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------

def test_ssh_not_installed(model_file):
    with pytest.raises(EdgekitError, match="`edgekit-no-such-ssh` is not installed.*openssh-client"):
        profile_remote(model_file, "rpi4", ssh="edgekit-no-such-ssh")


@pytest.mark.parametrize("behaviour, expect", [("refused", "refuses ssh connections"),
                                               ("denied", "ssh-copy-id pi@fakepi")])
def test_exit_255(pi, tmp_path, model_file, behaviour, expect):
    bin_dir, _, home, kw = pi
    kw["ssh"] = fake_ssh(bin_dir, home, "/usr/bin", behaviour)
    with pytest.raises(EdgekitError) as e:
        profile_remote(model_file, "rpi4", **kw)
    assert expect in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(not (shutil.which("ssh") and shutil.which("scp")), reason="needs OpenSSH")
def test_real_ssh_to_a_closed_port(model_file):
    """The real scp/ssh against localhost port 1, where nothing listens: exit 255, refused."""
    with pytest.raises(EdgekitError, match="refuses ssh connections"):
        profile_remote(model_file, "rpi4", host="pi@127.0.0.1", options=["-o", "Port=1"], timeout=30)


def test_exit_127_python_missing(pi, model_file):
    bin_dir, _, home, kw = pi
    kw["ssh"] = fake_ssh(bin_dir, home, "/nonexistent")  # the remote shell finds no python3
    with pytest.raises(EdgekitError) as e:
        profile_remote(model_file, "rpi4", **kw)
    msg = str(e.value)
    assert "edgekit is not installed on pi@fakepi (`python3` not found)" in msg and "pip install edgekit" in msg


def test_no_module_named_edgekit(pi, model_file):
    """A python3 without edgekit (this interpreter with site-packages switched off)."""
    bin_dir, _, home, kw = pi
    bare = bin_dir.parent / "bare"
    bare.mkdir()
    (bare / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    (bare / "python3").chmod(0o755)
    kw["ssh"] = fake_ssh(bin_dir, home, f"{bare}{os.pathsep}/usr/bin{os.pathsep}/bin")
    with pytest.raises(EdgekitError) as e:
        profile_remote(model_file, "rpi4", **kw)
    assert "No module named edgekit" in str(e.value) and "run `pip install edgekit` on the Pi" in str(e.value)


def test_an_old_edgekit_on_the_pi(pi, model_file):
    bin_dir, _, home, kw = pi
    old = bin_dir.parent / "old"
    old.mkdir()
    (old / "python3").write_text("#!/bin/sh\necho 'usage: edgekit [-h] COMMAND ...' >&2\n"
                                 "echo 'edgekit: error: unrecognized arguments: --hw' >&2\nexit 2\n")
    (old / "python3").chmod(0o755)
    kw["ssh"] = fake_ssh(bin_dir, home, f"{old}{os.pathsep}/usr/bin{os.pathsep}/bin")
    with pytest.raises(EdgekitError, match="pip install -U edgekit"):
        profile_remote(model_file, "rpi4", **kw)


def test_garbage_output(pi, model_file):
    bin_dir, _, home, kw = pi
    kw["ssh"] = fake_ssh(bin_dir, home, "/usr/bin", "garbage")
    with pytest.raises(EdgekitError) as e:
        profile_remote(model_file, "rpi4", **kw)
    msg = str(e.value)
    assert "no JSON profile report" in msg and "Linux raspberrypi" in msg and "ssh pi@fakepi" in msg


def test_json_that_is_no_report(pi, model_file):
    bin_dir, _, home, kw = pi
    other = bin_dir.parent / "other"
    other.mkdir()
    (other / "python3").write_text("#!/bin/sh\necho '{\"hello\": 1}'\n")
    (other / "python3").chmod(0o755)
    kw["ssh"] = fake_ssh(bin_dir, home, f"{other}{os.pathsep}/usr/bin{os.pathsep}/bin")
    with pytest.raises(EdgekitError, match="no JSON profile report"):
        profile_remote(model_file, "rpi4", **kw)


def test_timeout(pi, model_file):
    bin_dir, _, home, kw = pi
    kw.update(ssh=fake_ssh(bin_dir, home, "/usr/bin", "slow"), timeout=1)
    with pytest.raises(EdgekitError, match="took more than 1 s"):
        profile_remote(model_file, "rpi4", **kw)


def test_copy_failure(pi, model_file):
    bin_dir, _, _, kw = pi
    kw["scp"] = fake_scp(bin_dir, fail="scp: /nonexistent/edgekit-x.tflite: No such file or directory")
    with pytest.raises(EdgekitError, match="copying cnn_int8.tflite to pi@fakepi:.*failed.*No such file"):
        profile_remote(model_file, "rpi4", **kw)


def test_missing_model_file(pi, tmp_path):
    _, _, _, kw = pi
    with pytest.raises(EdgekitError, match="not found"):
        profile_remote(tmp_path / "nope.tflite", "rpi4", **kw)
