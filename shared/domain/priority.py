"""Priority levels, highest first; `normal` is accepted and stored as `lowest`."""

LEVELS = ("highest", "very-high", "high", "medium", "low", "very-low", "lowest")
RANK = {name: len(LEVELS) - i for i, name in enumerate(LEVELS)}  # highest=7 .. lowest=1


def normalize(priority: str) -> str:
    return "lowest" if priority == "normal" else priority


def at_least(priority: str) -> list[str]:
    """Every level from `highest` down to `priority`: holding a create-task
    scope for any of them allows creating a task of this priority."""
    return list(LEVELS[: LEVELS.index(normalize(priority)) + 1])
