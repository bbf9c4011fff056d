"""mkdocs hook: draw wizard flow diagrams at build time.

A page line ``<!-- wizard-graph: TARGET -->`` becomes a ```` ```mermaid ```` block with the
flowchart of the wizard TARGET names, from ``Wizard.to_mermaid()``. TARGET is what
``python -m aiostep_dialogs graph`` takes: ``package.module:Class``, ``path/to/file.py`` or
``path/to/file.py:Class`` (paths relative to the directory of ``mkdocs.yml``). A target that
does not load, or names no single wizard, fails the build.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^[ \t]*<!--[ \t]*wizard-graph:[ \t]*(?P<target>\S+)[ \t]*-->[ \t]*$", re.M)

_root = os.getcwd()


def on_config(config: Any) -> Any:
    """Make the project importable (``examples.signup``, ``aiostep_dialogs``...), and resolve
    the snippets' ``base_path: [.]`` against the directory of ``mkdocs.yml``, not the current
    one, so ``mkdocs build -f path/to/mkdocs.yml`` works from anywhere."""
    global _root
    _root = os.path.dirname(os.path.abspath(config.config_file_path))
    if _root not in sys.path:
        sys.path.insert(0, _root)
    snippets = config.mdx_configs.get("pymdownx.snippets")
    if snippets is not None:
        paths = snippets.get("base_path", ["."])
        paths = [paths] if isinstance(paths, str) else paths
        snippets["base_path"] = [os.path.join(_root, path) for path in paths]
    return config


def wizard_graph(target: str, root: str | None = None) -> str:
    """The Mermaid flowchart of the wizard ``target`` names (see the module docstring)."""
    from aiostep_dialogs.loading import load_target

    root = root or _root
    name, sep, attr = target.partition(":")
    if name.endswith(".py"):
        name = os.path.join(root, name)
    try:
        loaded = load_target(name + sep + attr)
    except SystemExit as exc:  # load_target reports a bad target as a command-line error
        raise PluginError(f"wizard-graph {target!r}: {exc}") from exc
    if loaded.wizard is None:
        raise PluginError(f"wizard-graph {target!r}: name one wizard as module:Class")
    return loaded.wizard.to_mermaid()


def render_markers(markdown: str, root: str | None = None) -> str:
    """Replace every wizard-graph marker in ``markdown`` with a mermaid fenced block."""

    def replace(match: re.Match[str]) -> str:
        graph = wizard_graph(match.group("target"), root).rstrip("\n")
        return f"```mermaid\n{graph}\n```"

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Draw the wizard graphs a page asks for."""
    try:
        return render_markers(markdown)
    except PluginError as exc:
        raise PluginError(f"{page.file.src_path}: {exc}") from exc
