"""The AI Olympics against hostile teams and careless staff: a real `edgekit olympics run`
(child processes, LiteRT, SQLite) on the demo track, then the store it wrote tampered with by hand.

One bad folder is one "invalid" row and every other team is still stored; deleting, reordering,
replaying or editing a stored row is named and the board refuses the store; a missing key is an error
that keeps the published page; team names are claimed once per track; a SIGKILLed run's job folder
is removed by the next run.
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from edgekit import EdgekitError
from edgekit.olympics import demo, sandbox
from edgekit.olympics.leaderboard import build
from edgekit.olympics.store import COLUMNS, Store
from edgekit.olympics.tracks import load_track

GOOD = ("crows", "hawks", "larks", "owls")


def edgekit(*args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def key_file_env(**more) -> dict:
    """The environment of a course that keeps its key in results.sqlite.key (no EDGEKIT_OLYMPICS_KEY)."""
    env = {k: v for k, v in os.environ.items() if k != sandbox.KEY_ENV}
    return dict(env, **more)


def one_line_error(res, *words):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    for w in words:
        assert w.lower() in err.lower(), err


def write_bad(folder: Path, name: str, raw: bytes, model: Path) -> None:
    (folder / name).mkdir()
    (folder / name / "submission.json").write_bytes(raw)
    shutil.copy(model, folder / name / "model.tflite")


@pytest.fixture(scope="module")
def olympics(tmp_path_factory):
    """Four good teams and six hostile folders, run once on the simulated Coral by the real CLI."""
    root = tmp_path_factory.mktemp("hostile")
    track = load_track(demo.write_track(root, test_limit=100))
    subs = root / "submissions"
    model = demo.model_file(demo.random_mlp([16]), "int8", root / "model", demo.digits()[0][:100])
    for team in GOOD:
        demo.write_submission(subs / team, team, ["int8 PTQ"])
        shutil.copy(model, subs / team / "model.tflite")
    head = b'{"team": "x", "track": "demo", "techniques": ["a"], "n": '
    write_bad(subs, "deep", head + b"[" * 30_000 + b"]" * 30_000 + b"}", model)   # RecursionError before
    write_bad(subs, "huge", head + b"9" * 5_000 + b"}", model)                    # ValueError before
    write_bad(subs, "latin1", '{"team": "café", "track": "demo"}'.encode("latin-1"), model)
    write_bad(subs, "newline", b'{"team": "owls\\n", "track": "demo", "techniques": ["a"]}', model)
    (subs / "link").symlink_to(subs / "owls", target_is_directory=True)
    (subs / os.fsdecode(b"bytes\xff")).mkdir()  # a name that is not UTF-8: SQLite could not store it raw
    res = edgekit("olympics", "run", subs, "--track", "demo", "--targets", "coral", "--sim", "--runs", "1",
                  cwd=root, env=key_file_env())
    assert res.returncode == 0, res.stderr
    return root, track, res


def copy_db(root: Path, dest: Path) -> Path:
    """A consistent copy of the run's store (WAL included) and its key, to tamper with."""
    db = dest / "results.sqlite"
    src = sqlite3.connect(root / "results.sqlite")
    src.backup(dst := sqlite3.connect(db))
    src.close()
    dst.close()
    shutil.copy(root / "results.sqlite.key", dest / "results.sqlite.key")
    shutil.copytree(root / "tracks", dest / "tracks")
    return db


def tamper(db: Path, *sql: str) -> None:
    """Edit the store as an attacker would: plain SQL on the file, no key needed."""
    con = sqlite3.connect(db)
    for statement in sql:
        con.executescript(statement)
    con.commit()
    con.close()


def problems_after(root: Path, tmp_path: Path, *sql: str) -> list[str]:
    db = copy_db(root, tmp_path)
    tamper(db, *sql)
    return Store(db).problems()


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv(sandbox.KEY_ENV, raising=False)


# --- item 1: one bad folder is one invalid row --------------------------------------------------------

