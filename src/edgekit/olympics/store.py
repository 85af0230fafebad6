"""Results in SQLite: one row per submission x target x run, each signed with HMAC-SHA256.

    store = Store("results.sqlite")            # creates the file (and the key, see below) on first use
    run_id = store.start_run(track, folder, targets)   # or the unfinished run with the same arguments
    store.add(row)                             # False if (run, submission, target) is already there
    rows, refused = store.rows()               # refused: rows whose signature does not verify

Why a signature: the results file is an ordinary file that anyone with access can edit. Each row is
signed over all its columns with the course key; a row changed by hand (or written without the key)
no longer verifies, and the leaderboard refuses it. The key is
  - EDGEKIT_OLYMPICS_KEY from the environment (at least 16 characters), when set; else
  - the key file next to the database, <db>.key, created on first use with 32 random bytes and mode
    0600 (readable by its owner only); edgekit refuses a key file others can read.
Keep the key out of the results' folder when publishing it.

Concurrency: WAL mode (readers never block the writer), a 60 s busy timeout, and every insert in its
own short transaction, so two runs writing at once both keep every row. UNIQUE(run_id, submission,
target) makes a resumed run skip what it already stored instead of duplicating it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import stat
import time
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EdgekitError
from .sandbox import KEY_ENV

# The signed columns, in a fixed order (everything but the row id and the signature itself).
COLUMNS = ("run_id", "track", "submission", "team", "target", "mode", "status", "reason", "metric",
           "metric_value", "latency_ms", "flash_bytes", "ram_bytes", "arena_bytes", "energy_mj",
           "techniques", "model_sha256", "test_sha256", "firmware", "edgekit_version", "time", "detail")
_TYPES = {"metric_value": "REAL", "latency_ms": "REAL", "energy_mj": "REAL", "flash_bytes": "INTEGER",
          "ram_bytes": "INTEGER", "arena_bytes": "INTEGER"}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, track TEXT NOT NULL, submissions TEXT NOT NULL, targets TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    {", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)},
    hmac TEXT NOT NULL,
    UNIQUE (run_id, submission, target));
CREATE INDEX IF NOT EXISTS results_track ON results (track, target);
"""


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_key(db: Path) -> bytes:
    """The course key: $EDGEKIT_OLYMPICS_KEY, else <db>.key (created, mode 0600, on first use)."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env) < 16:
            raise EdgekitError(f"{KEY_ENV} is {len(env)} characters; use at least 16 (e.g. `openssl rand -hex 32`)")
        return env.encode()
    path = Path(str(db) + ".key")
    if not path.exists():
        # written whole to a private temporary file, then linked into place: two runs starting at once
        # both end up reading the one key that won, never a half-written one
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EdgekitError(f"the key file {path} can be read by others (mode {stat.S_IMODE(mode):o}); "
                           f"run `chmod 600 {path}`")
    key = path.read_text().strip()
    if len(key) < 16:
        raise EdgekitError(f"the key file {path} holds no usable key; delete it only if no results were signed "
                           "with it, or restore it")
    return key.encode()


class Store:
    def __init__(self, path: str | Path, key: bytes | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise EdgekitError(f"{self.path} is a folder; give the results database file, e.g. results.sqlite")
        if not self.path.parent.is_dir():
            raise EdgekitError(f"the folder of {self.path} does not exist; create it first")
        self.key = key or load_key(self.path)
        try:
            # autocommit (isolation_level=None): each statement is its own transaction, held briefly
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 60000")
            self._retry(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
            self._retry(lambda: self.db.executescript(SCHEMA))
        except sqlite3.DatabaseError as e:
            raise EdgekitError(f"{self.path} is not a usable results database ({e}); give another --db") from None

    @staticmethod
    def _retry(do, tries: int = 50):
        """SQLite can answer "locked" even within the busy timeout (e.g. switching to WAL): try again."""
        for i in range(tries):
            try:
                return do()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or i == tries - 1:
                    raise
                time.sleep(0.05 * (i + 1))

    def close(self) -> None:
        self.db.close()

    # -- signatures ------------------------------------------------------------------------------
    def sign(self, row: dict) -> str:
        message = json.dumps([row.get(c) for c in COLUMNS], separators=(",", ":"))
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()

    def verifies(self, row: dict) -> bool:
        return hmac.compare_digest(self.sign(row), row.get("hmac") or "")

    # -- runs ------------------------------------------------------------------------------------
    def start_run(self, track: str, submissions: str, targets: list[str]) -> tuple[str, bool]:
        """(run_id, resumed): the unfinished run with these arguments if there is one, else a new run."""
        key = (track, submissions, ",".join(targets))
        found = self.db.execute("SELECT run_id FROM runs WHERE track = ? AND submissions = ? AND targets = ? "
                                "AND finished IS NULL ORDER BY started DESC LIMIT 1", key).fetchone()
        if found:
            return found[0], True
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
        self._retry(lambda: self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL)", (run_id, *key, now())))
        return run_id, False

    def finish_run(self, run_id: str) -> None:
        self._retry(lambda: self.db.execute("UPDATE runs SET finished = ? WHERE run_id = ?", (now(), run_id)))

    def done(self, run_id: str) -> set[tuple[str, str]]:
        """(submission, target) pairs this run has stored already."""
        return set(self.db.execute("SELECT submission, target FROM results WHERE run_id = ?", (run_id,)))

    # -- results ---------------------------------------------------------------------------------
    def add(self, row: dict) -> bool:
        """Sign and insert one result; False if this run already holds it (a resumed run)."""
        row = {c: row.get(c) for c in COLUMNS}
        for c in ("techniques", "detail"):
            if not isinstance(row[c], str):
                row[c] = json.dumps(row[c], sort_keys=True)
        for c, kind in _TYPES.items():  # sign what SQLite will give back (5 stored as REAL reads 5.0)
            if row[c] is not None:
                row[c] = float(row[c]) if kind == "REAL" else int(row[c])
        row["hmac"] = self.sign(row)
        cols = list(COLUMNS) + ["hmac"]
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            self._retry(lambda: self.db.execute(sql, [row[c] for c in cols]))
        except sqlite3.IntegrityError:
            return False
        return True

    def rows(self, track: str | None = None) -> tuple[list[dict], int]:
        """(rows whose signature verifies, number refused), oldest first."""
        sql = f"SELECT id, {', '.join(COLUMNS)}, hmac FROM results"
        cur = self.db.execute(sql + (" WHERE track = ?" if track else "") + " ORDER BY time, id",
                              (track,) if track else ())
        names = [d[0] for d in cur.description]
        good, refused = [], 0
        for values in cur:
            row = dict(zip(names, values))
            if not self.verifies(row):
                refused += 1
                continue
            row["techniques"] = json.loads(row["techniques"] or "[]")
            row["detail"] = json.loads(row["detail"] or "{}")
            good.append(row)
        return good, refused

    def tracks(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT track FROM results ORDER BY track")]
