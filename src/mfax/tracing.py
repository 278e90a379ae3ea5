"""A retrace counter: compiled entry points bump it each time JAX traces them.

``TRACES["rollout"]`` counts the traces of :func:`mfax.dynamics.rollout_batch`; a
second call with the same shapes and static configuration must not increase it.
"""

from collections import Counter

TRACES: Counter[str] = Counter()


def count_trace(name: str) -> None:
    """Call from inside a function body that JAX traces (runs once per trace)."""
    TRACES[name] += 1
