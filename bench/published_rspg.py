"""Seconds per training iteration of the published RSPG (the paper's own code): beach bar
or the macro economy.

Runs the paper's implementation itself (a checkout of its repository, never copied into
mfax) at its published configuration: ``--task beach_bar_1d``
(``configs/beach_bar_1d_rspg.yaml``: 128 environments, state indices, discount 0.99) or
``--task endogenous``, the macro economy (``configs/endogenous_rspg.yaml``: 8
environments, normalised state features, discount 0.95, the continuous-action policy its
script builds for a ``Box`` action space); both with ``lr`` of the sweep, linear
annealing to 0.1x over 200 iterations, Adam after clipping the global gradient norm to
1.0, ReLU, the 128-wide recurrent policy. It
times its training step the way its own script does: ``jax.lax.scan`` of its jitted
``_train_step`` over a chunk of iterations, ``block_until_ready``, compile excluded (a
warm-up chunk of the same length first). Its wandb logging is off (``log=False``,
``debug=False``; ``wandb`` is replaced by an empty module so that it need not be
installed) and nothing is saved or evaluated.

It must run in a Python that has the paper's dependencies (jax, flax, distrax, gymnax,
optax, tyro) and *not* mfax on its path: the paper's package is also called ``mfax``.
``bench/train_speed.py --published DIR --published-python PY`` calls it in a child
process, alternating with mfax's rows.

Usage::

    /path/to/venv/bin/python bench/published_rspg.py --tree /path/to/CWibault-mfax \
        --chunk 5 --repeats 3

Prints one JSON line: ``{"seconds_per_iteration": [...], "compile_s": ..., ...}``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
import types

# the published configurations (configs/<task>_rspg.yaml; normalize_states is off for
# indices, as its script sets it)
TASKS = {
    "beach_bar_1d": {"state_type": "indices", "discount_factor": 0.99, "normalize_states": False, "num_envs": 128},
    "endogenous": {"state_type": "states", "discount_factor": 0.95, "normalize_states": True, "num_envs": 8},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", required=True, help="a checkout of the paper's repository (CWibault/mfax)")
    parser.add_argument("--chunk", type=int, default=5, help="iterations per timed lax.scan (its eval_frequency)")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (its sweep: 1e-4, 1e-3, 1e-2)")
    parser.add_argument("--num-envs", type=int, help="default: the task's configuration (128 beach bar, 8 macro)")
    parser.add_argument("--task", choices=sorted(TASKS), default="beach_bar_1d", help="the published configuration")
    cli = parser.parse_args()
    task = TASKS[cli.task]
    num_envs = task["num_envs"] if cli.num_envs is None else cli.num_envs
    if num_envs < 1 or cli.chunk < 1 or cli.repeats < 1:
        parser.error("--num-envs, --chunk and --repeats must be at least 1")

    tree = os.path.abspath(cli.tree)
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.getcwd()]  # never this repo's mfax
    sys.path.insert(0, tree)
    sys.modules.setdefault("wandb", types.ModuleType("wandb"))  # logging off: never called
    sys.argv = [sys.argv[0]]

    import dataclasses
    import importlib.util

    missing = [m for m in ("flax", "gymnax", "distrax", "optax", "jax") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"published_rspg.py: this Python lacks the paper's dependencies {', '.join(missing)}; run it with a "
            "Python that has jax, flax, distrax, gymnax, optax and tyro"
        )
    if not os.path.isdir(os.path.join(tree, "mfax", "algos")):
        raise SystemExit(f"published_rspg.py: --tree {tree} is not a checkout of the paper's repository")

    import flax.struct
    import jax
    import numpy as np

    # Python 3.11's dataclasses refuse an unhashable default (the paper's code targets 3.10,
    # where only list/dict/set are refused); its environment parameters default to arrays.
    # Each such default becomes a default_factory returning the very same array, so the
    # classes behave as on 3.10.
    original = flax.struct.dataclass

    def dataclass_310(clz=None, **kwargs):
        if clz is None:
            return lambda c: dataclass_310(c, **kwargs)
        for name in inspect.get_annotations(clz):
            value = clz.__dict__.get(name)
            if isinstance(value, jax.Array | np.ndarray):
                setattr(clz, name, dataclasses.field(default_factory=lambda v=value: v))
        return original(clz, **kwargs)

    flax.struct.dataclass = dataclass_310

    # The macro economy's grids call jnp.clip(x, a_min=0), keywords JAX has since renamed
    # (min/max) and then removed; they are passed on under their new names, same meaning.
    import jax.numpy as jnp

    clip = jnp.clip

    def clip_with_old_keywords(x, *args, a_min=None, a_max=None, **kwargs):
        if a_min is not None:
            kwargs["min"] = a_min
        if a_max is not None:
            kwargs["max"] = a_max
        return clip(x, *args, **kwargs)

    jnp.clip = clip_with_old_keywords

    import gymnax
    import jax.numpy as jnp
    import optax
    from flax.training.train_state import TrainState

    import mfax as published

    if not os.path.abspath(published.__file__).startswith(tree):
        raise SystemExit(f"imported mfax from {published.__file__}, not from {tree}")
    from mfax.algos.hsm.algos import rspg
    from mfax.algos.hsm.utils.mf_policy_wrappers import RecurrentMeanFieldContinuousPolicy, RecurrentMeanFieldPolicy
    from mfax.envs import make_env

    # configs/<task>_rspg.yaml
    args = rspg.args(
        debug=False,
        evaluate=False,
        log=False,
        save=False,
        task=cli.task,
        state_type=task["state_type"],
        discount_factor=task["discount_factor"],
        normalize_obs=True,
        normalize_states=task["normalize_states"],
        common_noise=True,
        algo="hsm_rspg",
        seed=0,
        num_envs=num_envs,
        num_iterations=200,
        lr=cli.lr,
        anneal_lr=True,
        max_grad_norm=1.0,
        activation="relu",
    )
    env = make_env("pushforward/" + args.task, common_noise=args.common_noise)
    # the network of its __main__: discrete or continuous actions by the action space
    encoder_kwargs = dict(hidden_size=128, embed_size=128, activation=args.activation)
    common = dict(hidden_layer_sizes=(128, 128, 128), activation=args.activation, state_type=args.state_type)
    if isinstance(env.action_space, gymnax.environments.spaces.Discrete):
        policy_kwargs = dict(n_actions=env.n_actions, **common, num_states=env.n_states)
        net = RecurrentMeanFieldPolicy(
            state_type=args.state_type,
            num_states=env.n_states,
            encoder_kwargs=encoder_kwargs,
            policy_kwargs=policy_kwargs,
        )
    else:
        space = env.action_space
        policy_kwargs = dict(
            action_dim=space.shape[-1], action_range=(space.low, space.high), **common, num_states=env.n_states
        )
        net = RecurrentMeanFieldContinuousPolicy(
            state_type=args.state_type,
            num_states=env.n_states,
            actions=env.params.discrete_actions,
            encoder_kwargs=encoder_kwargs,
            policy_kwargs=policy_kwargs,
        )
    individual_states = jnp.arange(env.n_states) if args.state_type == "indices" else env.params.states
    rng = jax.random.PRNGKey(args.seed)
    rng, rng_actor_params, rng_action = jax.random.split(rng, 3)
    init_hidden = net.init_hidden(args.num_envs, net.aggregate_encoder.hidden_size)
    init_done = jnp.zeros((args.num_envs,), dtype=jnp.bool_)
    init_obs = jnp.ones((args.num_envs, env.obs_dim), dtype=jnp.float32)
    params = net.init(
        rng_actor_params,
        env.normalize_individual_s(individual_states, args.normalize_states),
        env.normalize_obs(init_obs, args.normalize_obs),
        init_hidden,
        init_done,
        rng_action,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(args.max_grad_norm),
        optax.adam(learning_rate=optax.linear_schedule(args.lr, args.lr * 0.1, args.num_iterations), eps=1e-8),
    )
    actor_ts = TrainState.create(apply_fn=(), params=params, tx=tx)
    train_step = jax.jit(rspg.make_train_step(args, env, net, individual_states))

    def chunk(state):
        # its training loop: an un-jitted lax.scan of the jitted step per eval_frequency
        state, _ = jax.lax.scan(train_step, state, None, cli.chunk)
        jax.block_until_ready(state)
        return state

    state = (actor_ts, rng)
    t0 = time.perf_counter()
    state = chunk(state)  # compiles
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(cli.repeats):
        t = time.perf_counter()
        state = chunk(state)
        times.append((time.perf_counter() - t) / cli.chunk)
    print(
        json.dumps(
            {
                "seconds_per_iteration": times,
                "first_chunk_s": compile_s,
                "chunk": cli.chunk,
                "task": args.task,
                "num_envs": args.num_envs,
                "lr": args.lr,
                "jax": jax.__version__,
                "steps_done": int(state[0].step),
            }
        )
    )


if __name__ == "__main__":
    main()
