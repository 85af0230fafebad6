"""A capture session: K labelled recordings from one sensor into data/<label>/<label>.<n>.<ext>.

    entries = capture("nano33ble", "imu", "data", label="wave", rate=100, seconds=2, count=20)

Each recording: a countdown, `stream` on the board, every frame checked (frames.FrameCheck) and
its samples written and flushed at once (writers.py), then the manifest (manifest.py) rewritten
atomically with the recording's counts and checksum. Ctrl-C or a disconnect keeps what arrived,
marks the recording incomplete in the manifest, and ends the session (KeyboardInterrupt /
BoardGone are raised again after the manifest is saved). So does a write failure (a full disk, a
file-size limit): the bytes on disk stay, listed as incomplete ("write_failed"), and the session
ends with CaptureStopped, one line naming the file and the error (disk.py). Everything a user can
get wrong (sensor, rate, label, folder) is checked before anything is written.
"""
from __future__ import annotations

import math
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from ..errors import EdgekitError
from ..protocol import BoardClient, BoardError, BoardGone, BoardReplyError, BoardTimeout
from ..protocol.wire import VIRTUAL_FIRMWARE
from ..targets import choose, is_sim_url, load_board
from .disk import WriteFailed, prepare_folder, what_to_do
from .frames import WRAP, FrameCheck
from .manifest import Manifest, sha256_file
from .sensors import Request, pixels_per_still, plan
from .writers import CsvWriter, StillWriter, WavWriter, write_ei_json

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SHORTFALL = 0.01      # an achieved rate more than 1% under the requested one is reported


class CaptureStopped(EdgekitError):
    """A write failure ended the capture; the message says what is on disk and what is listed."""


class Progress:
    """What a session tells its user; the CLI shows it with rich. Every method may be left out."""

    def countdown(self, index: int, count: int, seconds_left: int) -> None: ...

    def begin(self, index: int, count: int, path: Path, samples: int) -> None: ...

    def update(self, samples: int, rate_hz: float | None, lost_frames: int) -> None: ...

    def end(self, entry: dict) -> None: ...


def check_label(label: str) -> str:
    if not label or not LABEL_RE.match(label):
        raise EdgekitError(f"--label {label!r}: use letters, digits, '_' and '-' (it names a folder and files), "
                           "e.g. --label wave")
    return label


def check_folder(out: Path) -> None:
    """The output folder exists and is writable, or can be made: checked without writing anything."""
    if out.exists() and not out.is_dir():
        raise EdgekitError(f"-o {out}: that is a file, not a folder; give a folder for the data set, e.g. -o data/")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        why = "read-only file system" if probe.is_dir() and os.statvfs(probe).f_flag & os.ST_RDONLY else "permission denied"
        raise EdgekitError(f"-o {out}: cannot write in {probe} ({why}); choose a folder you can "
                           "write to, e.g. -o ~/week4/data")


def sim_url(target: str, label: str | None = None, seed: int = 0, recording: int = 0,
            revision: str | None = None, faults: str = "") -> str:
    """The sim:// URL of a virtual board whose simulated sensors show `label`."""
    q = {"seed": seed, "recording": recording}
    if label:
        q["label"] = label
    if revision:
        q["revision"] = revision
    return f"sim://{target}?{urlencode(q)}" + (f"&{faults}" if faults else "")


def open_board(target: str, force: str | None = None, port: str | None = None, timeout: float | None = None,
               **sim):
    """(BoardClient, mode, how): the port given (or $EDGEKIT_PORT), else the connected board (unless
    force="sim"), else the virtual board, as edgekit.targets.choose decides for every board command.
    mode is "measured" for a board, "simulated" for a virtual one."""
    def client(p):
        return BoardClient(p) if timeout is None else BoardClient(p, timeout=timeout)
    if port is not None and not isinstance(port, str):  # an open port (tests, bench)
        name = str(getattr(port, "port", port))
        mode = "simulated" if is_sim_url(name) else "measured"
        return client(port), mode, f"{target}: {mode} via {name.split('?')[0]}"
    board = load_board(target)
    choice = choose(board, force, port)
    if choice.connection is not None:
        return client(choice.connection.device), choice.mode, choice.why
    if choice.port:
        c = client(choice.port)
        if not choice.simulated and str(c.info().get("firmware", "")).startswith(VIRTUAL_FIRMWARE):
            # a virtual board behind a real port (`edgekit board serve`): what it streams is simulated
            return c, "simulated", f"{board.key}: simulated by the virtual board at {choice.port.split('?')[0]}"
        return c, choice.mode, choice.why
    return client(sim_url(target, **sim)), choice.mode, choice.why


