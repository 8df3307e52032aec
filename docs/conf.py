"""Sphinx configuration for sngep (built with -W in the test suite: broken references fail)."""

import shutil
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "src"))

# The tutorials live in ../tutorials (stored with their outputs, executed by the test suite);
# Sphinx only reads inside docs/, so they are copied next to the generated API pages.
_TUTORIALS = _HERE / "generated" / "tutorials"
_TUTORIALS.mkdir(parents=True, exist_ok=True)
for _nb in sorted((_HERE.parent / "tutorials").glob("*.ipynb")):
    shutil.copy2(_nb, _TUTORIALS / _nb.name)

project = "sngep"
author = "sngep developers"
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
autosummary_generate = True
autodoc_typehints = "none"
autodoc_mock_imports = []
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
numpydoc_show_class_members = False
exclude_patterns = ["_build", "generated/*.tmp"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
nb_execution_mode = "off"  # render the stored outputs; tests/test_tutorials.py executes them
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
