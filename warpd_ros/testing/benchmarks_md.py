"""BENCHMARKS.md as marked sections: each benchmark owns the text between its markers and rewrites only that.

Here, not in bench/, because both sides use it: the benchmarks write with it and the tests check it,
and bench/ and test/ never import each other.
"""
from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"

HEADER = """# Benchmarks

Produced by the scripts in `bench/`; each section says which command regenerates it, on which
machine and when it ran. Numbers are measured, never edited by hand.
"""


def update_section(name: str, body: str, path: Path = BENCHMARKS_MD, at_top: bool = False) -> Path:
    """Replace the section `name` of BENCHMARKS.md with `body`; a new one is appended, or put
    right under the header with at_top (the `warpd bench` run summary)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    elif at_top and text.startswith(HEADER):
        text = HEADER + "\n" + block + "\n" + text[len(HEADER):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path
