"""Comments, docstrings and descriptor sources cite what a reader of the repository can follow.

Not files outside it (shared/facts/*.md, "tflm-arena.md section 2") and not the project's own
tracker numbers ("issue 6"): those say where a fact was noted, not where it comes from. An upstream
project's issue is fine when the citation names the project: "google-coral/edgetpu issue 89".
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("src", "targets", "firmware")

# The notes files that were cited (their facts now stand in the text with their primary sources),
# and any "<name>.md section N" without a path, which names no file a reader can find.
FACTS_FILE = re.compile(r"shared/facts|\b(?:tflm-arena|edgetpu-rules|published-latency|course-and-boards|"
                        r"tflite-writing|emulated-cortex-m4|mlperf-tiny-protocol)\.md|"
                        r"(?<![\w./-])[\w.-]+\.md,? sections? \d", re.IGNORECASE)
ISSUE = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)
UPSTREAM = re.compile(r"\b[\w.-]+/[\w.-]+\s+$")  # "<owner>/<repo> " right before "issue N"


def bad_citations(text: str) -> list[str]:
    """The offending snippets in `text`: facts-file citations and issue numbers without owner/repo."""
    found = [m.group(0) for m in FACTS_FILE.finditer(text)]
    for m in ISSUE.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not UPSTREAM.search(text[line_start:m.start()]):
            found.append(text[line_start:m.end()].strip())
    return found


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for p in sorted((ROOT / top).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                try:
                    p.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue  # binary (models, images)
                files.append(p)
    return files


def test_the_scan_sees_the_sources_descriptors_and_firmware():
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert {"src/edgekit/sim/fit.py", "targets/coral.toml", "firmware/nano33ble/nano33ble.ino"} <= names


@pytest.mark.parametrize("text", [
    "# per-invoke floor (shared/facts/published-latency.md)",
    'source = "tflm-arena.md: within 16 B (section 2)"',
    "# the status texts (edgetpu-rules.md section 3)",
    "# planned as in notes.md section 4",
    'source = "edgekit firmware\'s fixed point (edgekit sensor contract, issue 6)"',
    "# board and host, issue 6).",
    "reads issue 5's keys",
    "see issues 3 and 4",
])
def test_citations_a_reader_cannot_follow_are_found(text):
    assert bad_citations(text)


@pytest.mark.parametrize("text", [
    "# per-invoke floor: a tiny MLP, 50,000 Python invokes in 1,876 ms (google-coral/edgetpu issue 89)",
    "# __has_include hides that failure; arduino/arduino-cli issues 1650 and 1782.)",
    "# e.g. ARG_MAX (I#409): github.com/google-coral/edgetpu/issues/409",
    "# compile logs pasted in google-coral/edgetpu issues",
    "docs/protocol.md, Stream sensors per board",
    "the channel mask (docs/protocol.md section 2)",
])
def test_upstream_and_in_repo_citations_pass(text):
    assert not bad_citations(text)


def test_no_file_cites_notes_outside_the_repo_or_tracker_numbers():
    offenders = [f"{p.relative_to(ROOT)}: {snippet}" for p in scanned_files()
                 for snippet in bad_citations(p.read_text(encoding="utf-8"))]
    assert not offenders, ("cite the fact and its primary source (datasheet section, upstream file at a "
                           "commit, publication, <owner>/<repo> issue N, docs/*.md) instead:\n"
                           + "\n".join(offenders))
