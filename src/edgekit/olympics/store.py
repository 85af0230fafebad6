"""Results in SQLite, kept as a signed hash chain, so any change to the record shows.

    store = Store("results.sqlite", create=True)   # a run: may make the key, if the store is empty
    store = Store("results.sqlite")                # everything else: the key must be there
    run_id, resumed = store.start_run(track, folder, targets)   # or the unfinished run with these arguments
    owner = store.claim(track, team, submission)   # the first folder to claim a team name keeps it
    store.add(row)                                 # True if stored; False if this run already holds it
    rows = store.rows(track)                       # every row, oldest first; EdgekitError if tampered with
    problems = store.problems()                    # one line per missing, altered, moved or replayed row

Why a chain: the results file is an ordinary file that anyone with access can edit. Signing each
row alone catches an edit, but not a deleted row, two rows swapped, or an old signed row inserted
again. So each row has a sequence number and carries the previous row's signature and name, and its
HMAC-SHA256 covers all of them with every column and the store's random id (a row copied from
another store does not verify here). A signed head record holds the row count, the last row's
signature and the number of team claims: rows cut from the end, or added after it, show too. Every
read checks the whole chain.

What the chain cannot tell: a whole store swapped for an earlier copy of itself (its own key signed
that copy too). `edgekit olympics board` prints the row count and head to compare with the last
published ones.

The key, created once:
  - EDGEKIT_OLYMPICS_KEY from the environment (at least 16 characters), when set; else
  - the key file next to the database, <db>.key, 32 random bytes, mode 0600. It is made by
    `edgekit olympics init` or by the first run on an empty store, never later: a missing key file
    for a store that holds results is an error naming the file (a new key would disown them all).

Concurrency: WAL mode (readers never block the writer), a 60 s busy timeout, and each append (read
the head, insert, sign the new head) in its own short IMMEDIATE transaction, so two runs writing at
once both keep every row and the chain stays one line. UNIQUE(run_id, submission, target) makes a
resumed run skip what it already stored instead of duplicating it.
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
from contextlib import contextmanager
from functools import wraps
from datetime import datetime, timezone
from pathlib import Path

from ..errors import EdgekitError
from .sandbox import KEY_ENV

# The signed columns, in a fixed order (with seq, prev and prev_row, everything but the row id and
# the signature itself): every figure the board shows is among them.
COLUMNS = ("run_id", "track", "submission", "team", "target", "mode", "status", "reason", "metric",
           "metric_value", "latency_ms", "flash_bytes", "ram_bytes", "arena_bytes", "energy_mj",
           "techniques", "model_sha256", "test_sha256", "firmware", "edgekit_version", "time", "detail")
CHAIN = ("seq", "prev", "prev_row")
SIGNED = CHAIN + COLUMNS  # what a row's HMAC covers, with the store's id
ANY_TARGET = "*"  # an invalid submission's one row, standing for every board of the track
_TYPES = {"metric_value": "REAL", "latency_ms": "REAL", "energy_mj": "REAL", "flash_bytes": "INTEGER",
          "ram_bytes": "INTEGER", "arena_bytes": "INTEGER"}
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, track TEXT NOT NULL, submissions TEXT NOT NULL, targets TEXT NOT NULL,
    started TEXT NOT NULL, finished TEXT);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    {", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)},
    prev TEXT NOT NULL, prev_row TEXT NOT NULL, hmac TEXT NOT NULL,
    UNIQUE (run_id, submission, target));
CREATE INDEX IF NOT EXISTS results_track ON results (track, target);
CREATE TABLE IF NOT EXISTS teams (
    track TEXT NOT NULL, team_key TEXT NOT NULL, team TEXT NOT NULL, submission TEXT NOT NULL,
    claimed TEXT NOT NULL, hmac TEXT NOT NULL, PRIMARY KEY (track, team_key));
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 1), store_id TEXT NOT NULL, count INTEGER NOT NULL,
    last TEXT NOT NULL, last_row TEXT NOT NULL, claims INTEGER NOT NULL, hmac TEXT NOT NULL);
"""
HEAD = ("store_id", "count", "last", "last_row", "claims")
MAX_LISTED = 5  # problems named in the one-line error; `edgekit olympics verify` lists them all


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_path(db: Path) -> Path:
    return Path(str(db) + ".key")


