"""The model: quantities, what becomes shared, the closed form, and scenarios.

- :mod:`~costmodel.model.variables` — every quantity once (symbol, unit, meaning, source);
- :mod:`~costmodel.model.kernel` — the kernel's and QEMU's sizing rules, as numbers;
- :mod:`~costmodel.model.sources` — what a confidential guest converts to shared, and where;
- :mod:`~costmodel.model.union` — each hugepage counted once over the clusters;
- :mod:`~costmodel.model.forms` — the model's forms, by name (plain data);
- :mod:`~costmodel.model.closed_form` — the SymPy expressions (no numbers bound);
- :mod:`~costmodel.model.scenarios` — what-ifs as substitutions on those expressions.
"""

# Lazy (PEP 562): ``costmodel.model.kernel`` holds plain numbers that the shape checks and the
# placement simulator use without SymPy; importing the package must not load the closed form.
# FORMS, ModelForm and CLUSTERS are plain data and come from SymPy-free modules.
__all__ = ["CLUSTERS", "FORMS", "CostModel", "ModelForm", "atomic_pool_rule", "model_for", "swiotlb_rule"]
_PLAIN = {"FORMS": "costmodel.model.forms", "ModelForm": "costmodel.model.forms", "CLUSTERS": "costmodel.model.variables"}


def __getattr__(name):
    if name in _PLAIN:
        import importlib

        return getattr(importlib.import_module(_PLAIN[name]), name)
    if name in __all__:
        from costmodel.model import closed_form

        return getattr(closed_form, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
