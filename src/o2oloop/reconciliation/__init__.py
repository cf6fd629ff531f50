"""Reconciliation: the books against the provider, settlements and unused paid codes."""
