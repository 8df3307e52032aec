"""Conventions every public function keeps (in the spirit of scanpy's test_package_structure)."""

import inspect
import subprocess
import sys

import pytest

import sngep

ADATA_FUNCS = [
    (mod, name)
    for mod in (sngep.pp, sngep.tl, sngep.pl)
    for name in mod.__all__
    if name != "images_from_array"
]


@pytest.mark.parametrize(
    ("mod", "name"), ADATA_FUNCS, ids=[f"{m.__name__}.{n}" for m, n in ADATA_FUNCS]
)
def test_adata_first_rest_keyword_only(mod, name):
    sig = inspect.signature(getattr(mod, name))
    params = list(sig.parameters.values())
    assert params[0].name == "adata"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    rest = params[1:]
    if mod is sngep.tl and name == "module_enrichment":
        # issue 12's signature: module_enrichment(adata, gene_sets="go_bp", *, ...)
        assert rest[0].name == "gene_sets"
        assert rest[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        rest = rest[1:]
    for p in rest:
        assert p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD), p.name
    if mod is sngep.tl and name == "gene_adata":  # builds a new, gene-level object by design
        assert "AnnData" in str(sig.return_annotation)
    elif mod is sngep.tl and name == "module_enrichment":  # a table is its product (stored too)
        assert "copy" in sig.parameters and sig.parameters["copy"].default is False
        assert "key_added" in sig.parameters
        assert "DataFrame" in str(sig.return_annotation)
        assert "AnnData" in str(sig.return_annotation)
    elif mod is not sngep.pl:
        assert "copy" in sig.parameters and sig.parameters["copy"].default is False
        assert "key_added" in sig.parameters
        assert "AnnData" in str(sig.return_annotation) and "None" in str(sig.return_annotation)
    else:
        assert {"ax", "show", "return_fig"} <= set(sig.parameters)


def test_seed_argument_name_is_random_state():
    for mod in (sngep.pp, sngep.tl, sngep.datasets):
        for name in mod.__all__:
            params = inspect.signature(getattr(mod, name)).parameters
            assert not {"seed", "random_seed"} & set(params), name


def test_import_does_not_import_torch():
    code = "import sys, sngep, sngep.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
