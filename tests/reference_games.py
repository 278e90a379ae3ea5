"""Naive pure-numpy float64 reference ("oracle") for the three published games
(``docs/games/linear_quadratic.md``, ``beach_bar.md``, ``macro.md``).

Written only from the written game definitions and the exploitability definition
(``docs/algorithms/exploitability.md``), independently of ``mfax``; it must never
import ``mfax``.
Clarity over speed: transitions and rewards are defined per (state, action) with
plain Python; the evaluation helpers assemble them into small padded arrays only so
that push-forward and value recursions stay fast enough for the default sizes.

Public API
----------
``ref_linear_quadratic(**kw)``, ``ref_beach_bar(**kw)``, ``ref_macro(**kw)`` build a
``RefGame`` with keyword overrides of the published defaults. A game exposes
``n_states, n_actions, horizon, gamma`` and

- ``noise_paths()`` -> list of (path, probability) (finite-support common noise),
- ``initial_mean_field(path)`` -> (n,),
- ``transitions(s, a, mu, path, t)`` -> {next_state: probability},
- ``reward(s, a, mu, mu_next, path, t)`` -> float (terminal reward when t == T-1),
- ``observation(mu, path, t)`` -> the normalised public observation.

Module functions: ``rollout``, ``policy_value``, ``best_response_value``,
``exploitability``; a policy is ``policy(t, obs_history) -> (n, m)`` array of action
probabilities, ``obs_history`` being the list ``[o_0, ..., o_t]``.

Path objects:
- linear_quadratic: the integer ``z`` in {-1, +1} (0 with common noise off);
- beach_bar: ``(b, closes)`` with ``b`` the bar location and ``closes`` a bool;
- macro: a tuple ``(z_0, ..., z_T)`` of log-productivity values (T+1 floats);
  ``sample_noise_path(rng)`` draws one.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

OBS_TOL = 1e-9  # tolerance used to decide that two public observations are equal


def _round_half_even(x: float) -> int:
    return int(np.round(x))


def _clip(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


class RefGame:
    """Common interface; subclasses implement the game-specific pieces."""

    name: str = ""
    n_states: int
    n_actions: int
    horizon: int
    gamma: float

    def noise_paths(self) -> list[tuple[object, float]]:
        raise NotImplementedError

    def initial_mean_field(self, path) -> np.ndarray:
        raise NotImplementedError

    def transitions(self, s: int, a: int, mu: np.ndarray, path, t: int) -> dict[int, float]:
        raise NotImplementedError

    def reward(self, s: int, a: int, mu: np.ndarray, mu_next: np.ndarray, path, t: int) -> float:
        raise NotImplementedError

    def observation(self, mu: np.ndarray, path, t: int) -> np.ndarray:
        raise NotImplementedError

    def kernel_cache_key(self, path, t: int):
        """Hashable key such that the whole kernel at (path, t) depends on nothing else
        (in particular not on mu), or None when it may depend on mu. Only a speed-up."""
        return None


def _set_overrides(obj, defaults: dict, overrides: dict, game: str) -> None:
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"{game}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    for k, v in defaults.items():
        setattr(obj, k, overrides.get(k, v))


# --------------------------------------------------------------------------------------
# Linear-quadratic
# --------------------------------------------------------------------------------------

_LQ_DEFAULTS = dict(
    num_states=99,
    max_action=3,
    horizon=30,
    gamma=0.99,
    kappa=0.5,
    c_action=0.5,
    q=0.1,
    c_term=1.0,
    sigma=1.0,
    rho=0.5,
    shift=10.0,
    shift_until=8,
    shift_from=20,
    noise_half_width=3,
    common_noise=True,
    idiosyncratic_noise=True,
)


class RefLinearQuadratic(RefGame):
    name = "linear_quadratic"

    def __init__(self, **overrides):
        _set_overrides(self, _LQ_DEFAULTS, overrides, self.name)
        self.n_states = int(self.num_states)
        self.n_actions = 2 * int(self.max_action) + 1
        self.horizon = int(self.horizon)
        self.gamma = float(self.gamma)
        self.action_values = [float(a) for a in range(-self.max_action, self.max_action + 1)]
        ks = list(range(-self.noise_half_width, self.noise_half_width + 1))
        w = [math.exp(-k * k / 2.0) for k in ks]
        tot = sum(w)
        self.noise_offsets = ks
        self.noise_weights = [x / tot for x in w]

    def noise_paths(self):
        if self.common_noise:
            return [(-1, 0.5), (1, 0.5)]
        return [(0, 1.0)]

    def initial_mean_field(self, path):
        return np.full(self.n_states, 1.0 / self.n_states)

    def eps(self, path, t: int) -> float:
        z = float(path) if self.common_noise else 0.0
        if t < self.shift_until:
            return -self.shift * z
        if t > self.shift_from:
            return self.shift * z
        return 0.0

    def kernel_cache_key(self, path, t):
        return ("eps", self.eps(path, t))

    def transitions(self, s, a, mu, path, t):
        top = self.n_states - 1
        av = self.action_values[a]
        d_real = _clip(s + av + self.sigma * self.rho * self.eps(path, t), 0.0, float(top))
        # Spec: "d = clip(...), an integer". With the defaults sigma*rho*eps is an
        # integer already; for other overrides we choose to round d (half to even).
        d = _round_half_even(d_real)
        if not self.idiosyncratic_noise:
            return {d: 1.0}
        out: dict[int, float] = {}
        scale = self.sigma * math.sqrt(1.0 - self.rho**2)
        for k, wk in zip(self.noise_offsets, self.noise_weights, strict=False):
            nxt = int(_clip(_round_half_even(d + scale * k), 0, top))
            out[nxt] = out.get(nxt, 0.0) + wk
        return out

    @staticmethod
    def mean(mu) -> float:
        return float(np.dot(np.arange(len(mu), dtype=np.float64), np.asarray(mu, dtype=np.float64)))

    def reward(self, s, a, mu, mu_next, path, t):
        m_next = self.mean(mu_next)  # the reward uses m_{t+1}, not m_t
        dev = m_next - s
        if t == self.horizon - 1:
            return float(-self.c_term / 2.0 * dev * dev)
        av = self.action_values[a]
        return float(-self.c_action * av * av + self.q * av * dev - self.kappa / 2.0 * dev * dev)

    def observation(self, mu, path, t):
        # the policy sees m_t / 99 (= n_states).
        return np.array([self.mean(mu) / self.n_states], dtype=np.float64)


# --------------------------------------------------------------------------------------
# Beach bar
# --------------------------------------------------------------------------------------

_BB_DEFAULTS = dict(
    num_states=101,
    max_action=5,
    horizon=30,
    gamma=0.99,
    idiosyncratic_probs=(0.05, 0.1, 0.7, 0.1, 0.05),
    close_probability=0.5,
    common_noise=True,
    idiosyncratic_noise=True,
)


class RefBeachBar(RefGame):
    name = "beach_bar"

    def __init__(self, **overrides):
        _set_overrides(self, _BB_DEFAULTS, overrides, self.name)
        n = self.n_states = int(self.num_states)
        self.n_actions = 2 * int(self.max_action) + 1
        self.horizon = int(self.horizon)
        self.gamma = float(self.gamma)
        self.action_values = list(range(-self.max_action, self.max_action + 1))
        probs = [float(p) for p in self.idiosyncratic_probs]
        half = len(probs) // 2  # offsets -half..half (-2..2 by default)
        self.noise = list(zip(range(-half, half + 1), probs, strict=False))
        self.bar_lo = math.floor(0.25 * n)
        self.bar_hi = math.ceil(0.75 * n) - 1
        self.close_time = self.horizon // 2

    def noise_paths(self):
        bars = list(range(self.bar_lo, self.bar_hi + 1))
        pb = 1.0 / len(bars)
        out = []
        for b in bars:
            if self.common_noise:
                pc = float(self.close_probability)
                out.append(((b, False), pb * (1.0 - pc)))
                out.append(((b, True), pb * pc))
            else:
                out.append(((b, False), pb))
        return out

    def z(self, path, t: int) -> float:
        """z_t for t = 0..T: 1 while open; the drawn value from t = T//2 on."""
        _, closes = path
        if self.common_noise and closes and t >= self.close_time:
            return 0.0
        return 1.0

    def initial_mean_field(self, path):
        b, _ = path
        mu = np.full(self.n_states, 1.0 / (self.n_states - 1))
        mu[b] = 0.0
        return mu

    def kernel_cache_key(self, path, t):
        return ("bar", path[0])

    @staticmethod
    def legal(s: int, p: int, b: int) -> int:
        # s == b never carries mass (mu_0(b) = 0 and nobody can land on b); we choose
        # to leave such moves unconstrained.
        if s < b and p >= b:
            return b - 1
        if s > b and p <= b:
            return b + 1
        return p

    def transitions(self, s, a, mu, path, t):
        b, _ = path
        top = self.n_states - 1
        d = self.legal(s, _clip(s + self.action_values[a], 0, top), b)
        if not self.idiosyncratic_noise:
            return {d: 1.0}
        out: dict[int, float] = {}
        for k, pk in self.noise:
            nxt = self.legal(s, _clip(d + k, 0, top), b)  # legality from the original s
            out[nxt] = out.get(nxt, 0.0) + pk
        return out

    def reward(self, s, a, mu, mu_next, path, t):
        # Same formula at every step including the last (t = T-1 uses z_T).
        b, _ = path
        n = self.n_states
        dist = abs(b - s)
        r = -dist * self.z(path, t)
        if dist == 1 and self.z(path, t + 1) == 0.0:
            r -= n
        r -= abs(self.action_values[a]) / n
        return float(r)

    def observation(self, mu, path, t):
        b, _ = path
        n = self.n_states
        m = float(np.dot(np.arange(n, dtype=np.float64), mu))
        return np.array([1.0 - m / n, self.z(path, t), 1.0 - b / n], dtype=np.float64)


