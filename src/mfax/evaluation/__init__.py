"""Evaluation: exact policy value, best responses and exploitability."""

from mfax.evaluation.exploitability import Evaluation, PathValues, evaluate, path_values
from mfax.evaluation.values import (
    backup,
    backward_induction,
    backward_scan,
    best_response_value,
    info_average,
    info_best_response_value,
    info_deviation,
    info_max,
    info_share,
    path_return,
    policy_and_best_response_values,
    policy_and_info_values,
    policy_value,
    q_values,
    same_history,
)

__all__ = [
    "Evaluation",
    "PathValues",
    "backup",
    "backward_induction",
    "backward_scan",
    "best_response_value",
    "evaluate",
    "info_average",
    "info_best_response_value",
    "info_deviation",
    "info_max",
    "info_share",
    "path_return",
    "path_values",
    "policy_and_best_response_values",
    "policy_and_info_values",
    "policy_value",
    "q_values",
    "same_history",
]