def test_bad_folders_are_invalid_rows_and_every_good_team_is_stored(olympics):
    root, track, res = olympics
    rows = Store(root / "results.sqlite").rows()
    by_folder = {r["submission"]: r for r in rows}
    assert {r["submission"] for r in rows if r["status"] == "ok"} == set(GOOD)
    assert all(by_folder[t]["target"] == "coral" and by_folder[t]["metric_value"] is not None for t in GOOD)
    reasons = {"deep": "nests more than 20 levels", "huge": "number of 5,000 characters",
               "latin1": "not UTF-8 text (byte 0xe9", "newline": "'team' must be",
               "link": "symbolic link", "bytes\\xff": "submission.json is missing"}
    invalid = {r["submission"]: r for r in rows if r["status"] == "invalid"}
    assert set(invalid) == set(reasons)  # one row per bad folder, and nothing else
    for folder, words in reasons.items():
        assert words in invalid[folder]["reason"] and "\n" not in invalid[folder]["reason"], invalid[folder]
    assert len(rows) == 10 and "10 result(s) stored" in res.stderr
    for folder in reasons:  # the run's output names each bad folder
        assert f"✗ {folder}: invalid:" in res.stderr, res.stderr
    # on the board, an invalid folder shows (unranked, with its reason) on the board it was run for
    coral = build(Store(root / "results.sqlite"), [track])["tracks"][0]["boards"]
    coral = next(b for b in coral if b["target"] == "coral")["ranking"]
    assert [e["rank"] for e in coral[:4]] == [1, 2, 3, 4]
    assert {e["submission"] for e in coral if e["status"] == "invalid"} == set(reasons)


def test_check_names_the_bad_folder_and_goes_on(olympics):
    root, _, _ = olympics
    subs = root / "submissions"
    res = edgekit("olympics", "check", subs / "deep", subs / "owls", subs / "huge", cwd=root)
    assert res.returncode == 1 and "Traceback" not in res.stdout + res.stderr
    out = res.stdout
    assert f"{subs / 'deep'}: NOT valid" in out and f"{subs / 'huge'}: NOT valid" in out
    assert "nests more than 20 levels" in out and "number of 5,000 characters" in out
    assert f"{subs / 'owls'}: valid" in out and "✓ coral: fits" in out  # checked after the bad one


# --- item 2: the store shows every change ------------------------------------------------------------

def seq_of(root: Path, where: str) -> tuple[int, str]:
    con = sqlite3.connect(root / "results.sqlite")
    found = con.execute(f"SELECT seq, run_id FROM results WHERE {where}").fetchone()
    con.close()
    return found


def test_deleting_a_row_is_named(olympics, tmp_path):
    """Rows are stored as evaluations finish (in parallel): pick them by seq, not by team."""
    root, _, _ = olympics
    last, run = seq_of(root, "seq = (SELECT max(seq) FROM results)")  # named by the signed head
    middle = last - 2                                                 # named by the row after it
    assert last == 10
    con = sqlite3.connect(root / "results.sqlite")
    who = dict(con.execute(f"SELECT seq, team || ' on ' || target FROM results WHERE seq IN ({middle}, {last})"))
    con.close()
    problems = problems_after(root, tmp_path, f"DELETE FROM results WHERE seq IN ({middle}, {last})")
    assert problems == [f"seq {middle} (run {run}, {who[middle]}): missing (deleted)",
                        f"seq {last} (run {run}, {who[last]}): missing (deleted)"]


def test_deleting_the_last_rows_is_named(olympics, tmp_path):
    root, _, _ = olympics
    last, run = seq_of(root, "seq = (SELECT max(seq) FROM results)")
    problems = problems_after(root, tmp_path, f"DELETE FROM results WHERE seq >= {last - 1}")
    assert len(problems) == 1 and problems[0].startswith(f"seq {last - 1}..{last}: 2 rows missing")
    assert f"the last seq {last} (run {run}, " in problems[0]


def test_reordering_rows_is_named(olympics, tmp_path):
    root, _, _ = olympics
    problems = problems_after(root, tmp_path, "UPDATE results SET seq = -1 WHERE seq = 2; "
                              "UPDATE results SET seq = 2 WHERE seq = 3; UPDATE results SET seq = 3 WHERE seq = -1")
    assert len(problems) == 2
    assert "seq 2 (run" in problems[0] and "moved from seq 3" in problems[0]
    assert "seq 3 (run" in problems[1] and "moved from seq 2" in problems[1]


