"""A seeded slice of the fuzz campaign (bench/fuzz.py runs the long one): mutated .tflite and .onnx
models and hostile calibration files through `edgekit convert`, each in a forked child.

Every case must end in success or a one-line error (exit 2): an internal error, a MemoryError,
a hang (over fuzzing.TIMEOUT_S, 20 s unless EDGEKIT_FUZZ_TIMEOUT_S says) or a crash fails the test, which names the cases and how to reproduce them.
The seed is EDGEKIT_FUZZ_SEED if set, else a fixed one, and is printed either way.
"""
import os
from pathlib import Path

import pytest

import fuzzing

SEED = int(os.environ.get("EDGEKIT_FUZZ_SEED", "11"))
SLICE = {"tflite": 200, "onnx": 200, "calib": 80}  # 35-60 s on 2 cores busy with other work


@pytest.fixture(scope="module")
def seeds():
    return fuzzing.seeds()


def run(cases, tmp_path: Path) -> list:
    return list(fuzzing.run_cases(cases, tmp_path, workers=2))


def test_every_seed_converts(seeds, tmp_path):
    """The runner sees success: each unmutated seed converts (and verifies) with exit 0."""
    outcomes = run(fuzzing.valid_cases(seeds), tmp_path)
    assert [o.status for o in outcomes] == ["ok"] * len(seeds), [(o.case.name, o.message) for o in outcomes]


@pytest.mark.parametrize("kind", sorted(SLICE))
def test_fuzz_slice(kind, seeds, tmp_path):
    print(f"\nfuzz seed {SEED}: {SLICE[kind]} {kind} cases (EDGEKIT_FUZZ_SEED={SEED} to repeat)")
    outcomes = run(fuzzing.make_cases(kind, SLICE[kind], SEED, seeds), tmp_path)
    summary = fuzzing.summarize(outcomes)
    print(summary)
    bad = [o for o in outcomes if o.status in fuzzing.BAD]
    assert not bad, (f"{len(bad)} bad case(s) with seed {SEED}; reproduce with `python bench/fuzz.py --seed {SEED} "
                     f"--{kind} {SLICE[kind]} " + " ".join(f"--{k} 0" for k in SLICE if k != kind) + "`:\n" +
                     "\n".join(f"{o.case.name} ({o.case.seed}, {o.case.mutation}): {o.status}: {o.message[:200]}"
                               for o in bad[:15]))
    assert summary["outcomes"].get("clean", 0) >= len(outcomes) // 4, summary  # the mutations do bite


def _outcome(tmp_path, code, stderr, hung=False, out=False):
    case = fuzzing.Case("c", "s", "m", b"", ".tflite", b"", ".npy", False)
    (tmp_path / "stderr").write_text(stderr)
    if out:
        (tmp_path / "out.tflite").write_bytes(b"x")
    return fuzzing._classify(case, tmp_path, code, 0.1, hung).status


def test_outcomes_are_classified(tmp_path):
    assert _outcome(tmp_path, 0, "") == "ok"
    assert _outcome(tmp_path, 2, "error: the model is bad; do this\n") == "clean"
    assert _outcome(tmp_path, 2, "warning: x\nerror: the model is bad\n") == "messy"
    assert _outcome(tmp_path, 3, "internal error: KeyError: 'x' (set EDGEKIT_DEBUG=1 ...)") == "internal"
    assert _outcome(tmp_path, 3, "internal error: MemoryError: Unable to allocate 9 GiB") == "memory"
    assert _outcome(tmp_path, -11, "") == "crash"
    assert _outcome(tmp_path, -9, "", hung=True) == "hang"
    assert _outcome(tmp_path, 2, "error: refused\n", out=True) == "partial"


def test_a_hang_is_killed_and_reported(seeds, tmp_path):
    """A case over its time limit is killed (with its children) and counted as a hang."""
    case = next(fuzzing.valid_cases(seeds))
    # no conversion finishes in 1 ms (without TFLite Micro's cross-check one took 26 ms, under 0.05 s)
    [o] = fuzzing.run_cases([case], tmp_path, timeout=0.001)
    assert o.status == "hang" and o.seconds < 5, o
