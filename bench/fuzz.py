"""Fuzz campaign: mutated .tflite and .onnx models and hostile calibration files through
`edgekit convert`, each in a forked child (2 GB address space, 20 s limit).

Goal: 0 internal errors, 0 MemoryError, 0 hangs, 0 crashes. Every case that is
neither a success nor a clean one-line error is kept as a minimal repro (model, calibration file,
stderr and the command) under the folder printed at the end.

    python bench/fuzz.py [--seed S] [--tflite 3000] [--onnx 3000] [--calib 300] [--workers 2]
                         [--repro DIR] [--json]
    python bench/fuzz.py --replay DIR      # the repros kept in DIR, run again after a fix
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzzing  # noqa: E402


def campaign(seed: int, counts: dict, workers: int, repro: Path, console: Console, show: bool) -> dict:
    the_seeds = fuzzing.seeds()
    work = Path(tempfile.mkdtemp(prefix="edgekit-fuzz-"))
    results = {}
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, auto_refresh=False, disable=not show) as progress:
            # auto_refresh off: a refresh thread must not be running when the runner forks
            for kind, n in counts.items():
                task = progress.add_task(f"{kind:6}", total=n)
                outcomes, t0 = [], time.perf_counter()
                for o in fuzzing.run_cases(fuzzing.make_cases(kind, n, seed, the_seeds), work, workers,
                                           keep=lambda o: o.status in fuzzing.BAD):
                    outcomes.append(o)
                    if o.status in fuzzing.BAD:
                        fuzzing.save_repro(o, work / o.case.name, repro)
                        shutil.rmtree(work / o.case.name, ignore_errors=True)
                        progress.console.print(f"[red]{o.status}[/red] {o.case.name} ({o.case.seed}, "
                                               f"{o.case.mutation}): {o.message[:160]}", highlight=False)
                    progress.advance(task)
                    progress.refresh()
                summary = fuzzing.summarize(outcomes)
                summary["seconds"] = round(time.perf_counter() - t0, 1)
                summary["cases_per_s"] = round(len(outcomes) / max(summary["seconds"], 1e-9), 2)
                summary["slowest_s"] = round(max((o.seconds for o in outcomes), default=0), 2)
                results[kind] = summary
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def replay(folder: Path, workers: int, console: Console) -> int:
    """Run every repro kept under `folder` again (e.g. after a fix) and say what each gives now."""
    cases = []
    for repro in sorted(folder.glob("*/repro.json")):
        meta = json.loads(repro.read_text())
        model = next(repro.parent.glob("model.*"))
        calib = next(repro.parent.glob("calib.*"))
        extra = meta["command"].split(" -o out.tflite")[-1].split()
        verify = "--no-verify" not in extra
        cases.append(fuzzing.Case(repro.parent.name, meta["seed_model"], meta["mutation"], model.read_bytes(),
                                  model.suffix, calib.read_bytes(), calib.suffix, verify,
                                  [a for a in extra if a != "--no-verify"]))
    work = Path(tempfile.mkdtemp(prefix="edgekit-fuzz-replay-"))
    bad = 0
    try:
        for o in fuzzing.run_cases(cases, work, workers):
            bad += o.status in fuzzing.BAD
            console.print(f"{o.case.name}: {o.status}: {o.message[:200]}", highlight=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(f"{bad} of {len(cases)} repro(s) still bad", highlight=False)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=None, help="campaign seed (default: from the clock, printed)")
    ap.add_argument("--tflite", type=int, default=3000)
    ap.add_argument("--onnx", type=int, default=3000)
    ap.add_argument("--calib", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--repro", default=None, help="folder for repros of bad cases (default: a new temp folder)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--replay", metavar="DIR", help="run the repros kept in DIR again instead of a campaign")
    args = ap.parse_args()
    if args.replay:
        return replay(Path(args.replay), args.workers, Console())
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    repro = Path(args.repro or tempfile.mkdtemp(prefix="edgekit-fuzz-repro-"))
    repro.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=args.json)
    console.print(f"fuzz seed {seed}; repros of bad cases go to {repro}", highlight=False)
    counts = {k: v for k, v in (("tflite", args.tflite), ("onnx", args.onnx), ("calib", args.calib)) if v > 0}
    results = campaign(seed, counts, args.workers, repro, console, show=True)
    bad = sum(n for r in results.values() for s, n in r["outcomes"].items() if s in fuzzing.BAD)
    out = {"seed": seed, "repro_folder": str(repro), "bad_cases": bad, "results": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        table = Table(title=f"edgekit convert under fuzzing (seed {seed})")
        statuses = sorted({s for r in results.values() for s in r["outcomes"]})
        for col in ["kind", "cases", *statuses, "cases/s", "slowest s"]:
            table.add_column(col, justify="left" if col == "kind" else "right")
        for kind, r in results.items():
            table.add_row(kind, str(r["cases"]), *[str(r["outcomes"].get(s, 0)) for s in statuses],
                          str(r["cases_per_s"]), str(r["slowest_s"]))
        console.print(table)
        for kind, r in results.items():
            if r["bad_kinds"]:
                console.print(f"{kind}: bad cases by kind: {r['bad_kinds']}", highlight=False)
        console.print(f"{bad} bad case(s); repros in {repro}" if bad else "no bad cases", highlight=False)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