def _ext(req: Request, image: str) -> str:
    if req.sensor.name == "microphone":
        return "wav"
    if req.sensor.name == "camera":
        return "jpg" if image == "jpeg" else "png"
    return "csv"


class Session:
    def __init__(self, target: str, sensor: str, out: str | Path, label: str, rate: float | None = None,
                 seconds: float = 2.0, count: int = 1, channels=None, ei_json: bool = False,
                 image: str = "png", seed: int = 0, force: str | None = None, port: str | None = None,
                 revision: str | None = None, countdown: float | None = None, progress: Progress | None = None,
                 faults: str = "", mode: str | None = None, timeout: float | None = None):
        self.board = load_board(target)
        self.req = plan(self.board, sensor, rate, seconds, channels, revision)
        self.label = check_label(label)
        if count < 1:
            raise EdgekitError(f"--count {count}: give at least 1 recording")
        if image not in ("png", "jpeg"):
            raise EdgekitError(f"image format {image!r}: use png or jpeg")
        self.out = Path(out).expanduser()
        check_folder(self.out)
        self.manifest = Manifest(self.out)      # reads (and checks) an existing manifest
        self.count, self.ei_json, self.image, self.seed = count, ei_json, image, seed
        self.force, self.port, self.revision, self.faults = force, port, revision, faults
        self.countdown_s = countdown
        self.progress = progress or Progress()
        self.mode_override = mode
        self.timeout = timeout
        self.folder = self.out / self.label
        self.client = None
        self.listed: list[dict] = []           # the entries this session added to the manifest

    # -- the session ------------------------------------------------------------------------------
    def run(self) -> list[dict]:
        first = self.manifest.next_number(self.label)
        self.client, self.mode, self.how = open_board(
            self.board.key, self.force, self.port, label=self.label, seed=self.seed, recording=first - 1,
            revision=self.revision, faults=self.faults, timeout=self.timeout)
        if self.mode_override:
            self.mode = self.mode_override
        entries = []
        try:
            self.info = self._info()
            prepare_folder(self.out, self.folder)     # /proc/d, a read-only disk: one line, before recording
            countdown = self.countdown_s if self.countdown_s is not None else (3 if self.mode == "measured" else 0)
            for i in range(self.count):
                for left in range(int(math.ceil(countdown)), 0, -1):
                    self.progress.countdown(i, self.count, left)
                    time.sleep(1)
                self._hold_room()
                entry = self.record(self.manifest.next_number(self.label), i)
                entries.append(entry)
                if entry.get("error"):
                    raise entry.pop("_raise")
        finally:
            self.manifest.room.release()
            self.client.close()
        return entries

    def _hold_room(self) -> None:
        """Set aside the room the manifest needs after the next recording (disk.Reserve)."""
        try:
            self.manifest.room.hold()
        except WriteFailed as e:
            raise CaptureStopped(f"no room for the next recording: {e}; {self._kept()}; "
                                 f"{what_to_do(e.cause)} and capture again") from None

    def _kept(self) -> str:
        n = len(self.manifest.recordings)
        return f"the {n} recording(s) before it are kept and listed in {self.manifest.path}" if n else "nothing was recorded"

    def _info(self) -> dict:
        """The board's info% (for the firmware version). A board that does not know info% does not
        run edgekit's firmware; a link too noisy to read it still lets us record (the frames
        carry CRCs), with the firmware unknown."""
        try:
            return self.client.info()
        except BoardReplyError as e:
            raise EdgekitError(f"the board at {self.client.port} does not run edgekit's firmware ({e.reply}); "
                               f"add --flash to build and flash it with the board's sensors, then capture") from None
        except BoardError as e:
            return {"firmware": None, "info_error": str(e)}

    def _start(self):
        """`stream` on the board. Its start line can be garbled on a noisy link (the client then
        times out while the board streams): stop the board and ask again, twice at most."""
        req = self.req
        for attempt in range(3):
            try:
                return self.client.stream(req.sensor.name, req.stream_rate, req.samples, req.channels)
            except BoardReplyError as e:
                if "Unknown sensor" in str(e) and self.mode == "measured":
                    raise EdgekitError(f"the firmware on {self.client.port} has no '{req.sensor.name}' stream (it was "
                                       "built without the board's sensors, e.g. by edgekit deploy): add --flash to "
                                       "build and flash edgekit's firmware with them") from None
                raise
            except BoardError:
                if attempt == 2:
                    raise
                try:
                    self.client.command("stop")
                except BoardError:
                    pass  # it may have ended on its own: the next command drains what is left

    def record(self, n: int, index: int = 0) -> dict:
        """One recording; returns its manifest entry (already saved)."""
        req, ch = self.req, len(self.req.names)
        stream = self._start()
        path = self.folder / f"{self.label}.{n}.{_ext(req, self.image)}"
        writer = self._writer(path)
        check = FrameCheck(req.stream_rate, ch)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.progress.begin(index, self.count, path, req.samples)
        kept = [] if self.ei_json else None
        written = 0
        origin = None                     # device time of sample 0
        first_t = last_t = None           # (sample number, device time) of the first/last frame written
        frames = 0                        # frames wholly on disk
        status, error = "complete", None
        failed = False                    # a write failed: nothing more goes to the file

        def on_disk(step, *args):
            nonlocal failed
            try:
                step(*args)
            except OSError as e:
                failed = True
                raise WriteFailed("writing", path, e) from None

        def write(frame):
            nonlocal written, frames, origin, first_t, last_t
            if failed:
                return
            raw = np.frombuffer(frame.payload, "<i2").reshape(-1, ch)
            k0 = frame.seq * check.per_frame
            due0 = (k0 * 1000000) // req.stream_rate      # sample k is due floor(k * 1e6 / rate) after start
            if origin is None:
                origin = (frame.t_us - due0) % WRAP
            if isinstance(writer, StillWriter):
                writer.put(k0, raw)
            elif isinstance(writer, WavWriter):
                on_disk(writer.write, None, raw)     # a WAV's samples are evenly spaced by definition
            else:
                offsets = (np.arange(k0, k0 + len(raw)) * 1000000) // req.stream_rate - due0
                on_disk(writer.write, ((frame.t_us - origin) % WRAP) + offsets, raw)
            if kept is not None:
                kept.append(raw.copy())
            written += len(raw)
            frames += 1
            if first_t is None:
                first_t = (k0, frame.t_us)
            last_t = (k0, frame.t_us)

        try:
            try:
                on_disk(writer.start)
                for frame in stream:
                    for f in check.feed(frame):
                        write(f)
                    lost = check.gaps + stream.corrupted
                    self.progress.update(written, _rate(first_t, last_t), lost)
            finally:
                for f in check.finish():
                    write(f)
        except KeyboardInterrupt as e:
            status, error = "interrupted", e
            _stop(stream)
        except WriteFailed as e:
            status, error = "write_failed", e
            _stop(stream)
        except BoardGone as e:
            status, error = "disconnected", e
        except BoardTimeout as e:
            # every frame came but the end-of-stream lines were garbled: the recording is whole
            last = check.expected_frames(req.samples)
            if last is None or check.last is None or check.last.seq + 1 < last:
                status, error = "failed", e
        except BoardError as e:          # a stall (timeout) or a reset in the middle
            status, error = "failed", e
        finally:
            if status != "write_failed":
                try:
                    writer.close()            # a still is saved here, so this too can fail
                except OSError as e:
                    status, error = "write_failed", WriteFailed("writing", path, e)
            if status == "write_failed":
                written = writer.abandon()    # the whole samples that reached the disk
        if status == "write_failed" and path.stat().st_size == 0:
            path.unlink()                     # nothing reached the disk: no empty file, no entry
            raise CaptureStopped(f"{error}; nothing of {path.name} reached the disk, so it is not kept; "
                                 f"{self._kept()}; {what_to_do(error.cause)} and capture again")

        sent = stream.sent
        if status == "complete":
            sent = check.expected_frames(req.samples)     # what a stream run to its end sends
        trailing = check.trailing(sent)
        achieved = _rate(first_t, last_t)
        if achieved is not None and req.sensor.name == "camera":
            achieved /= pixels_per_still(req.sensor)
        if status == "complete":
            expected_samples = req.samples
        elif sent is not None and check.per_frame:
            expected_samples = min(req.samples, sent * check.per_frame)
        else:
            expected_samples = None
        entry = {
            "file": path.relative_to(self.out).as_posix(), "label": self.label, "n": n,
            "sensor": req.sensor.name, "board": self.board.key, "board_name": self.board.name,
            "part": req.sensor.part, "revision": req.sensor.revision or self.revision,
            "firmware": self.info.get("firmware"), "mode": self.mode, "via": self.how,
            "channels": req.names, "units": req.units, "scales": req.scales,
            "rate_requested": req.rate, "rate_achieved": None if achieved is None else round(achieved, 3),
            "rate_unit": "stills/s" if req.sensor.name == "camera" else "Hz",
            "seconds_requested": req.seconds if req.sensor.name != "camera" else None,
            "samples": written, "samples_expected": expected_samples,
            "lost_samples": None if expected_samples is None else expected_samples - written,
            "frames_sent": sent, "frames_written": frames,
            "gaps": check.gaps + (trailing if status == "complete" else 0),
            "crc_failures": stream.corrupted, "header_errors": check.header_errors,
            "garbage_lines": stream.stats["garbage"],
            "complete": status == "complete", "status": status, "started": started,
        }
        if status == "interrupted":
            entry["frames_after_interrupt"] = trailing
        if status in ("disconnected", "failed", "write_failed"):
            entry["reason"] = str(error)
        if self.mode == "simulated":
            entry["seed"] = self.seed
        entry["shortfall"] = bool(achieved is not None and achieved < req.rate * (1 - SHORTFALL))
        entry["sha256"], entry["bytes"] = sha256_file(path), path.stat().st_size
        if kept is not None and req.sensor.name != "camera" and status != "write_failed":
            try:
                entry["ei_json"] = self._write_ei(path, kept, entry)
            except WriteFailed as e:     # the recording is whole and gets listed; its JSON copy is not
                error = CaptureStopped(f"{e}; {entry['file']} itself is whole and listed in {self.manifest.path}; "
                                       f"{what_to_do(e.cause)} and capture again")
        self._list(entry, error)
        self.progress.end(entry)
        if status == "write_failed":
            error = CaptureStopped(f"{error}; what reached the disk ({entry['bytes']} bytes, {written} whole samples) "
                                   f"is kept and listed as incomplete (write_failed) in {self.manifest.path}; "
                                   f"{what_to_do(error.cause)} and capture again")
        if error is not None:
            entry["error"], entry["_raise"] = True, error
        return entry

    def _list(self, entry: dict, error) -> None:
        """Add `entry` to the manifest; if even that write fails, say so (the old manifest stays)."""
        try:
            self.manifest.add(entry)
            self.listed.append(entry)
        except WriteFailed as e:
            cut = f"{error}, and " if isinstance(error, WriteFailed) else f"{entry['file']} was recorded but "
            raise CaptureStopped(f"{cut}{e}: {entry['file']} ({entry['samples']} samples) is on disk but not listed; "
                                 f"the manifest is kept as it was, with {len(self.manifest.recordings)} recording(s); "
                                 f"{what_to_do(e.cause)} and capture again") from None

    def _writer(self, path: Path):
        req = self.req
        try:
            if req.sensor.name == "microphone":
                return WavWriter(path, req.stream_rate)
            if req.sensor.name == "camera":
                w, h = req.sensor.frame_size or (96, 96)
                return StillWriter(path, w, h, self.image)
            return CsvWriter(path, req.names, req.units, req.scales)
        except FileExistsError:
            raise EdgekitError(f"{path} appeared while recording (another capture into the same folder?); "
                               "nothing was overwritten: run again") from None
        except OSError as e:
            raise CaptureStopped(f"{WriteFailed('creating', path, e)}; {self._kept()}; "
                                 f"{what_to_do(e)} and capture again") from None

    def _write_ei(self, path: Path, kept: list, entry: dict) -> dict:
        raw = np.concatenate(kept) if kept else np.zeros((0, len(self.req.names)), dtype=np.int16)
        audio = self.req.sensor.name == "microphone"
        values = raw if audio else raw * np.asarray(self.req.scales)
        units = ["wav"] if audio else self.req.units
        ei = path.with_suffix(".json")
        write_ei_json(ei, f"edgekit {self.board.key}", self.board.key.upper(), self.req.stream_rate,
                      self.req.names, units, values)
        return {"file": ei.relative_to(self.out).as_posix(), "sha256": sha256_file(ei)}


def _stop(stream) -> None:
    """Ask the board to stop streaming; one that is gone or garbled has stopped anyway."""
    try:
        stream.stop()
    except (BoardError, OSError):
        pass


def _rate(first, last) -> float | None:
    """Samples per second between two frames, from the board's own timestamps."""
    if first is None or last is None or last[0] == first[0]:
        return None
    dt = (last[1] - first[1]) % WRAP
    return (last[0] - first[0]) * 1e6 / dt if dt else None


def capture(target: str, sensor: str, out: str | Path = "data", label: str = "idle", **options) -> list[dict]:
    """Record `count` labelled recordings (see Session for the options); returns the manifest entries."""
    return Session(target, sensor, out, label, **options).run()
