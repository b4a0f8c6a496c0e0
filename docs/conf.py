"""Sphinx configuration of the shortcutnet documentation (Markdown pages through MyST).

Build: ``pip install ".[docs]" && sphinx-build -W -n -b html docs docs/_build/html``.
The API pages document the installed package, so build after installing it.
"""
from __future__ import annotations

import shortcutnet

project = "shortcutnet"
author = "the shortcutnet developers"
copyright = "the shortcutnet developers"
version = release = shortcutnet.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# Markdown: $...$ and $$...$$ math, definition lists, ::: fences, and anchors for headings down to
# level 3, so that [text](model.md#closed-forms) links are checked at build time.
myst_enable_extensions = ["dollarmath", "amsmath", "deflist", "colon_fence"]
myst_heading_anchors = 3

# Every cross-reference must resolve (-n / nitpicky): the pages' internal links are checked by the
# build itself. Types from outside the project are not documented here (no network for intersphinx).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(np|numpy|pd|pandas|pyarrow|typing|collections|concurrent|os|dataclasses|numbers)(\..*)?"),
    (r"py:.*", r"(Optional|Sequence|Mapping|Iterable|Callable|Union|Any|List|Dict|Tuple)(\[.*)?"),
    (r"py:class", r"(int|float|str|bool|dict|list|tuple|object|callable|None)"),
    # Module constants named in docstrings but not part of the reference.
    (r"py:data", r"DEFAULT_LRS"),
    # shortcutnet.schedules.Schedule, documented on the API page, named unqualified in docstrings.
    (r"py:class", r"Schedule"),
]

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
# Signatures as written in the code; type hints are not repeated in the text (they name NumPy and
# typing objects that are documented elsewhere).
autodoc_typehints = "none"
autodoc_member_order = "bysource"
add_module_names = False

html_theme = "alabaster"
html_title = f"shortcutnet {release}"
html_static_path: list = []
html_theme_options = {
    "description": "Gradient descent on two-layer convolutional networks with and without identity shortcuts",
    "fixed_sidebar": True,
}


def _escape_bars(app, what, name, obj, options, lines):
    """The docstrings write norms as |x| in plain text; reST would read |...| as a substitution.
    Escape the bars outside ``literal`` spans (inside them they are shown as they are)."""
    for i, line in enumerate(lines):
        parts = line.split("``")
        lines[i] = "``".join(part.replace("|", "\\|") if j % 2 == 0 else part for j, part in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