def load_key(db: Path, create: bool = False) -> bytes:
    """The course key: $EDGEKIT_OLYMPICS_KEY, else <db>.key (made here only when `create`)."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env) < 16:
            raise EdgekitError(f"{KEY_ENV} is {len(env)} characters; use at least 16 (e.g. `openssl rand -hex 32`)")
        return env.encode()
    path = key_path(db)
    if not path.exists():
        if not create:
            raise EdgekitError(f"the key file {path} is missing; restore it from your backup (or set {KEY_ENV} to "
                               f"the course key): edgekit makes a key only for an empty store "
                               f"(`edgekit olympics init --db {db}`), since a new one would disown every result")
        _make_key(path)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EdgekitError(f"the key file {path} can be read by others (mode {stat.S_IMODE(mode):o}); "
                           f"run `chmod 600 {path}`")
    key = path.read_text().strip()
    if len(key) < 16:
        raise EdgekitError(f"the key file {path} holds no usable key; restore it from your backup")
    return key.encode()


def _make_key(path: Path) -> None:
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


def row_name(row: dict) -> str:
    """How a problem names a row: its place in the chain and what it is."""
    where = "every board" if row.get("target") == ANY_TARGET else row.get("target")
    return f"seq {row.get('seq')} (run {row.get('run_id')}, {row.get('submission')} on {where})"


def _text(value):
    """Text SQLite can store: a lone surrogate (from an undecodable file name) is spelled out."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _sqlite_errors_named(method):
    """A damaged or unreadable database file ends in one line naming it, not an internal error."""
    @wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            raise EdgekitError(f"{self.path} cannot be read as a results database ({e}); restore it from a "
                               "backup") from None
    return wrapper


