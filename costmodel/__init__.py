"""costmodel: hugepage split/merge cost of private↔shared conversion in confidential VMs.

A closed-form SymPy model (:mod:`costmodel.model`) of how many guest_memfd hugepages a
confidential guest (AMD SEV-SNP, Intel TDX) splits and merges, and what the conversions
cost, bound to numbers by a calibration (:mod:`costmodel.calibration`) and evaluated fast
over whole grids (:mod:`costmodel.evaluate`).
"""

__version__ = "0.1.0"