# --------------------------------------------------------------------------------------
# Macro (Krusell-Smith style)
# --------------------------------------------------------------------------------------

_MACRO_DEFAULTS = dict(
    num_wealth=200,
    num_income=5,
    num_actions=20,
    horizon=128,
    gamma=0.95,
    wealth_max=99.0,
    income_min=0.1,
    income_max=2.0,
    grid_pivot=0.25,
    alpha=0.36,
    crra=2.0,
    z_persistence=0.9,
    z_std=0.03,
    income_probs=(0.1, 0.8, 0.1),
    common_noise=True,
    idiosyncratic_noise=True,
)


class RefMacro(RefGame):
    name = "macro"

    def __init__(self, **overrides):
        _set_overrides(self, _MACRO_DEFAULTS, overrides, self.name)
        p = float(self.grid_pivot)
        self.wealth_grid = np.maximum(np.geomspace(0.0 + p, self.wealth_max + p, self.num_wealth) - p, 0.0)
        self.income_grid = np.geomspace(self.income_min + p, self.income_max + p, self.num_income) - p
        self._wl = [float(x) for x in self.wealth_grid]
        self.n_states = int(self.num_wealth * self.num_income)
        self.n_actions = int(self.num_actions)
        self.horizon = int(self.horizon)
        self.gamma = float(self.gamma)
        self.action_values = [(k + 0.5) / self.num_actions for k in range(self.num_actions)]
        # per-state value vectors x(s) = (w, y), index i * num_income + j
        self.state_wealth = np.array(
            [self.wealth_grid[s // self.num_income] for s in range(self.n_states)], dtype=np.float64
        )
        self.state_income = np.array(
            [self.income_grid[s % self.num_income] for s in range(self.n_states)], dtype=np.float64
        )
        probs = [float(x) for x in self.income_probs]
        half = len(probs) // 2
        self.income_moves = list(zip(range(-half, half + 1), probs, strict=False))

    def noise_paths(self):
        if self.common_noise:
            raise NotImplementedError("macro common noise is continuous; use sample_noise_path")
        return [(tuple([0.0] * (self.horizon + 1)), 1.0)]

    def sample_noise_path(self, rng: np.random.Generator):
        z = [0.0]
        for _ in range(self.horizon):
            z.append(
                self.z_persistence * z[-1] + self.z_std * float(rng.standard_normal()) if self.common_noise else 0.0
            )
        return tuple(z)

    def initial_mean_field(self, path):
        return np.full(self.n_states, 1.0 / self.n_states)

    def prices(self, mu, path, t) -> tuple[float, float]:
        z = float(path[t]) if self.common_noise else 0.0
        K = float(np.dot(mu, self.state_wealth))
        L = float(np.dot(mu, self.state_income))
        a = self.alpha
        r = math.exp(z) * a * (L / (K + 1e-6)) ** (1.0 - a)
        W = math.exp(z) * (1.0 - a) * (K / (L + 1e-6)) ** a
        return r, W

    def cash(self, s, mu, path, t) -> float:
        r, W = self.prices(mu, path, t)
        i, j = divmod(s, self.num_income)
        return (1.0 + r) * self._wl[i] + W * float(self.income_grid[j])

    def utility(self, x: float) -> float:
        if self.crra == 1.0:  # limit case (not used by the defaults)
            return math.log(x)
        return x ** (1.0 - self.crra) / (1.0 - self.crra)

    def wealth_lottery(self, w_next: float) -> dict[int, float]:
        g = self._wl
        if w_next <= g[0]:
            return {0: 1.0}
        if w_next >= g[-1]:
            return {len(g) - 1: 1.0}
        hi = bisect.bisect_right(g, w_next)  # g[hi-1] <= w_next < g[hi]
        lo = hi - 1
        p_hi = (w_next - g[lo]) / (g[hi] - g[lo])
        out = {lo: 1.0 - p_hi}
        if p_hi > 0.0:
            out[hi] = p_hi
        return out

    def transitions(self, s, a, mu, path, t):
        c = self.cash(s, mu, path, t)
        w_next = c * (1.0 - self.action_values[a])
        _i, j = divmod(s, self.num_income)
        if self.idiosyncratic_noise:
            inc = {}
            for dj, pj in self.income_moves:
                jj = _clip(j + dj, 0, self.num_income - 1)
                inc[jj] = inc.get(jj, 0.0) + pj
        else:  # chosen: without idiosyncratic noise the income index stays put
            inc = {j: 1.0}
        out: dict[int, float] = {}
        for ii, pw in self.wealth_lottery(w_next).items():
            for jj, pj in inc.items():
                k = ii * self.num_income + jj
                out[k] = out.get(k, 0.0) + pw * pj
        return out

    def reward(self, s, a, mu, mu_next, path, t):
        c = self.cash(s, mu, path, t)  # prices at t (from mu_t, z_t)
        if t == self.horizon - 1:
            return float(self.utility(c))  # terminal: everything consumed
        return float(self.utility(c * self.action_values[a]))

    def observation(self, mu, path, t):
        # the macro observation is not normalised: raw [r_t, W_t].
        r, W = self.prices(mu, path, t)
        return np.array([r, W], dtype=np.float64)


def ref_linear_quadratic(**overrides) -> RefLinearQuadratic:
    return RefLinearQuadratic(**overrides)


def ref_beach_bar(**overrides) -> RefBeachBar:
    return RefBeachBar(**overrides)


def ref_macro(**overrides) -> RefMacro:
    return RefMacro(**overrides)


# --------------------------------------------------------------------------------------
# Policies (helpers)
# --------------------------------------------------------------------------------------


def uniform_policy(game: RefGame):
    table = np.full((game.n_states, game.n_actions), 1.0 / game.n_actions)
    return lambda t, obs_history: table


def constant_action_policy(game: RefGame, action_index: int):
    table = np.zeros((game.n_states, game.n_actions))
    table[:, action_index] = 1.0
    return lambda t, obs_history: table


# --------------------------------------------------------------------------------------
# Evaluation along one noise path
# --------------------------------------------------------------------------------------


class _Kernel:
    """Padded sparse kernel of one step: idx, prob of shape (n, m, K)."""

    def __init__(self, game: RefGame, mu, path, t):
        n, m = game.n_states, game.n_actions
        dists = [[game.transitions(s, a, mu, path, t) for a in range(m)] for s in range(n)]
        kmax = max(len(d) for row in dists for d in row)
        self.idx = np.zeros((n, m, kmax), dtype=np.int64)
        self.prob = np.zeros((n, m, kmax), dtype=np.float64)
        for s in range(n):
            for a in range(m):
                for k, (nxt, p) in enumerate(dists[s][a].items()):
                    self.idx[s, a, k] = nxt
                    self.prob[s, a, k] = p

    def push(self, mu, pi):
        out = np.zeros(mu.shape[0])
        np.add.at(out, self.idx.ravel(), (mu[:, None, None] * pi[:, :, None] * self.prob).ravel())
        return out

    def expect(self, v):
        """(n, m): sum_s' P(s'|s,a) v(s')."""
        return (self.prob * v[self.idx]).sum(-1)


class _Trajectory:
    def __init__(self, mus, obs, pis, kernels, rewards):
        self.mus = mus  # T+1 arrays (n,)
        self.obs = obs  # T arrays (o_0..o_{T-1})
        self.pis = pis  # T arrays (n, m)
        self.kernels = kernels  # T _Kernel
        self.rewards = rewards  # T arrays (n, m)


def _check_pi(game, pi, t):
    pi = np.asarray(pi, dtype=np.float64)
    if pi.shape != (game.n_states, game.n_actions):
        raise ValueError(f"policy at t={t} has shape {pi.shape}, expected {(game.n_states, game.n_actions)}")
    if np.any(pi < -1e-12) or not np.allclose(pi.sum(1), 1.0, atol=1e-9):
        raise ValueError(f"policy at t={t} is not a probability table")
    return pi


def _trajectory(game: RefGame, policy, path, kernel_cache=None) -> _Trajectory:
    if kernel_cache is None:
        kernel_cache = {}
    mu = np.asarray(game.initial_mean_field(path), dtype=np.float64)
    mus, obs, pis, kernels = [mu], [], [], []
    for t in range(game.horizon):
        obs.append(np.asarray(game.observation(mu, path, t), dtype=np.float64))
        pi = _check_pi(game, policy(t, list(obs)), t)
        key = game.kernel_cache_key(path, t)
        if key is None:
            ker = _Kernel(game, mu, path, t)
        else:
            ker = kernel_cache.get(key)
            if ker is None:
                ker = kernel_cache[key] = _Kernel(game, mu, path, t)
        mu = ker.push(mu, pi)
        mus.append(mu)
        pis.append(pi)
        kernels.append(ker)
    rewards = []
    for t in range(game.horizon):
        R = np.empty((game.n_states, game.n_actions))
        for s in range(game.n_states):
            for a in range(game.n_actions):
                R[s, a] = game.reward(s, a, mus[t], mus[t + 1], path, t)
        rewards.append(R)
    return _Trajectory(mus, obs, pis, kernels, rewards)


def rollout(game: RefGame, policy, path) -> list[np.ndarray]:
    """Exact push-forward mu_0..mu_T along one noise path."""
    mu = np.asarray(game.initial_mean_field(path), dtype=np.float64)
    mus, obs = [mu], []
    for t in range(game.horizon):
        obs.append(np.asarray(game.observation(mu, path, t), dtype=np.float64))
        pi = _check_pi(game, policy(t, list(obs)), t)
        nxt = np.zeros(game.n_states)
        for s in range(game.n_states):
            if mu[s] == 0.0:
                continue
            for a in range(game.n_actions):
                w = mu[s] * pi[s, a]
                if w == 0.0:
                    continue
                for s2, p in game.transitions(s, a, mu, path, t).items():
                    nxt[s2] += w * p
        mu = nxt
        mus.append(mu)
    return mus


def _values(game, traj: _Trajectory, best: bool):
    v = np.zeros(game.n_states)
    for t in reversed(range(game.horizon)):
        q = traj.rewards[t] + game.gamma * traj.kernels[t].expect(v)
        v = q.max(1) if best else (traj.pis[t] * q).sum(1)
    return v


def policy_value(game: RefGame, policy, path) -> np.ndarray:
    """V^pi_0 (n,) by the exact backward recursion along the path's mean-field path."""
    return _values(game, _trajectory(game, policy, path), best=False)


def best_response_value(game: RefGame, policy, path) -> np.ndarray:
    """V*_0 (n,): per-path best response (the deviator knows the realised path)."""
    return _values(game, _trajectory(game, policy, path), best=True)


def _split(members, obs_of, tol=OBS_TOL):
    """Cluster path indices by observation (max-abs difference <= tol)."""
    groups: list[list[int]] = []
    reps: list[np.ndarray] = []
    for p in members:
        o = obs_of(p)
        for g, r in zip(groups, reps, strict=False):
            if r.shape == o.shape and np.max(np.abs(r - o), initial=0.0) <= tol:
                g.append(p)
                break
        else:
            groups.append([p])
            reps.append(o)
    return groups


def exploitability(game: RefGame, policy, paths=None) -> dict:
    """Exploitability of ``policy`` over the game's finite noise paths.

    ``paths`` defaults to ``game.noise_paths()``; pass a list of (path, weight) to
    evaluate on sampled paths (e.g. macro with common noise on).

    Returns a dict with
    - exploitability: sum_p P(p) sum_s mu0(s) (V*_p(s) - V_p(s)) (per-path deviator),
    - exploitability_info: information-consistent version, deviator's backward
      induction on the tree of public-observation histories (max after the
      expectation over indistinguishable paths),
    - policy_return: sum_p P(p) sum_s mu0 V_p,
    - best_response_return: sum_p P(p) sum_s mu0 V*_p,
    - best_response_info_return: the information-consistent best-response return,
    - best_response_info_realised_return: what that greedy deviator really earns
      (equal to the previous one for the default games, see below).
    """
    if paths is None:
        paths = game.noise_paths()
    probs = np.array([w for _, w in paths], dtype=np.float64)
    probs = probs / probs.sum()
    cache: dict = {}
    trajs = [_trajectory(game, policy, p, cache) for p, _ in paths]
    P = len(paths)
    T = game.horizon

    v_pol = [_values(game, tr, best=False) for tr in trajs]
    v_br = [_values(game, tr, best=True) for tr in trajs]
    mu0 = [tr.mus[0] for tr in trajs]
    ret_pol = float(sum(probs[p] * np.dot(mu0[p], v_pol[p]) for p in range(P)))
    ret_br = float(sum(probs[p] * np.dot(mu0[p], v_br[p]) for p in range(P)))

    # Tree of public-observation histories: nodes[t] = list of groups (lists of
    # path indices) having the same o_0..o_t. The deviator's information at t is its
    # own current state plus that history; it does not update its belief over the
    # paths from its own past states (the information-consistent figure).
    nodes = [_split(range(P), lambda p: trajs[p].obs[0])]
    for t in range(1, T):
        level = []
        for g in nodes[-1]:
            level.extend(_split(g, lambda p, t=t: trajs[p].obs[t]))
        nodes.append(level)

    # The deviator's beliefs over the paths of a node are the prior weights
    # P(p) / P(node). This backward induction is the value of an actual strategy
    # whenever, at every step, the paths sharing the next node also share the kernel
    # at that step (true for the default games: beach-bar kernels depend only on the
    # observed b; linear-quadratic paths split as soon as the mean moves). The key
    # best_response_info_realised_return gives the return the greedy deviator
    # actually earns, so the two can be compared.
    v_next = [np.zeros(game.n_states) for _ in range(P)]  # value of p's node at t+1
    greedy = [[None] * P for _ in range(T)]  # greedy[t][p]: deviator's actions (n,)
    for t in reversed(range(T)):
        v_cur = [None] * P
        for g in nodes[t]:
            pg = float(sum(probs[p] for p in g))
            q = np.zeros((game.n_states, game.n_actions))
            for p in g:
                tr = trajs[p]
                q += (probs[p] / pg) * (tr.rewards[t] + game.gamma * tr.kernels[t].expect(v_next[p]))
            vg = q.max(1)
            ag = q.argmax(1)
            for p in g:
                v_cur[p] = vg
                greedy[t][p] = ag
        v_next = v_cur
    ret_info = float(sum(probs[p] * np.dot(mu0[p], v_next[p]) for p in range(P)))

    ret_realised = 0.0
    rows = np.arange(game.n_states)
    for p in range(P):
        tr = trajs[p]
        v = np.zeros(game.n_states)
        for t in reversed(range(T)):
            q = tr.rewards[t] + game.gamma * tr.kernels[t].expect(v)
            v = q[rows, greedy[t][p]]
        ret_realised += float(probs[p] * np.dot(mu0[p], v))

    return {
        "exploitability": float(sum(probs[p] * np.dot(mu0[p], v_br[p] - v_pol[p]) for p in range(P))),
        "exploitability_info": ret_info - ret_pol,
        "policy_return": ret_pol,
        "best_response_return": ret_br,
        "best_response_info_return": ret_info,
        "best_response_info_realised_return": ret_realised,
    }
