"""sngep: spatial gene expression patterns as sparse, noisy images (DARLC) for scverse.

``import sngep`` never imports torch; the deep-learning parts load lazily inside
:func:`sngep.tl.darlc` and :mod:`sngep.models`.
"""

from importlib.metadata import PackageNotFoundError, version

from sngep import datasets, metrics, pl, pp, tl

try:
    __version__ = version("sngep")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["datasets", "metrics", "pl", "pp", "tl", "__version__"]
