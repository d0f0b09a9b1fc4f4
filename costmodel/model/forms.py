"""The model's forms: structural alternatives of the closed form, by name.

Plain data (no SymPy), so a calibration file's ``form`` can be checked without building
the closed form (:mod:`costmodel.model.closed_form` builds each form's expressions).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelForm:
    """Structural alternatives the data could arbitrate between (today one: the placement
    of docs/placement.md)."""

    name: str = "default"


FORMS: dict[str, ModelForm] = {"default": ModelForm()}
