"""The simulator is a test oracle: it must not share code with the parsers it tests.

Nothing under ``src/data_collector/simulator/`` may import ``data_collector.venues``, neither
directly (checked on every file's import statements) nor through another module (checked by
importing the simulator in a fresh interpreter).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import data_collector.simulator

SIMULATOR = Path(data_collector.simulator.__file__).parent
FORBIDDEN = "data_collector.venues"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module an ``import`` / ``from ... import`` in ``source`` names (relative imports
    resolved against ``package``, the package the file belongs to), with each imported name
    also as ``module.name`` in case it is a submodule."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path) -> str:
    relative = path.relative_to(SIMULATOR.parent.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1])


def is_forbidden(module: str) -> bool:
    return module == FORBIDDEN or module.startswith(FORBIDDEN + ".")


def test_the_import_check_catches_every_spelling() -> None:
    package = "data_collector.simulator.personalities"
    for source in (
        "import data_collector.venues.mexc",
        "from data_collector.venues import mexc",
        "from data_collector import venues",
        "from ...venues import gateio",
        "def lazy():\n    from data_collector.venues.proto import mexc_push_pb2",
    ):
        assert any(map(is_forbidden, imported_modules(source, package))), source
    assert not any(map(is_forbidden, imported_modules("from .. import market", package)))


def test_no_simulator_file_imports_the_venue_parsers() -> None:
    files = sorted(SIMULATOR.rglob("*.py"))
    assert SIMULATOR / "personalities" / "mexc.py" in files
    offenders = {
        str(path.relative_to(SIMULATOR)): sorted(filter(is_forbidden, found))
        for path in files
        if (found := imported_modules(path.read_text(encoding="utf-8"), package_of(path)))
        and any(map(is_forbidden, found))
    }
    assert offenders == {}


def test_importing_the_simulator_loads_no_venue_module() -> None:
    probe = (
        "import sys, data_collector.simulator, data_collector.simulator.__main__\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
