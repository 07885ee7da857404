"""The `Policy` protocol every autoscaler meets, and `DecidingPolicy`, the base of those
that decide from the observation and the env's pipeline model.

The protocol is stable-baselines3's ``predict()``: one observation (or a batch of one) in,
one env action out, with ``episode_start`` saying explicitly when an episode begins. The
episode loop (`agents.evaluation.episode.run_episode`) passes ``episode_start=[True]`` on the first
step of every window, so no policy carries state from one window into the next.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.model.spec import Decision
from envs.pipeline_env import PipelineEnv

__all__ = ["DecidingPolicy", "Policy", "is_episode_start"]


@runtime_checkable
class Policy(Protocol):
    """What the episode loop needs from a policy (stable-baselines3's ``predict``)."""

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The action for ``observation`` and the next recurrent state.

        Args:
            observation: One observation, or a batch of them.
            state: Recurrent state from the previous call (None for stateless policies).
            episode_start: One flag per observation: True on an episode's first step, where
                a stateful policy forgets what it kept.
            deterministic: Greedy action (learned policies); rules are always deterministic.

        Returns:
            The action(s) and the next state (None if stateless).
        """
        ...


def is_episode_start(episode_start: Any) -> bool:
    """Whether sb3's ``episode_start`` flags the first step of an episode.

    Args:
        episode_start: None, a bool or an array of one flag.

    Returns:
        True when it is given and its (first) flag is set.
    """
    return episode_start is not None and bool(np.asarray(episode_start).reshape(-1)[0])


class DecidingPolicy:
    """Base of the non-learned policies: `decide` one `Decision` per observation.

    Subclasses implement `decide` and, if they keep per-episode state, `reset`; `predict`
    wraps them in the `Policy` protocol for one env (a single observation or a batch of
    one) and calls `reset` when ``episode_start`` is set.

    Attributes:
        env: The unwrapped `PipelineEnv` the policy drives.
        fallbacks: Decisions that fell back to a documented default (0 unless a subclass
            counts them; the episode records it).
    """

    fallbacks: int = 0

    def __init__(self, env: Any) -> None:
        """Bind the policy to an env.

        Args:
            env: A `PipelineEnv` (wrappers allowed; its ``unwrapped`` is used).
        """
        self.env: PipelineEnv = env.unwrapped

    def decide(self, obs: np.ndarray) -> Decision:
        """The decision for one observation (subclasses implement it).

        Args:
            obs: One observation of ``env``.

        Returns:
            The `Decision` to apply next interval.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget per-episode state (nothing by default)."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """stable-baselines3's protocol for one env.

        Args:
            observation: One observation, or a batch of one.
            state: Passed back unchanged (these policies keep their state themselves).
            episode_start: Flags the first step of an episode: `reset` is called first.
            deterministic: Ignored (rules are deterministic).

        Returns:
            The encoded action (batched like ``observation``) and ``state``.

        Raises:
            ValueError: A batch of more than one observation (one env per policy).
        """
        obs = np.asarray(observation)
        batched = obs.ndim == 2
        if batched and obs.shape[0] != 1:
            raise ValueError(f"{type(self).__name__} decides for one env at a time, got a "
                             f"batch of {obs.shape[0]} observations")
        if is_episode_start(episode_start):
            self.reset()
        action = self.env.encode(self.decide(obs[0] if batched else obs))
        return (action[None] if batched else action), state
