"""Shared fixtures. Hypothesis: a fixed, CI-sized profile so runs are reproducible."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def reference_calibration():
    """The default calibration, derived from data/reference (once per worker)."""
    from costmodel import calibration

    return calibration.default()