class Store:
    def __init__(self, path: str | Path, key: bytes | None = None, create: bool = False):
        self.path = Path(path)
        if self.path.is_dir():
            raise EdgekitError(f"{self.path} is a folder; give the results database file, e.g. results.sqlite")
        if create:  # a new database's folder is made, as for every other output
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise EdgekitError(f"cannot make the folder of {self.path} ({e.strerror or e}); give a --db "
                                   "in a folder you can write to") from None
        if not self.path.parent.is_dir():
            raise EdgekitError(f"the folder of {self.path} does not exist; check the path")
        try:
            # autocommit (isolation_level=None): each statement is its own transaction, held briefly
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 60000")
            self._retry(lambda: self.db.execute("PRAGMA journal_mode = WAL"))
            self._retry(lambda: self.db.executescript(SCHEMA))
            if not set(CHAIN) <= {r[1] for r in self.db.execute("PRAGMA table_info(results)")}:
                raise EdgekitError(f"{self.path} was written by an older edgekit, without the signed chain; "
                                   "start a new --db (keep the old file: its rows are signed one by one)")
            empty = not any(self.db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()
                            for t in ("results", "teams", "head"))
        except sqlite3.DatabaseError as e:
            raise EdgekitError(f"{self.path} is not a usable results database ({e}); give another --db") from None
        self.key = key or load_key(self.path, create=create and empty)
        if empty:  # the chain's start: a signed head for zero rows, under a new random store id
            with self._transaction():
                if not self.db.execute("SELECT 1 FROM head").fetchone():
                    self._write_head({"store_id": secrets.token_hex(16), "count": 0, "last": "", "last_row": "",
                                      "claims": 0})

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

    @contextmanager
    def _transaction(self):
        """One writer at a time from BEGIN on: reading the head and writing the next row are one step."""
        self._retry(lambda: self.db.execute("BEGIN IMMEDIATE"))
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- signatures ------------------------------------------------------------------------------
    def _mac(self, store_id: str, kind: str, values: list) -> str:
        message = json.dumps([store_id, kind, *values], separators=(",", ":"))
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()

    def _signs(self, store_id: str, kind: str, fields: tuple, record: dict) -> bool:
        return hmac.compare_digest(self._mac(store_id, kind, [record.get(c) for c in fields]),
                                   str(record.get("hmac") or ""))

    def _head(self) -> dict | None:
        cur = self.db.execute(f"SELECT {', '.join(HEAD)}, hmac FROM head WHERE id = 1")
        found = cur.fetchone()
        return dict(zip(HEAD + ("hmac",), found)) if found else None

    def _write_head(self, head: dict) -> None:
        head = dict(head, hmac=self._mac(head["store_id"], "head", [head[c] for c in HEAD]))
        self.db.execute(f"INSERT OR REPLACE INTO head (id, {', '.join(HEAD)}, hmac) VALUES (1, ?, ?, ?, ?, ?, ?)",
                        [head[c] for c in HEAD + ("hmac",)])

    def _signed_head(self) -> dict:
        """The head, to extend the chain from; never from a head that does not verify (that would
        sign over whatever was done to it)."""
        head = self._head()
        if head is None or not self._signs(head["store_id"], "head", HEAD, head):
            raise EdgekitError(f"{self.path} fails verification ({self._head_problem(head)}); nothing was added: "
                               f"run `edgekit olympics verify --db {self.path}`")
        return head

    # -- runs ------------------------------------------------------------------------------------
    @_sqlite_errors_named
    def start_run(self, track: str, submissions: str, targets: list[str]) -> tuple[str, bool]:
        """(run_id, resumed): the unfinished run with these arguments if there is one, else a new run.
        One transaction, so two identical runs started at once share one run and store each result once."""
        key = (track, submissions, ",".join(targets))
        with self._transaction():
            found = self.db.execute("SELECT run_id FROM runs WHERE track = ? AND submissions = ? AND targets = ? "
                                    "AND finished IS NULL ORDER BY started DESC LIMIT 1", key).fetchone()
            if found:
                return found[0], True
            run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
            self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL)", (run_id, *key, now()))
        return run_id, False

    @_sqlite_errors_named
    def finish_run(self, run_id: str) -> None:
        self._retry(lambda: self.db.execute("UPDATE runs SET finished = ? WHERE run_id = ?", (now(), run_id)))

    @_sqlite_errors_named
    def done(self, run_id: str) -> set[tuple[str, str]]:
        """(submission, target) pairs this run has stored already."""
        return set(self.db.execute("SELECT submission, target FROM results WHERE run_id = ?", (run_id,)))

    # -- teams -----------------------------------------------------------------------------------
    @_sqlite_errors_named
    def claim(self, track: str, team: str, submission: str) -> str:
        """The submission (folder) that owns `team` on `track`: the first to claim it, for good.
        Names differing only in case are one team."""
        with self._transaction():
            head = self._signed_head()
            found = self.db.execute("SELECT submission FROM teams WHERE track = ? AND team_key = ?",
                                    (track, team.casefold())).fetchone()
            if found:
                return found[0]
            claim = {"track": track, "team_key": team.casefold(), "team": team, "submission": submission,
                     "claimed": now()}
            claim["hmac"] = self._mac(head["store_id"], "team", list(claim.values()))
            self.db.execute("INSERT INTO teams VALUES (?, ?, ?, ?, ?, ?)", list(claim.values()))
            self._write_head(dict(head, claims=head["claims"] + 1))
        return submission

    # -- results ---------------------------------------------------------------------------------
    @_sqlite_errors_named
    def add(self, row: dict) -> bool:
        """Sign and append one result; False if this run already holds it (a resumed run, or a
        second identical run that got there first)."""
        row = {c: _text(row.get(c)) for c in COLUMNS}
        for c in ("techniques", "detail"):
            if not isinstance(row[c], str):
                row[c] = json.dumps(row[c], sort_keys=True)
        for c, kind in _TYPES.items():  # sign what SQLite will give back (5 stored as REAL reads 5.0)
            if row[c] is not None:
                row[c] = float(row[c]) if kind == "REAL" else int(row[c])
        cols = CHAIN + COLUMNS + ("hmac",)
        sql = f"INSERT INTO results ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with self._transaction():
            if self.db.execute("SELECT 1 FROM results WHERE run_id = ? AND submission = ? AND target = ?",
                               (row["run_id"], row["submission"], row["target"])).fetchone():
                return False
            head = self._signed_head()
            row.update(seq=head["count"] + 1, prev=head["last"], prev_row=head["last_row"])
            row["hmac"] = self._mac(head["store_id"], "result", [row[c] for c in SIGNED])
            self.db.execute(sql, [row[c] for c in cols])
            self._write_head(dict(head, count=row["seq"], last=row["hmac"], last_row=row_name(row)))
        return True

    @_sqlite_errors_named
    def rows(self, track: str | None = None) -> list[dict]:
        """Every result (of `track`), oldest first, once the whole store verifies; else EdgekitError
        naming what is missing or altered (a tampered store is refused whole, never re-ranked)."""
        rows = self._all_rows()
        problems = self._problems(rows)
        if problems:
            listed = "; ".join(problems[:MAX_LISTED]) + (f"; and {len(problems) - MAX_LISTED} more"
                                                         if len(problems) > MAX_LISTED else "")
            raise EdgekitError(f"{self.path} fails verification, so nothing is shown from it or added to it: "
                               f"{listed}; restore it from a backup (`edgekit olympics verify --db {self.path}` "
                               "lists every problem)")
        out = []
        for row in rows:
            if track is None or row["track"] == track:
                out.append(dict(row, techniques=json.loads(row["techniques"] or "[]"),
                                detail=json.loads(row["detail"] or "{}")))
        return out

    @_sqlite_errors_named
    def tracks(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT track FROM results ORDER BY track")]

    @_sqlite_errors_named
    def summary(self) -> dict:
        """What to compare with the last published board: a store rolled back whole shows here only."""
        head = self._head() or {}
        return {"results": head.get("count"), "head": (head.get("last") or "")[:16]}

    # -- verification ----------------------------------------------------------------------------
    @_sqlite_errors_named
    def problems(self) -> list[str]:
        """One line per thing wrong with the store; [] when every row, claim and the head verify."""
        return self._problems(self._all_rows())

    def _all_rows(self) -> list[dict]:
        cur = self.db.execute(f"SELECT id, {', '.join(CHAIN + COLUMNS)}, hmac FROM results "
                              "ORDER BY typeof(seq) != 'integer', seq, id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, values)) for values in cur]

    def _head_problem(self, head: dict | None) -> str:
        if head is None:
            return "its signed head record is missing"
        if any(self._signs(head["store_id"], "result", SIGNED, r) for r in self._all_rows()[:50]):
            return "its head record was edited"
        return (f"its head record does not verify under this key: is {KEY_ENV} or {key_path(self.path)} the "
                "key these results were signed with? (or the head was edited)")

    def _problems(self, rows: list[dict]) -> list[str]:
        head = self._head()
        if head is None or not self._signs(head["store_id"], "head", HEAD, head):
            if head is None and not rows:
                return []
            return [self._head_problem(head)]
        store_id = head["store_id"]
        return self._chain_problems(rows, head, store_id) + self._claim_problems(head, store_id)

    def _chain_problems(self, rows: list[dict], head: dict, store_id: str) -> list[str]:
        problems = []
        places = _signed_places(rows)
        expected, prev, prev_ok = 1, "", True
        for row in rows:
            name, seq = row_name(row), row["seq"]
            if not isinstance(seq, int):
                problems.append(f"{name}: altered (its sequence number is not a number)")
                continue
            if seq < expected:
                problems.append(f"{name}: a second row numbered {seq}, replayed or duplicated")
                continue
            gap = seq > expected
            if gap:
                problems.append(self._missing(expected, seq - 1, row))
            signed = self._signs(store_id, "result", SIGNED, row)
            if not signed:
                was = places.get(row["hmac"])
                moved = was not in (None, seq) and self._signs(store_id, "result", SIGNED, dict(row, seq=was))
                problems.append(f"{name}: moved from seq {was} (rows reordered)" if moved else
                                f"{name}: altered (its signature does not match its contents: edited, or copied "
                                "from another store)")
            elif row["prev"] != prev and not gap and prev_ok:  # (after a bad row, the break is said already)
                problems.append(f"{name}: does not follow the row before it (rows reordered or replayed)")
            expected, prev, prev_ok = seq + 1, row["hmac"], signed
        if expected - 1 < head["count"]:
            problems.append(self._missing(expected, head["count"], {"prev_row": head["last_row"]}))
        elif expected - 1 > head["count"]:
            problems.append(f"seq {head['count'] + 1}..{expected - 1}: rows after the last one the head signed "
                            f"({head['count']}), added without the key or under an older head")
        elif prev != head["last"]:
            problems.append(f"seq {head['count']}: not the last row the head signed")
        return problems

    def _missing(self, first: int, last: int, after: dict) -> str:
        """Rows first..last are gone; the row after them names the last of them (its signed prev_row)."""
        said = str(after.get("prev_row") or "")
        named = said if said.startswith(f"seq {last} ") else f"seq {last}"
        if first == last:
            return f"{named}: missing (deleted)"
        return f"seq {first}..{last}: {last - first + 1} rows missing (deleted), the last {named}"

    def _claim_problems(self, head: dict, store_id: str) -> list[str]:
        fields = ("track", "team_key", "team", "submission", "claimed")
        claims = [dict(zip(fields + ("hmac",), r)) for r in self.db.execute(
            f"SELECT {', '.join(fields)}, hmac FROM teams ORDER BY track, team_key")]
        problems = [f"team claim '{c['team']}' by {c['submission']} on track {c['track']}: altered"
                    for c in claims if not self._signs(store_id, "team", fields, c)]
        if len(claims) != head["claims"]:
            problems.append(f"the team registry holds {len(claims)} claim(s), the signed head {head['claims']}: "
                            "claims deleted or added without the key")
        return problems


def _signed_places(rows: list[dict]) -> dict:
    """Each row's place in the chain as it was signed, following the prev links back to the first
    row: a row whose seq was edited (rows reordered) still verifies at that place. None where a
    deleted row breaks the way back."""
    by_mac = {r["hmac"]: r for r in rows}
    place: dict = {"": 0}
    for row in rows:
        trail, mac = [], row["hmac"]
        while mac not in place and mac in by_mac and len(trail) <= len(rows):
            trail.append(mac)
            mac = by_mac[mac]["prev"]
        base = place.get(mac) if mac not in trail else None
        for i, m in enumerate(reversed(trail), start=1):
            place[m] = None if base is None else base + i
    return place
