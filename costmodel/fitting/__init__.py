"""Fitting the model's coefficients to measured runs, with honest uncertainty."""

from costmodel.fitting.fit import *  # noqa: F401,F403 - split into modules in the next step
from costmodel.fitting.fit import FitResult, annotate, extrapolation, fit, simulate, TARGETS  # noqa: F401
