"""Largest-remainder allocation: split an øre amount over weights so the parts sum exactly."""

from __future__ import annotations

from collections.abc import Sequence


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` øre pro rata to non-negative integer `weights`; the parts sum to `total`.

    Each part is the floor of its exact share (of |total|); the øre left over go one each to the
    parts with the largest remainders, ties to the earliest weight, so the result is deterministic
    and depends only on the order of `weights`. The sign of `total` is carried by every part.
    Raises ValueError when the weights are negative or sum to 0 while `total` is not 0.
    """
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must not be negative: {list(weights)}")
    whole = sum(weights)
    if total == 0:
        return [0] * len(weights)
    if whole == 0:
        raise ValueError(f"cannot spread {total} øre over weights that sum to 0")
    sign = 1 if total > 0 else -1
    amount = abs(total)
    parts = [amount * w // whole for w in weights]
    remainders = [amount * w % whole for w in weights]
    left = amount - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return [sign * part for part in parts]
