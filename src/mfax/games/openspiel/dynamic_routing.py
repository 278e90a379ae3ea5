"""OpenSpiel's mean-field routing game (``openspiel.dynamic_routing``), defined in
``docs/games/openspiel.md``.

Source: OpenSpiel 2.0.2, ``open_spiel/games/mfg/dynamic_routing.cc``
(``mfg_dynamic_routing``) with the networks of
``open_spiel/games/dynamic_routing/dynamic_routing_data.cc``; Cabannes et al. (2022),
"Solving N-player dynamic routing games with congestion: a mean field approach".

Vehicles leave their origin road section at ``t = 0`` towards a destination. A vehicle
that has just entered a section waits there ``max(0, int(tt(v) / dt) - 1)`` steps, where
``tt(v) = t_0 (1 + a (v / c)^b)`` is the section's travel time (BPR) at the volume ``v`` =
number of vehicles times the share of the population on the section when it enters; then
it picks one of the sections leaving the end node. Its return is ``-dt`` times its
arrival step (the step at which it moves onto its destination), ``-dt (T + 1)`` if it
never arrives or runs into a dead end.

mfax states: ``(section, w)`` for a vehicle on a section with ``w`` steps left to wait
(``w = -1``: just entered, the wait not yet set, which the kernel at the next step sets
from that step's mean field, as OpenSpiel's mean-field node does; ``w <= T - 1``, or up
to ``2T - 1`` where a travel time can exceed the horizon, see ``_top_wait``), and one
state for the vehicles that are done. Actions are OpenSpiel's: 0 (no move) and ``1..L`` the sections
(sorted by start node, then end node); a section that does not leave the current end node
acts as the first one that does, and every action is the same where the vehicle cannot
choose. The return is booked at the step it is decided: ``-dt k`` when the move at step
``k`` reaches the destination, ``-dt (T + 1)`` when it reaches a dead end or, at
``T - 1``, for a vehicle still on its way. The travel time is computed in 32-bit floats
as OpenSpiel computes it.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from mfax.games.base import Kernel, check, discount
from mfax.games.no_noise import NoCommonNoise
from mfax.games.openspiel.common import time_observation
from mfax.params import param

# (adjacency, {section: (free-flow time, a, b, capacity)} with OpenSpiel's defaults
# (1, 0, 1, 1) for the missing, origin, destination, departure time, vehicles)
NETWORKS = {
    "braess": (
        {"O": ["A"], "A": ["B", "C"], "B": ["C", "D"], "C": ["D"], "D": ["E"], "E": []},
        {
            "O->A": (0.0, 0.0, 1.0, 5.0),
            "A->B": (1.0, 1.0, 1.0, 5.0),
            "A->C": (2.0, 0.0, 1.0, 5.0),
            "B->C": (0.25, 0.0, 1.0, 5.0),
            "B->D": (2.0, 0.0, 1.0, 5.0),
            "C->D": (1.0, 1.0, 1.0, 5.0),
            "D->E": (0.0, 0.0, 1.0, 5.0),
        },
        "O->A",
        "D->E",
        0.0,
        5.0,
    ),
    "line": (
        {"bef_O": ["O"], "O": ["A"], "A": ["D"], "D": ["aft_D"], "aft_D": []},
        {},
        "bef_O->O",
        "D->aft_D",
        0.0,
        100.0,
    ),
}


def _travel_time(coef, volume, xp):
    """BPR travel time ``t_0 (1 + a (v / c)^b)`` of each section (``coef`` rows ``(t_0, a,
    b, c)``, float32 as OpenSpiel computes it) at volume ``v``, in numpy or jax (``xp``)."""
    t0, a, b, c = (coef[:, k] for k in range(4))
    return t0 * (1.0 + a * xp.power(volume / c, b))


class DynamicRouting(NoCommonNoise):
    name: ClassVar[str] = "openspiel.dynamic_routing"

    network: str = param("braess", "road network: braess or line")
    max_num_time_step: int = param(10, "number of decision steps T")
    time_step_length: float = param(1.0, "length dt of a step (static: it sets the waits)")
    gamma: float = discount(1.0)

    def __check_init__(self):
        check(self.network in NETWORKS, f"network must be one of {', '.join(NETWORKS)}, got {self.network!r}")
        check(self.max_num_time_step >= 1, f"max_num_time_step must be >= 1, got {self.max_num_time_step}")
        check(self.time_step_length > 0.0, f"time_step_length must be > 0, got {self.time_step_length}")

    # -- the network (static) --------------------------------------------------------------
    def sections(self) -> list[str]:
        """Road sections in OpenSpiel's action order (action ``1 + i``)."""
        adjacency = NETWORKS[self.network][0]
        return [f"{a}->{b}" for a in sorted(adjacency) for b in sorted(adjacency[a])]

    @property
    def horizon(self) -> int:
        return self.max_num_time_step

    @property
    def _top_wait(self) -> int:
        """The largest wait a state holds: ``T - 1``, or more where a travel time can
        exceed the horizon (a short ``dt``): up to the longest possible wait (every
        vehicle on one section), capped at ``2T - 1``. A vehicle waiting ``w >= T`` never
        arrives, and OpenSpiel's distribution support (waits ``-1..T-1``) leaves it out
        of its section's volume until its wait falls below ``T``; from ``2T - 1`` on it
        never does within the horizon, so larger waits are the same state (exact)."""
        horizon = self.max_num_time_step
        _, _, _, coef = self._structure()
        longest = np.max(_travel_time(coef, np.float32(NETWORKS[self.network][5]), np))  # BPR grows with the volume
        # (+ 1: the traced wait divides in the mean field's dtype, which may round up)
        most = int(float(longest) / self.time_step_length) + 1
        return max(horizon - 1, min(most, 2 * horizon - 1))

    @property
    def _waits(self) -> int:
        return self._top_wait + 2  # w = -1.._top_wait

    @property
    def n_states(self) -> int:
        return len(self.sections()) * self._waits + 1  # + done

    @property
    def n_actions(self) -> int:
        return 1 + len(self.sections())

    def state_index(self, section: int, wait: int) -> int:
        """The state of a vehicle on section ``section`` (0-based) with ``wait`` left."""
        return section * self._waits + (wait + 1)

    @property
    def done(self) -> int:
        return self.n_states - 1

    def _tables(self):
        adjacency, bpr, origin, destination, departure, _ = NETWORKS[self.network]
        names = self.sections()
        ends = [s.split("->")[1] for s in names]
        succ = [[1 + names.index(f"{e}->{d}") for d in sorted(adjacency[e])] for e in ends]
        return names, succ, bpr, names.index(origin), names.index(destination), departure

    def legal_actions(self) -> np.ndarray:
        """``(n, m)`` OpenSpiel's legal actions where the vehicle may choose (rows of
        ``w = -1`` and ``w = 0``: the sections leaving the end node); elsewhere action 0."""
        _, succ, *_ = self._tables()
        legal = np.zeros((self.n_states, self.n_actions))
        legal[:, 0] = 1.0
        for i, options in enumerate(succ):
            for w in (-1, 0):
                if options:
                    legal[self.state_index(i, w)] = 0.0
                    legal[self.state_index(i, w), options] = 1.0
        return legal

    # -- the protocol ----------------------------------------------------------------------
    def state_features(self):
        n = self.n_states
        return (jnp.arange(n, dtype=float) / (n - 1))[:, None]

    @property
    def actions_categorical(self):
        return True  # action indices label moves or options, not quantities

    def action_values(self):
        return jnp.arange(self.n_actions, dtype=float)

    def initial_mean_field(self, noise):
        _, _, _, origin, _, departure = self._tables()
        wait = min(int(departure / self.time_step_length), self._top_wait)
        return jnp.zeros(self.n_states).at[self.state_index(origin, wait)].set(1.0)

    def _structure(self):
        """Per (section, action): the section moved to (0-based), whether it is the
        destination, whether it is a dead end; per section its BPR numbers."""
        names, succ, bpr, _, destination, _ = self._tables()
        L, m = len(names), self.n_actions
        target = np.zeros((L, m), np.int64)
        for i in range(L):
            options = succ[i] or [0]
            for a in range(m):
                target[i, a] = (a if a in options else options[0]) - 1  # -1: no successor
        adjacency = NETWORKS[self.network][0]
        dead = np.array([not adjacency[s.split("->")[1]] for s in names])
        coef = np.array([bpr.get(s, (1.0, 0.0, 1.0, 1.0)) for s in names], np.float32)
        return target, destination, dead, coef

    def _wait(self, mu):
        """``(L,)`` the wait set for a vehicle entering each section now, from ``mu``."""
        _, _, _, coef = self._structure()
        total = NETWORKS[self.network][5]
        L = len(self.sections())
        # OpenSpiel's volume: the section's vehicles with a wait of -1..T-1 (its support)
        density = jnp.sum(mu[:-1].reshape(L, self._waits)[:, : self.max_num_time_step + 1], axis=1)
        volume = (total * density).astype(jnp.float32)
        tt = _travel_time(jnp.asarray(coef), volume, jnp).astype(jnp.float32)
        return jnp.maximum(0, (tt.astype(mu.dtype) / self.time_step_length).astype(jnp.int32) - 1)

    def _static_moves(self):
        """Per state: its section and wait (``-1``; the done state: section ``-1``), and
        per (state, action) the state a move leads to and its kind (0 none, 1 arrival,
        2 dead end); rows where nobody can move lead to the done state."""
        target, destination, dead, _ = self._structure()
        L, W, m = len(self.sections()), self._waits, self.n_actions
        section = np.append(np.repeat(np.arange(L), W), -1)
        wait = np.append(np.tile(np.arange(-1, W - 1), L), 0)
        entered = np.full((self.n_states, m), self.done)
        kind = np.zeros((self.n_states, m), np.int32)
        stuck = np.zeros(self.n_states, bool)
        stuck[-1] = True
        for s in range(self.n_states - 1):
            i = section[s]
            if target[i, 0] < 0:  # no section leaves: nowhere to go
                stuck[s] = True
                continue
            for a in range(m):
                j = int(target[i, a])
                entered[s, a] = self.done if (j == destination or dead[j]) else self.state_index(j, -1)
                kind[s, a] = 1 if j == destination else (2 if dead[j] else 0)
        return section, wait, entered, kind, stuck

    def _moves(self, mu):
        """``(n, m)`` next state and ``(n, m)`` kind of the move (0 wait or none, 1
        arrival, 2 dead end) at the mean field ``mu`` (which sets the waits of ``w = -1``)."""
        section, wait, entered, kind, stuck = self._static_moves()
        new_wait = jnp.minimum(self._wait(mu)[np.maximum(section, 0)], self._top_wait + 1)
        current = jnp.where(wait == -1, new_wait, wait)  # the wait left at this step
        stay = np.maximum(section, 0) * self._waits + current  # (section, current - 1)
        waiting = (current > 0)[:, None] | stuck[:, None]
        nxt = jnp.where(waiting, jnp.where(stuck[:, None], self.done, stay[:, None]), entered)
        return nxt.astype(jnp.int32), jnp.where(waiting, 0, kind)

    def kernel(self, mu, noise, t):
        nxt, _ = self._moves(mu)
        return Kernel(nxt[..., None], jnp.ones((*nxt.shape, 1), mu.dtype))

    def reward(self, mu, mu_next, noise, t):
        _, kind = self._moves(mu)
        late = self.time_step_length * (self.max_num_time_step + 1)
        return jnp.where(kind == 1, -self.time_step_length * t, jnp.where(kind == 2, -late, 0.0)).astype(mu.dtype)

    def terminal_reward(self, mu, mu_next, noise, t):
        # at T - 1 a vehicle that does not arrive now is never arriving
        _, kind = self._moves(mu)
        late = self.time_step_length * (self.max_num_time_step + 1)
        on_way = jnp.arange(self.n_states) != self.done
        return jnp.where(kind == 1, -self.time_step_length * t, jnp.where(on_way[:, None], -late, 0.0)).astype(mu.dtype)

    def observation(self, mu, noise, t):
        return time_observation(mu, t, self.horizon)
