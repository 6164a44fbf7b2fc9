"""Progress of long verbs: a bar on a terminal, nothing extra otherwise (jobs log their own lines to files).

``bar(total, what)`` returns a :class:`Bar` whose ``advance``/``reach`` move it; with stderr not a terminal (every
workflow job: stderr goes to its log) it draws nothing, so the logs and the results stay as they are.
"""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """A tqdm bar on stderr when it is a terminal; otherwise it does nothing."""

    def __init__(self, total: int, what: str, unit: str) -> None:
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=what, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                             mininterval=0, miniters=1)  # few updates: epochs, SA reports, pairs

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def advance(self, n: int = 1, **status: Any) -> None:
        if self._bar is not None:
            self._bar.update(n)
            if status:
                self._bar.set_postfix(status, refresh=False)

    def reach(self, n: int, **status: Any) -> None:
        """Move to ``n`` done (never back)."""
        if self._bar is not None and n > self._bar.n:
            self.advance(n - self._bar.n, **status)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
