"""'Did you mean' hints for unknown names."""

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest candidate.

    Args:
        name: The unknown name.
        candidates: The known names.

    Returns:
        ``" (did you mean 'x'?)"`` for the closest candidate, or ``""``.
    """
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
