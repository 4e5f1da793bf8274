"""Every package of the source tree is declared in pyproject.toml and imports from the wheel.

Run with ``python -P`` from the repository root: the source tree is then not
on the path, so an undeclared package (an installed monitor once lacked
``monitor.network``) fails here instead of on a Pi.
"""

import importlib
import sys
import tomllib
from pathlib import Path

declared = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
in_tree = {
    ".".join(init.parent.parts)
    for top in ("monitor", "devices")
    for init in Path(top).rglob("__init__.py")
}
undeclared = sorted(in_tree - set(declared))
if undeclared:
    sys.exit(f"packages in the tree but not in pyproject.toml: {', '.join(undeclared)}")
for name in declared:
    module = importlib.import_module(name)
    where = Path(module.__file__ or "").resolve()
    if any(where.is_relative_to(Path.cwd() / top) for top in ("monitor", "devices", "config")):
        sys.exit(f"{name} imported from the source tree ({where}), not the installed wheel")
print(f"{len(declared)} packages import from the installed wheel")