def test_replaying_a_row_is_named(olympics, tmp_path):
    root, _, _ = olympics
    # the same signed row twice: the constraints that would stop it are easy to drop
    seq, run = seq_of(root, "team = 'hawks'")
    problems = problems_after(root, tmp_path, "CREATE TABLE copy AS SELECT * FROM results; DROP TABLE results; "
                              "ALTER TABLE copy RENAME TO results; "
                              "INSERT INTO results SELECT * FROM results WHERE team = 'hawks'")
    assert problems == [f"seq {seq} (run {run}, hawks on coral): a second row numbered {seq}, replayed or duplicated"]


def test_a_row_from_another_store_with_the_same_key_is_named(olympics, tmp_path):
    """A row signed with the course key, but in another store (e.g. last year's), does not verify here."""
    root, _, _ = olympics
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(root / "results.sqlite.key", other / "results.sqlite.key")
    donor = Store(other / "results.sqlite")  # the same key file, an empty store
    mine = Store(root / "results.sqlite").rows()
    for row in mine:
        assert donor.add(row)
    donor.close()
    seq, run = seq_of(root, "team = 'larks'")
    problems = problems_after(root, tmp_path, f"ATTACH '{other / 'results.sqlite'}' AS o; "
                              f"UPDATE results SET hmac = (SELECT hmac FROM o.results WHERE seq = {seq}), "
                              f"prev = (SELECT prev FROM o.results WHERE seq = {seq}) WHERE seq = {seq}")
    assert problems[0] == (f"seq {seq} (run {run}, larks on coral): altered (its signature does not match its "
                           "contents: edited, or copied from another store)")


def test_an_old_head_replayed_is_named(olympics, tmp_path):
    """Rows appended under a head record saved earlier and put back: the rows after it show."""
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    tamper(db, "CREATE TABLE saved AS SELECT * FROM head")
    store = Store(db)
    row = store.rows()[0]
    assert store.add(dict(row, run_id="later"))
    count = store.summary()["results"]
    tamper(db, "DELETE FROM head; INSERT INTO head SELECT * FROM saved")
    assert Store(db).problems() == [f"seq {count}..{count}: rows after the last one the head signed "
                                    f"({count - 1}), added without the key or under an older head"]


# edits an attacker would make to a column shown on the board; every other column gets a plain change
EDITS = {"latency_ms": "0.001", "flash_bytes": "1", "ram_bytes": "1", "energy_mj": "0.0", "metric_value": "1.0",
         "status": "'ok'", "team": "'eagles'", "mode": "'measured'", "reason": "'fine'", "target": "'esp32s3'",
         "time": "'2030-01-01T00:00:00Z'", "techniques": "'[]'", "submission": "'eagles'"}


def edit_of(column: str) -> str:
    """SQL for a changed value of `column`: a number plus 1, a text (or nothing) with an x appended."""
    return EDITS.get(column, f"CASE WHEN typeof({column}) IN ('integer', 'real') THEN {column} + 1 "
                             f"ELSE coalesce({column}, '') || 'x' END")


@pytest.mark.parametrize("column", COLUMNS)  # every signed column, so a column added later is covered too
def test_editing_any_shown_field_is_named(olympics, tmp_path, column):
    root, _, _ = olympics
    where = "submission = 'deep'" if column in ("status", "reason") else "team = 'crows'"  # an invalid row / an ok one
    seq, _ = seq_of(root, where)
    db = copy_db(root, tmp_path)

    def stored():
        with closing(sqlite3.connect(db)) as con:
            return con.execute(f"SELECT {column}, run_id FROM results WHERE seq = {seq}").fetchone()
    before, _ = stored()
    tamper(db, f"UPDATE results SET {column} = {edit_of(column)} WHERE seq = {seq}")
    after, run = stored()
    assert after != before  # the edit changed what is stored
    problems = Store(db).problems()
    assert len(problems) == 1 and problems[0].startswith(f"seq {seq} (run {run}, ") and ": altered (" in problems[0]


