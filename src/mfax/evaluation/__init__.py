"""Evaluation: exact policy value, best responses and exploitability."""

from mfax.evaluation.exploitability import Evaluation, PathValues, evaluate, path_values
from mfax.evaluation.values import (
    backward_induction,
    best_response_value,
    info_best_response_value,
    policy_value,
    q_values,
    same_history,
)

__all__ = [
    "Evaluation",
    "PathValues",
    "backward_induction",
    "best_response_value",
    "evaluate",
    "info_best_response_value",
    "path_values",
    "policy_value",
    "q_values",
    "same_history",
]
