"""Policies: mean-field policy heads (fixed, tabular; learned ones come with the solvers)."""

from mfax.policies.base import FixedAction, Policy, Tabular, Uniform, parse_policy

__all__ = ["FixedAction", "Policy", "Tabular", "Uniform", "parse_policy"]