def test_a_deleted_team_claim_is_named(olympics, tmp_path):
    root, _, _ = olympics
    problems = problems_after(root, tmp_path, "DELETE FROM teams WHERE team = 'owls'")
    assert problems == ["the team registry holds 3 claim(s), the signed head 4: claims deleted or added without the key"]


def test_board_refuses_a_tampered_store_and_keeps_the_page(olympics, tmp_path):
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    first = edgekit("olympics", "board", "--db", db, cwd=tmp_path, env=key_file_env())
    assert first.returncode == 0, first.stderr
    page = tmp_path / "leaderboard.html"
    published = page.read_bytes()
    assert 'id="verified" class="meta" data-count="10"' in published.decode()
    tamper(db, "UPDATE results SET latency_ms = latency_ms / 10 WHERE team = 'hawks'")
    res = edgekit("olympics", "board", "--db", db, cwd=tmp_path, env=key_file_env())
    one_line_error(res, "fails verification", "hawks on coral): altered", "olympics verify")
    assert page.read_bytes() == published
    listed = edgekit("olympics", "verify", "--db", db, cwd=tmp_path, env=key_file_env())
    assert listed.returncode == 1 and "hawks on coral): altered" in listed.stdout
    # nor does a run add to it (its new head would be signed over the edit)
    again = edgekit("olympics", "run", root / "submissions", "--track", "demo", "--targets", "coral", "--sim",
                    "--db", db, cwd=tmp_path, env=key_file_env())
    one_line_error(again, "fails verification", "hawks on coral): altered")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM results").fetchone()[0] == 10


# --- item 3: the key is made once --------------------------------------------------------------------

def test_a_missing_key_is_an_error_and_the_page_is_kept(olympics, tmp_path):
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    assert edgekit("olympics", "board", "--db", db, cwd=tmp_path, env=key_file_env()).returncode == 0
    page = tmp_path / "leaderboard.html"
    published = page.read_bytes()
    key = tmp_path / "results.sqlite.key"
    key.unlink()
    for step in (["board", "--db", db], ["verify", "--db", db], ["init", "--db", db],
                 ["run", root / "submissions", "--track", "demo", "--targets", "coral", "--sim", "--db", db]):
        res = edgekit("olympics", *step, cwd=tmp_path, env=key_file_env())
        one_line_error(res, f"the key file {key} is missing", sandbox.KEY_ENV)
        assert not key.exists() and page.read_bytes() == published


def test_the_key_is_made_by_init_or_the_first_run_on_an_empty_store(tmp_path):
    db = tmp_path / "results.sqlite"
    with pytest.raises(EdgekitError, match="is missing"):
        Store(db)  # reading an empty store makes no key either
    res = edgekit("olympics", "init", "--db", db, cwd=tmp_path, env=key_file_env())
    assert res.returncode == 0 and "is ready" in res.stderr
    key = Path(str(db) + ".key").read_bytes()
    assert edgekit("olympics", "init", "--db", db, cwd=tmp_path, env=key_file_env()).returncode == 0
    assert Path(str(db) + ".key").read_bytes() == key  # made once
    assert Store(db).problems() == []


# --- item 4: teams, counts, temporary folders --------------------------------------------------------

def test_a_second_folder_claiming_a_team_is_refused(olympics, tmp_path):
    """The first claimant keeps the name, even against a folder sorted before it in a later run."""
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    later = tmp_path / "later"
    demo.write_submission(later / "aaa", "OWLS", ["int8 PTQ"])  # names differing in case are one team
    shutil.copy(root / "submissions/owls/model.tflite", later / "aaa")
    res = edgekit("olympics", "run", later, "--track", "demo", "--targets", "coral", "--sim", "--db", db,
                  cwd=tmp_path, env=key_file_env())
    assert res.returncode == 0, res.stderr
    row = next(r for r in Store(db).rows() if r["submission"] == "aaa")
    assert row["status"] == "invalid" and row["team"] == "aaa"
    assert "team 'OWLS' is already taken on track 'demo' by the folder 'owls'" in row["reason"]
    assert "1 result(s) stored" in res.stderr


