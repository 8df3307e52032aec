"""Real spatial datasets and a synthetic generator with planted patterns."""

from sngep.datasets._real import breast_cancer, dlpfc, mouse_olfactory_bulb, slideseq_purkinje
from sngep.datasets._synthetic import synthetic

__all__ = ["breast_cancer", "dlpfc", "mouse_olfactory_bulb", "slideseq_purkinje", "synthetic"]
