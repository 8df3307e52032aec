"""Tools: seeding similarity, number of clusters, DARLC."""

from sngep.tl._darlc import darlc
from sngep.tl._estimate_k import estimate_k
from sngep.tl._seed_similarity import seed_similarity

__all__ = ["darlc", "estimate_k", "seed_similarity"]
