"""Spend per dimension value over a rolling window, and the moments it crosses a budget.

A `Budget` keeps, for each value of one attribution dimension (each tenant, say), the USD
spent in the last `window` seconds, as the sum of SLOTS time slots of window/SLOTS each:
spend leaves the window one slot at a time, so the sum is exact to within one slot's
width (24 minutes of a 24 h window). Only slots that saw spend are stored (a deque of
(slot, USD) pairs, at most SLOTS+1 per value), and a value whose window is empty is
forgotten at the next sweep: memory is proportional to the values active in the window,
and capped at `max_values` of them (spend of further values is not tracked, only counted in `untracked`).

Crossing means going from at or below the budget to above it. `add` reports a crossing
once; the value counts as over budget until old spend leaves the window and its sum is
back at or below the budget, which `sweep` reports, after which it can cross again.

The clock is the caller's (seconds, any epoch): the processor passes its own, so that
tests can move time. Spend is held in memory only: a restart begins every window empty.
Cost: amortized O(1) per add; a sweep is O(tracked values), at most once per slot.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

SLOTS = 60


class _RollingSum:
    __slots__ = ("slots", "total")

    def __init__(self) -> None:
        self.slots: deque[list] = deque()  # [slot number, USD], oldest first
        self.total = 0.0

    def expire(self, oldest_kept: int) -> None:
        if self.slots and self.slots[0][0] < oldest_kept:
            while self.slots and self.slots[0][0] < oldest_kept:
                self.slots.popleft()
            # Re-added rather than subtracted: no float drift however long the value lives.
            self.total = math.fsum(amount for _, amount in self.slots)

    def add(self, slot: int, usd: float) -> None:
        if self.slots and self.slots[-1][0] >= slot:
            self.slots[-1][1] += usd  # the same slot (or a clock step back: counted in the newest one)
        else:
            self.slots.append([slot, usd])
        self.total += usd


@dataclass(frozen=True)
class Crossing:
    dimension: str
    value: str
    spend: float
    budget: float
    window: float


class Budget:
    def __init__(self, dimension: str, window: float, limit: float | None, per_value: dict[str, float],
                 max_values: int):
        self.dimension = dimension
        self.window = window
        self.limit = limit
        self.per_value = dict(per_value)
        self.max_values = max_values
        self._width = window / SLOTS
        self._sums: dict[str, _RollingSum] = {}
        self._over: set[str] = set()
        self._swept_slot = -1
        self.untracked = 0  # adds whose value could not be tracked

    def budget_for(self, value: str) -> float | None:
        return self.per_value.get(value, self.limit)

    def _slot(self, now: float) -> int:
        return math.floor(now / self._width)

    def add(self, value: str, usd: float, now: float) -> Crossing | None:
        """Count `usd` spent by `value` at `now`; the Crossing when that put it over budget. Spend of a
        value that cannot be tracked (max_values reached) is counted in `untracked` instead."""
        budget = self.budget_for(value)
        if budget is None:
            return None
        slot = self._slot(now)
        rolling = self._sums.get(value)
        if rolling is None:
            if len(self._sums) >= self.max_values:
                self.untracked += 1  # until a sweep forgets values that went quiet
                return None
            rolling = self._sums[value] = _RollingSum()
        rolling.expire(slot - SLOTS + 1)
        rolling.add(slot, usd)
        if rolling.total > budget and value not in self._over:
            self._over.add(value)
            return Crossing(self.dimension, value, rolling.total, budget, self.window)
        return None

    def spend(self, value: str, now: float) -> float:
        rolling = self._sums.get(value)
        if rolling is None:
            return 0.0
        rolling.expire(self._slot(now) - SLOTS + 1)
        return rolling.total

    def sweep(self, now: float) -> list[Crossing]:
        """Values back within budget since they crossed it (with their spend now); values with no
        spend left in the window are forgotten. Does the work at most once per slot."""
        slot = self._slot(now)
        if slot == self._swept_slot:
            return []
        self._swept_slot = slot
        back = []
        for value in list(self._sums):
            rolling = self._sums[value]
            rolling.expire(slot - SLOTS + 1)
            budget = self.budget_for(value)
            if value in self._over and rolling.total <= budget:
                self._over.discard(value)
                back.append(Crossing(self.dimension, value, rolling.total, budget, self.window))
            if not rolling.slots:
                del self._sums[value]
        return back

    @property
    def tracked(self) -> int:
        return len(self._sums)
