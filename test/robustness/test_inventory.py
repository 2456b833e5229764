"""docs/ROBUSTNESS.md names a test for every bad input; every test it names exists."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_test_named_in_the_robustness_inventory_exists():
    text = (REPO / "docs" / "ROBUSTNESS.md").read_text()
    refs = sorted(set(re.findall(r"(test/[\w/]+\.py)::(\w+)", text)))
    assert len(refs) > 40
    missing = []
    for path, name in refs:
        source = REPO / path
        if not source.is_file() or not re.search(rf"^def {name}\(", source.read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/ROBUSTNESS.md names tests that do not exist: {missing}"
