"""The strategy's view of a venue: :class:`Feed` (market data), the OMS, and the typed
seam (:mod:`makerlab.trading.protocols`) that replay and live venues implement."""
