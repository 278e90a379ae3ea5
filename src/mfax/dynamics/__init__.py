"""Dynamics: how the world moves, exactly (push-forward) or sampled (population)."""

from mfax.dynamics.noise import NoiseBatch, enumerate_noise, noise_batch, sample_noise
from mfax.dynamics.population import (
    PopulationStep,
    PopulationTrajectory,
    agent_returns,
    empirical_mean_field,
    population_reset,
    population_rollout,
    population_step,
)
from mfax.dynamics.pushforward import (
    Trajectory,
    forward_scan,
    push_forward,
    push_forward_paths,
    push_path,
    rollout,
    rollout_batch,
    step,
)

__all__ = [
    "NoiseBatch",
    "PopulationStep",
    "PopulationTrajectory",
    "Trajectory",
    "agent_returns",
    "empirical_mean_field",
    "enumerate_noise",
    "forward_scan",
    "noise_batch",
    "population_reset",
    "population_rollout",
    "population_step",
    "push_forward",
    "push_forward_paths",
    "push_path",
    "rollout",
    "rollout_batch",
    "sample_noise",
    "step",
]
