"""Fee-aware cross-venue analytics: compute records, let subscribers word or store them.

* ``records``       the records (opened / closed opportunities, summaries) and their consumer
* ``opportunities`` the per-tick opportunity tracker
* ``summaries``     spreads, spread alerts, volume transitions, market health
* ``hub``           :class:`~data_collector.analytics.hub.Analytics`: tracker + summaries,
  fanned out to subscribers
* ``reporter``      the subscriber that writes the ``[ANALYTICS]`` log events
* ``formatting``    prices, sizes and percentages for humans
"""
