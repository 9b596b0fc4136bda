"""The apps' boundaries, read from the source with `ast` (every import, function-level ones included).

- `conversations` is the hub: it imports none of the apps that plug into it.
- The console (`conversations.console`) is used by other apps only through its public pieces:
  `permissions` (who is an agent or a supervisor), `presence` (who is online) and `visibility` (who may
  open which conversation).
- Channel apps never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("conversations", "channels_web", "channels_whatsapp", "channels_voice", "leads", "rag")
CONSOLE_PUBLIC = {
    "conversations.console.permissions",
    "conversations.console.presence",
    "conversations.console.visibility",
}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
    ]


def test_the_reader_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def later():\n    from conversations.console import views\n")
    assert "conversations.console.views" in imported_modules(source)


def test_the_core_imports_no_app_that_plugs_into_it() -> None:
    others = tuple(app for app in APPS if app != "conversations")
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources("conversations")
        for module in imported_modules(path)
        if module.split(".")[0] in others
    }
    assert not offenders


@pytest.mark.parametrize("app", [app for app in APPS if app != "conversations"])
def test_other_apps_use_only_the_consoles_public_pieces(app: str) -> None:
    offenders = set()
    for path in sources(app):
        for module in imported_modules(path):
            if module.startswith("conversations.console.") and not any(
                module == public or module.startswith(public + ".") for public in CONSOLE_PUBLIC
            ):
                offenders.add(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders


@pytest.mark.parametrize("app", [app for app in APPS if app.startswith("channels_")])
def test_channel_apps_do_not_import_each_other(app: str) -> None:
    others = {name for name in APPS if name.startswith("channels_") and name != app}
    offenders = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(app)
        for module in imported_modules(path)
        if module.split(".")[0] in others
    }
    assert not offenders