def _holds_the_write_lock(db) -> bool:
    con = sqlite3.connect(db, timeout=0.2, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def test_two_identical_runs_at_once_count_what_they_stored(olympics, tmp_path):
    root, _, _ = olympics
    subs = tmp_path / "subs"
    teams = [f"team{i}" for i in range(8)]
    for team in teams:
        shutil.copytree(root / "submissions/owls", subs / team)
        demo.write_submission(subs / team, team, ["int8 PTQ"])
    shutil.copytree(root / "tracks", tmp_path / "tracks")
    cmd = [sys.executable, "-m", "edgekit", "olympics", "run", str(subs), "--track", "demo", "--targets", "coral",
           "--sim", "--runs", "1", "--db", str(tmp_path / "r.sqlite")]
    env = key_file_env()
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    early = []

    def next_result():
        early.append("")
        while not early[-1].startswith(("✓", "✗")):  # the first run is under way
            early.append(first.stderr.readline())
            assert early[-1], "".join(early)
    next_result()
    os.killpg(first.pid, signal.SIGSTOP)  # held in the middle, whatever the machine's speed
    # ... but not inside a write to the store: a run stopped there holds SQLite's write lock, which
    # nobody could take from it (the next result may already be on its way in when the line is read)
    while _holds_the_write_lock(tmp_path / "r.sqlite"):
        os.killpg(first.pid, signal.SIGCONT)
        next_result()
        os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, "".join(early) + err + second.stderr
    said = [int(e.split(" result(s) stored")[0].rsplit(" ", 1)[-1]) for e in (err, second.stderr)]
    assert "resumed after" in second.stderr  # it joined the first's unfinished run
    rows = Store(tmp_path / "r.sqlite").rows()
    # the second finds the first's unfinished run and joins it; each row is stored, and counted, by
    # the one that got there first
    assert sorted(r["submission"] for r in rows) == teams and len({r["run_id"] for r in rows}) == 1
    assert sum(said) == len(teams), said


def test_a_sigkilled_runs_job_folder_is_removed_by_the_next_run(olympics, tmp_path):
    root, _, _ = olympics
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    subs = tmp_path / "subs"
    shutil.copytree(root / "submissions/owls", subs / "owls")
    shutil.copytree(root / "tracks", tmp_path / "tracks")
    env = key_file_env(TMPDIR=str(tmp))
    cmd = [sys.executable, "-m", "edgekit", "olympics", "run", str(subs), "--track", "demo", "--targets", "coral",
           "--sim", "--runs", "1", "--db", str(tmp_path / "r.sqlite")]
    live = subprocess.Popen(["sleep", "300"])  # a live run's folder (by its pid) must survive the cleaning
    (tmp / f"{sandbox.WORK_PREFIX}{live.pid}-busy").mkdir()
    try:
        run = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (left := list(tmp.glob(f"{sandbox.WORK_PREFIX}{run.pid}-*"))) and time.monotonic() < deadline:
            assert run.poll() is None, "the run ended before its job started"
            time.sleep(0.02)
        run.send_signal(signal.SIGKILL)  # no chance to clean up
        run.wait()
        assert left and left[0].is_dir(), "the killed run must leave its job folder for this test to mean anything"
        again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert not left[0].exists()
        assert (tmp / f"{sandbox.WORK_PREFIX}{live.pid}-busy").is_dir()
    finally:
        live.kill()
        live.wait()


def test_a_tampered_name_that_looks_like_markup_is_still_one_line(olympics, tmp_path):
    """The error names the row with whatever was written into it: shown as text, not read as markup."""
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    tamper(db, "UPDATE results SET submission = '[/red]' WHERE team = 'larks'")
    one_line_error(edgekit("olympics", "board", "--db", db, cwd=tmp_path, env=key_file_env()),
                   "[/red] on coral): altered")


def test_a_damaged_database_file_is_one_line(olympics, tmp_path):
    root, _, _ = olympics
    db = copy_db(root, tmp_path)
    data = bytearray(db.read_bytes())
    data[len(data) // 2:len(data) // 2 + 3000] = b"\xff" * 3000  # a page of the results table overwritten
    db.write_bytes(bytes(data))
    one_line_error(edgekit("olympics", "board", "--db", db, cwd=tmp_path, env=key_file_env()), str(db))
