"""Market-making analytics on a finished replay.

- :mod:`makerlab.analytics.record`: :class:`~makerlab.analytics.record.RunRecord`, the frozen
  set of DataFrames a run leaves behind (fills, actions, stamps, declarations, mids, market
  trades, config), built once from a Replayer and saved/loaded as Parquet + JSON;
- :mod:`makerlab.analytics.metrics`: ``statistics(record)``, one small function per metric;
- :mod:`makerlab.analytics.frames`: ``df_exchange``, ``df_portfolio``, ``df_markouts``,
  ``df_prices``, ``df_fills``, ``df_actions``, ``df_counterparty_pnl`` and their plots;
- :mod:`makerlab.analytics.research`: declarations, forward prices, the fair-price
  estimator table and flow features.

Every definition (formula, units, annualisation) is in ``docs/analytics.md``.
"""
