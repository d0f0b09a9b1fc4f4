"""The model: quantities, what becomes shared, the closed form, and scenarios.

- :mod:`~costmodel.model.variables` — every quantity once (symbol, unit, meaning, source);
- :mod:`~costmodel.model.sources` — what a confidential guest converts to shared;
- :mod:`~costmodel.model.closed_form` — the SymPy expressions (no numbers bound);
- :mod:`~costmodel.model.scenarios` — what-ifs as substitutions on those expressions.
"""

from costmodel.model.closed_form import (
                                         FORMS,
                                         CostModel,
                                         ModelForm,
                                         atomic_pool_rule,
                                         model_for,
                                         occupancy,
                                         swiotlb_rule,
)

__all__ = ["FORMS", "CostModel", "ModelForm", "atomic_pool_rule", "model_for", "occupancy", "swiotlb_rule"]
