"""A deliberately naive matching engine: the reference the level-indexed one is compared with.

:class:`NaiveEngine` scans every resting order on every book row and every print, as the
engine did before it indexed orders by price level; everything else (order entry, fills,
caps, queue maths) is the real engine's. ``tests/sim/test_resting_index.py`` replays random
scenarios through both and requires identical fills, actions and queue states.
"""

from __future__ import annotations

from decimal import Decimal

from makerlab.sim.matching import MatchingEngine, MatchResult, SimOrder, _floor_lot

ZERO = Decimal(0)


class NaiveEngine(MatchingEngine):
    """Every resting order looked at on every row (the pre-index algorithm)."""

    def on_book(self, row: int) -> MatchResult:
        self.row = row
        self._consumed.clear()
        self._unbooked = ZERO
        result = MatchResult()
        for order in list(self.resting.values()):
            px = order.px
            if self._crosses(order, px):
                self._fill_resting(order, order.remaining, "book_cross", result)
                continue
            new_qty = self.level_qty(order.side, px)
            self.queue_model.on_level_change(order.queue, order.level_qty, new_qty)
            order.level_qty = new_qty
        return result

    def on_trade(self, price: float, size: float, taker_dir: int) -> MatchResult:
        self._unbooked = ZERO
        result = MatchResult()
        side = -taker_dir
        hit = [o for o in self.resting.values() if o.side == side]
        if not hit:
            return result
        if not self.fill_model.partial:
            return self._naive_whole(hit, price, size, result)
        hit.sort(key=lambda o: -side * o.px)
        left = _floor_lot(size, self.spec.lot_size)
        for order in hit:
            gap = side * (order.px - price)
            if gap > self._half_tick:
                left -= self._fill_resting(order, left, "trade_through", result)
            elif gap > -self._half_tick:
                left -= self._queue_fill(order, size, left, result)
            if left <= 0:
                break
        return result

    def _naive_whole(self, hit: list[SimOrder], price: float, size: float,
                     result: MatchResult) -> MatchResult:
        half_lot = float(self.spec.lot_size) / 2
        for order in hit:
            gap = order.side * (order.px - price)
            if gap > self._half_tick:
                self._fill_resting(order, order.remaining, "trade_through", result)
            elif gap > -self._half_tick:
                self.queue_model.on_trade(order.queue, size)
                if self.queue_model.fillable(order.queue) >= half_lot:
                    self._fill_resting(order, order.remaining, "queue", result)
        return result
