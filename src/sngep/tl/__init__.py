"""Tools: seeding similarity, number of clusters, DARLC, gene Leiden, module scores, enrichment."""

from sngep.tl._darlc import darlc
from sngep.tl._estimate_k import estimate_k
from sngep.tl._gene_adata import gene_adata
from sngep.tl._gene_leiden import gene_leiden
from sngep.tl._module_enrichment import module_enrichment
from sngep.tl._module_scores import module_scores
from sngep.tl._seed_similarity import seed_similarity

__all__ = [
    "darlc",
    "estimate_k",
    "gene_adata",
    "gene_leiden",
    "module_enrichment",
    "module_scores",
    "seed_similarity",
]
