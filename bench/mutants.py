"""Mutation check: do the tests fail when the code is wrong?

Each mutant in bench/mutants/<area>.toml is one small bug that would hurt a user (a quantization
step off by one, a checksum that skips a byte, a signed column left out, a fit rule that is too
generous), written as a text to find in one file and what to put in its place. This script plants
them one at a time in copies of the project and runs the tests named for each: a mutant is caught
when they fail, and survives when they pass.

    python3 bench/mutants.py [--area AREA ...] [--only TEXT] [--jobs N] [--json]

Exit 0: every mutant caught; 1: one survived; 2: a mutant no longer applies (its text is not in its
file exactly once), or its tests fail without it, or name nothing.

The copies are /tmp folders with the project's files (git's view: tracked and untracked, not
ignored) and ../shared beside them; the tests import edgekit from the copy (PYTHONPATH), never
write bytecode (a mutant of the same size and second must not be shadowed by a stale .pyc) and run
with -x: the first failure is enough.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from queue import Empty, Queue

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "bench" / "mutants"
TIMEOUT_S = 900  # a mutant that makes its tests hang is caught by the timeout


def load(areas: list[str] | None, only: str | None) -> list[dict]:
    found = []
    for path in sorted(MUTANTS.glob("*.toml")):
        if areas and path.stem not in areas:
            continue
        for m in tomllib.loads(path.read_text())["mutant"]:
            m["area"] = path.stem
            if not only or only.lower() in m["name"].lower():
                found.append(m)
    return found


def stale(mutants: list[dict]) -> list[str]:
    """Mutants whose text is not in their file exactly once, or that name no test."""
    problems = []
    for m in mutants:
        n = (ROOT / m["file"]).read_text().count(m["find"]) if (ROOT / m["file"]).exists() else 0
        if n != 1:
            problems.append(f"{m['area']}: {m['name']}: its text is in {m['file']} {n} times, not once")
        if not m.get("tests"):
            problems.append(f"{m['area']}: {m['name']}: names no tests")
    return problems


def project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def make_copy(into: Path, files: list[str]) -> Path:
    """into/main: the project's files; into/shared: the real ../shared (reference models, vendor)."""
    main = into / "main"
    for f in files:
        (main / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, main / f)
    if (ROOT.parent / "shared").exists():
        (into / "shared").symlink_to(ROOT.parent / "shared")
    return main


def run_tests(copy: Path, tests: list[str]) -> tuple[int, str, float]:
    env = dict(os.environ, PYTHONPATH=str(copy / "src"), PYTHONDONTWRITEBYTECODE="1")
    t = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                           cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        return r.returncode, r.stdout + r.stderr, time.perf_counter() - t
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {TIMEOUT_S} s", time.perf_counter() - t


def first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" ", 1)[1].split(" - ")[0]
    return ""


def judge(m: dict, copy: Path) -> dict:
    """Plant m in copy, run its tests, put the file back."""
    target = copy / m["file"]
    original = target.read_text()
    target.write_text(original.replace(m["find"], m["replace"], 1))
    try:
        rc, output, seconds = run_tests(copy, m["tests"])
    finally:
        target.write_text(original)
    if rc == -1:
        result, by = "caught", "timeout"
    elif rc in (1, 2, 3):  # tests failed (2, 3: collection or internal error, which the mutant caused)
        result, by = "caught", first_failure(output) or f"pytest exit {rc}"
    elif rc == 0:
        result, by = "survived", ""
    else:  # 4 usage error, 5 nothing collected: the mutant's test list is wrong, not the code
        result, by = "error", f"pytest exit {rc}: {output.strip().splitlines()[-1] if output.strip() else ''}"
    return {"area": m["area"], "name": m["name"], "file": m["file"], "result": result, "caught_by": by,
            "seconds": round(seconds, 1), "why": m.get("why", "")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--area", action="append", help="only this area (a file name in bench/mutants/)")
    ap.add_argument("--only", help="only mutants whose name contains this text")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="copies run side by side")
    ap.add_argument("--no-baseline", action="store_true", help="skip running the tests unmutated first")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    console = Console(stderr=True)
    mutants = load(args.area, args.only)
    problems = stale(mutants) if mutants else ["no mutants match"]
    if problems:
        for p in problems:
            console.print(f"[red]error:[/red] {p}", highlight=False)
        return 2
    work = Path(tempfile.mkdtemp(prefix="edgekit-mutants-"))
    t0 = time.perf_counter()
    try:
        files = project_files()
        copies = [make_copy(work / f"copy{i}", files) for i in range(max(1, min(args.jobs, len(mutants))))]
        if not args.no_baseline:  # every named test must pass on the unmutated code, or "caught" means nothing
            tests = sorted({t for m in mutants for t in m["tests"]})
            with console.status(f"the {len(tests)} named test selections, unmutated"):
                rc, output, seconds = run_tests(copies[0], tests)
            if rc != 0:
                console.print(f"[red]error:[/red] the named tests fail without any mutant (pytest exit {rc}, "
                              f"{first_failure(output) or output.strip()[-300:]}): fix them first", highlight=False)
                return 2
            console.print(f"baseline: the named tests pass unmutated ({seconds:.0f} s)")
        results = judge_all(mutants, copies, console)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, time.perf_counter() - t0, args.json, console)
    if any(r["result"] == "error" for r in results):
        return 2
    return 1 if any(r["result"] == "survived" for r in results) else 0


def judge_all(mutants: list[dict], copies: list[Path], console: Console) -> list[dict]:
    todo: Queue = Queue()
    for m in mutants:
        todo.put(m)
    results, lock = [], threading.Lock()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("mutants", total=len(mutants))

        def worker(copy: Path):
            while True:
                try:
                    m = todo.get_nowait()
                except Empty:
                    return
                r = judge(m, copy)
                with lock:
                    results.append(r)
                    if r["result"] != "caught":
                        progress.console.print(f"[red]{r['result']}[/red] {r['area']}: {r['name']} {r['caught_by']}",
                                               highlight=False)
                    progress.advance(task)

        threads = [threading.Thread(target=worker, args=(c,)) for c in copies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    order = {(m["area"], m["name"]): i for i, m in enumerate(mutants)}
    return sorted(results, key=lambda r: order[(r["area"], r["name"])])


def report(results: list[dict], seconds: float, as_json: bool, console: Console) -> None:
    caught = sum(r["result"] == "caught" for r in results)
    survived = sum(r["result"] == "survived" for r in results)
    if as_json:
        print(json.dumps({"caught": caught, "survived": survived, "errors": len(results) - caught - survived,
                          "seconds": round(seconds, 1), "mutants": results}, indent=2))
        return
    table = Table("area", "mutant", "result", "caught by", "s")
    for r in results:
        colour = {"caught": "green", "survived": "red"}.get(r["result"], "yellow")
        table.add_row(r["area"], r["name"], f"[{colour}]{r['result']}[/{colour}]", r["caught_by"], f"{r['seconds']:.0f}")
    out = Console()
    out.print(table)
    out.print(f"{caught} caught, {survived} survived, {len(results) - caught - survived} errors "
              f"of {len(results)} mutants in {seconds:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
