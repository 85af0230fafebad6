"""Capture when the disk fails: a file-size limit (RLIMIT_FSIZE), a full tmpfs,
a read-only disk, a failed manifest write and output paths that cannot hold files. The real CLI
runs in a child process (`python -m edgekit capture ... --sim`) with the limit set; each failure
must end in one line naming the error and the file, exit 2, the earlier recordings untouched,
and the partial one listed as incomplete with the checksum of the bytes on disk."""
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import wave

import pytest

from edgekit.capture import capture, read_recording, verify
from edgekit.capture.disk import Reserve
from edgekit.cli import main


def run_cli(folder, label, sensor="imu", count=3, fsize=None, ignore_sigxfsz=True, extra=(), target="nano33ble"):
    """`edgekit capture` in a child process, its files limited to `fsize` bytes. With SIGXFSZ ignored
    a write past the limit fails with EFBIG (CPython also ignores it at startup: a shell's
    `ulimit -f` gives EFBIG too, which ignore_sigxfsz=False shows)."""
    def limit():
        if ignore_sigxfsz:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    argv = [sys.executable, "-m", "edgekit", "capture", "--target", target, "--sim", "--sensor", sensor,
            "--label", label, "--count", str(count), "-o", str(folder), "--json", *extra]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")   # no .pyc writes to run into the limit
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, preexec_fn=limit, env=env)


def one_line_error(proc, *words):
    """Exit 2 (not 3, not a signal) with exactly one line on stderr that holds `words`."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder):
    """Every file under `folder` with its sha256."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def recordings(folder):
    return json.loads((folder / "manifest.json").read_text())["recordings"]


def check_partial(folder, before, earlier, ext, error):
    """The earlier files are untouched, the manifest lists them as before (`earlier`) plus the cut
    recording (incomplete, its checksum and size those of the bytes on disk), verify() knows it,
    and no temporary or reserve file is left."""
    now = snapshot(folder)
    assert {k: now.get(k) for k in before if k != "manifest.json"} == {k: v for k, v in before.items() if k != "manifest.json"}
    recs = recordings(folder)
    assert recs[:-1] == earlier and len(recs) == len(earlier) + 1
    cut = recs[-1]
    path = folder / cut["file"]
    assert cut["file"].endswith(ext) and cut["complete"] is False and cut["status"] == "write_failed"
    assert error in cut["reason"] and cut["file"] in cut["reason"]
    assert cut["sha256"] == sha256(path) and cut["bytes"] == path.stat().st_size
    assert 0 < cut["samples"] < cut["samples_expected"] or cut["samples_expected"] is None
    v = verify(folder)
    assert list(v) == [] and v.incomplete == [f"{cut['file']}: write_failed ({cut['reason']})"]
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    return cut, path


@pytest.mark.parametrize("sensor, ext, limit", [("imu", ".csv", 9000), ("microphone", ".wav", 20000)])
def test_file_size_limit_stops_cleanly_and_lists_the_partial_recording(tmp_path, sensor, ext, limit):
    folder = tmp_path / "data"
    capture("nano33ble", sensor, folder, label="wave", seconds=1 if sensor == "microphone" else 2, count=2)
    before, earlier = snapshot(folder), recordings(folder)
    proc = run_cli(folder, "wave", sensor, fsize=limit, extra=["--seconds", "1" if sensor == "microphone" else "2"])
    line = one_line_error(proc, "EFBIG", f"wave.3{ext}", "kept and listed as incomplete")
    cut, path = check_partial(folder, before, earlier, ext, "EFBIG")
    assert path.stat().st_size == limit and f"({limit} bytes, {cut['samples']} whole samples)" in line
    if ext == ".csv":       # the whole rows parse; the row cut by the limit is skipped
        values, t = read_recording(path)
        assert len(t) == cut["samples"] == path.read_bytes().count(b"\n") - 1 and values.shape[1] == 9
    else:                   # the header's sizes say exactly the whole samples on disk
        with wave.open(str(path)) as w:
            assert w.getnframes() == cut["samples"] == (limit - 44) // 2


def test_a_still_cut_by_the_limit_is_listed_and_an_edge_impulse_copy_is_not_left_half_written(tmp_path):
    """A camera still is saved whole at the end: cut there, it is listed with no usable pixels (and
    load_dataset leaves it out). The Edge Impulse JSON of a whole recording cut by the limit is
    removed: the recording is listed as complete, without it."""
    proc = run_cli(tmp_path / "cam", "cat", "camera", fsize=2000, target="esp32s3")
    one_line_error(proc, "writing", "cat.1.png failed: File too large (EFBIG)", "(2000 bytes, 0 whole samples)")
    (cut,) = recordings(tmp_path / "cam")
    assert cut["status"] == "write_failed" and cut["samples"] == 0 and cut["bytes"] == 2000
    assert cut["sha256"] == sha256(tmp_path / "cam" / cut["file"]) and list(verify(tmp_path / "cam")) == []
    proc = run_cli(tmp_path / "imu", "wave", fsize=20000, extra=["--format", "ei-json"])
    one_line_error(proc, "wave.1.json failed: File too large (EFBIG)", "wave/wave.1.csv itself is whole and listed")
    (whole,) = recordings(tmp_path / "imu")
    assert whole["complete"] and "ei_json" not in whole and not (tmp_path / "imu" / "wave" / "wave.1.json").exists()
    assert list(verify(tmp_path / "imu")) == []


