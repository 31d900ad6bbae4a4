"""Tests mirror the source: every module of decoders/ and addons/ has its test module."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def expected_test(module: Path) -> Path:
    relative = module.relative_to(ROOT)
    parts = relative.parts
    if parts[0] == "decoders":
        parts = parts[1:]
    return ROOT.joinpath("tests", *parts[:-1], f"test_{module.stem}.py")


def test_every_module_has_a_test() -> None:
    modules = [
        p
        for top in ("decoders", "addons")
        for p in (ROOT / top).rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    ]
    assert modules
    missing = [str(m.relative_to(ROOT)) for m in modules if not expected_test(m).is_file()]
    assert not missing, f"modules without a test module: {missing}"
