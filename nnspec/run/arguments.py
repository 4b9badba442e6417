"""Which keyword argument a torch constructor refused.

torch's own messages name an argument in its own words ("Invalid learning rate: -1"), or not at
all; nnspec reports the error at the argument a spec wrote (or at the override that set it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any


def guilty_argument(make: Callable[[dict[str, Any]], object], args: Mapping[str, Any],
                    suspects: Collection[str] | None = None) -> str | None:
    """The argument (of ``suspects``, default all) without which ``make`` succeeds, or None
    when no single one is to blame.

    Called only after ``make(args)`` raised, so the cost (one more construction per argument)
    is paid on the error path alone.
    """
    for name in args if suspects is None else [s for s in args if s in suspects]:
        try:
            make({k: v for k, v in args.items() if k != name})
        except Exception:  # still failing: another argument is to blame
            continue
        return name
    return None
