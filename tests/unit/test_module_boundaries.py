"""A domain's private names (a leading underscore) stay in the domain: another package that
needs one needs a public function, named and documented by its owner. The layers and the
absence of cycles are checked by import-linter (``[tool.importlinter]`` in pyproject.toml,
run by ``dev.py check``); this is the rule it cannot express."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _package_of(module: str) -> str:
    # namma.loans.service → namma.loans; namma.cli → namma.cli
    return ".".join(module.split(".")[:2])


def private_imports_across_packages(src: Path = SRC) -> list[str]:
    found = []
    for path in sorted((src / "namma").rglob("*.py")):
        importer = ".".join(path.relative_to(src).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            if not node.module.startswith("namma."):
                continue
            if _package_of(node.module) == _package_of(importer):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{importer}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_package_imports_another_packages_private_names() -> None:
    assert private_imports_across_packages() == []


def test_the_check_sees_a_private_import_across_packages_only(tmp_path: Path) -> None:
    pages = tmp_path / "namma" / "web"
    loans = tmp_path / "namma" / "loans"
    pages.mkdir(parents=True)
    loans.mkdir()
    (pages / "page.py").write_text(
        "from namma.loans.service import _snapshot, loan_get\nfrom namma.web.i18n import _t\n"
    )
    (loans / "queries.py").write_text("from namma.loans.service import _snapshot\n")
    assert private_imports_across_packages(tmp_path) == [
        "namma.web.page:1 imports namma.loans.service._snapshot"
    ]
