"""When a fixed-tax baseline has collapsed, so that training it further cannot change what it reports.

Under a fixed tax the government never moves; once consumers have stopped working and firms produce
nothing, every agent's reward is flat in its own choices and the branch stays empty (at income taxes of
40% and more an hour of work is worth less than its disutility for almost every consumer:
docs/results.md). Such a branch stops at the episode where the collapse is established; the evaluation
of its checkpoint is then what the remaining episodes would have produced. The decision reads only the
stage's own metrics rows, so a resumed stage decides exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections import deque

PRODUCTION = "economy/production"  # units per firm and step, mean over the episode's economies


class CollapseWatch:
    def __init__(self, window: int, production_below: float, enabled: bool = True):
        self.window = window if enabled else 0
        self.production_below = production_below
        self.recent: deque[float] = deque(maxlen=max(self.window, 1))

    def observe(self, production: float) -> bool:
        """Record one episode; True once the last `window` episodes all produced below the threshold."""
        if not self.window:
            return False
        self.recent.append(production)
        return len(self.recent) == self.window and max(self.recent) < self.production_below

    def replay(self, rows: list[dict]) -> None:
        """The stage's rows written before a resume, in order."""
        for row in rows:
            if PRODUCTION in row:
                self.observe(row[PRODUCTION])

    def describe(self) -> str:
        return (f"production below {self.production_below:g} per firm and step in each of the last "
                f"{self.window} episodes")
