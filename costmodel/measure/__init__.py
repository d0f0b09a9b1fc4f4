"""Measuring on a real host: the bpftrace collector, trace ingestion and the sweep driver."""
