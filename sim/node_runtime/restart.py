"""Restart policy and back-off, as the kubelet has them: a container that exits is restarted per
the pod's restartPolicy (Always; OnFailure on a non-zero exit; Never not at all); the first restart
is immediate, then the delay starts at `initial` (kubelet: 10 s) and doubles up to `maximum`
(kubelet: 5 min). A container that ran for twice the maximum starts over without delay.
"""

from __future__ import annotations


def should_restart(policy: str, exit_code: int) -> bool:
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return exit_code != 0
    return True  # Always, and the API's default


def init_should_restart(policy: str, exit_code: int) -> bool:
    """Init containers are rerun until they succeed unless the pod's policy is Never."""
    return exit_code != 0 and policy != "Never"


def next_backoff_steps(previous_steps: int, ran_for: float, maximum: float) -> int:
    """Steps in a row after an exit: reset when the container ran for twice `maximum`."""
    return 1 if ran_for >= 2 * maximum else previous_steps + 1


def backoff_delay(steps: int, initial: float, maximum: float) -> float:
    """Seconds to wait before restarting after `steps` exits in a row (1 = the first exit)."""
    if steps <= 1:
        return 0.0
    return float(min(initial * 2 ** (steps - 2), maximum))
