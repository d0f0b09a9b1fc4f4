"""Shared fixtures. Hypothesis: a fixed, CI-sized profile so runs are reproducible."""

import os
import tempfile

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tests never read or write the user's cache (~/.cache/costmodel): each test process
# (and the notebook kernels it starts, which inherit the environment) gets a fresh one.
os.environ["COSTMODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="costmodel-test-cache-")


@pytest.fixture(scope="session")
def reference_calibration():
    """The default calibration, derived from costmodel/reference (once per worker)."""
    from costmodel import calibration

    return calibration.default()