def test_a_failed_manifest_write_keeps_the_previous_manifest(tmp_path):
    """The recording fits under the limit, the grown manifest does not: the old manifest stays,
    byte for byte, the new file is on disk and verify() reports it as not listed."""
    folder = tmp_path / "data"
    capture("nano33ble", "temperature", folder, label="warm", count=3)
    before = (folder / "manifest.json").read_bytes()
    proc = run_cli(folder, "warm", "temperature", count=2, fsize=len(before), ignore_sigxfsz=False)
    one_line_error(proc, "warm/warm.4.csv", "manifest.json failed: File too large (EFBIG)", "not listed",
                   "manifest is kept as it was, with 3 recording(s)")
    assert (folder / "manifest.json").read_bytes() == before
    assert (folder / "warm" / "warm.4.csv").exists() and not (folder / "warm" / "warm.5.csv").exists()
    assert list(verify(folder)) == ["warm/warm.4.csv: not listed in manifest.json (a recording whose entry was never written?)"]
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []   # no temporary manifest left


@pytest.mark.parametrize("where", ["/proc/edgekit-data", "/sys/edgekit-data", "a-file/data"])
def test_output_paths_that_cannot_hold_files_fail_before_recording(tmp_path, capsys, where):
    if where.startswith("/") and not os.path.ismount(os.path.dirname(where)):
        pytest.skip(f"{os.path.dirname(where)} is not mounted here")
    (tmp_path / "a-file").write_text("not a folder")
    out = where if where.startswith("/") else str(tmp_path / where)
    rc = main(["capture", "--target", "nano33ble", "--sim", "--sensor", "imu", "--label", "wave", "-o", out])
    err = capsys.readouterr().err
    assert rc == 2 and "internal error" not in err and len(err.strip().splitlines()) == 1 and f"-o {out}" in err
    assert not os.path.exists(out)


@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs mounted at tmp_path/disk (root only; skipped where mount is refused)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk, leave: int, name: str):
    """A file taking all the free space of `disk` but `leave` bytes."""
    st = os.statvfs(disk)
    filler = disk / name
    with open(filler, "xb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - leave))
    return filler


def test_full_tmpfs_stops_cleanly_and_lists_the_partial_recording(tmpfs):
    folder = tmpfs / "data"
    capture("nano33ble", "imu", folder, label="wave", count=2)
    before, earlier = snapshot(folder), recordings(folder)
    # room for the manifest's reserve, and two pages for the recording (a header and ~100 rows)
    reserve = -(-Reserve(folder / "manifest.json").size() // 4096) * 4096
    filler = fill(tmpfs, reserve + 2 * 4096, "filler")
    proc = run_cli(folder, "wave", count=5)
    one_line_error(proc, "ENOSPC", "wave.3.csv", "kept and listed as incomplete")
    cut, path = check_partial(folder, before, earlier, ".csv", "No space left on device (ENOSPC)")
    assert cut["samples"] > 50 and len(read_recording(path)[1]) == cut["samples"]
    # room for the reserve only: the next file gets no byte, so it is not kept, nor listed
    listed = (folder / "manifest.json").read_bytes()
    reserve = -(-Reserve(folder / "manifest.json").size() // 4096) * 4096
    rest = fill(tmpfs, reserve, "rest")
    one_line_error(run_cli(folder, "wave", count=1), "ENOSPC", "nothing of wave.4.csv reached the disk",
                   "the 3 recording(s) before it are kept")
    # no room even for the reserve: refused before a file is made
    last = fill(tmpfs, 0, "last")
    one_line_error(run_cli(folder, "wave", count=1), "ENOSPC", "no room for the next recording")
    assert (folder / "manifest.json").read_bytes() == listed and not (folder / "wave" / "wave.4.csv").exists()
    assert list(verify(folder)) == []
    # space again: capturing continues after the cut recording
    for f in (filler, rest, last):
        f.unlink()
    assert run_cli(folder, "wave", count=1).returncode == 0
    assert [r["n"] for r in recordings(folder)] == [1, 2, 3, 4]


def test_read_only_disk_fails_before_recording(tmpfs):
    folder = tmpfs / "data"
    capture("nano33ble", "imu", folder, label="wave", count=1)
    before = snapshot(folder)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    for label in ("wave", "punch"):       # into the existing folder, and a new label's folder
        proc = run_cli(folder, label, count=1)
        one_line_error(proc, f"-o {folder}", "read-only")
    assert snapshot(folder) == before
