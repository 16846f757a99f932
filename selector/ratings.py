"""Step ratings, the one vocabulary every layer shares: +1 good, 0 neutral, −1 wrong, None unrated.

`first_error` is the one definition of where a solution goes wrong. "No error" is None; the −1
that ProcessBench writes for it is translated at that format's boundary only.
"""

from collections.abc import Sequence

Rating = int | None


def first_error(ratings: Sequence[Rating]) -> int | None:
    """Index of the first −1 rating, or None when no step is rated wrong."""
    for index, rating in enumerate(ratings):
        if rating == -1:
            return index
    return None
