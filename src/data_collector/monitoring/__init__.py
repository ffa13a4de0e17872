"""Monitoring of a running collector, read through explicit providers, never the collector.

* ``sources``     :class:`MonitoringSources` (what may be read) and the plain
  :class:`CollectorStatus` every view works on
* ``health``      ``/health`` as a pure function of a status
* ``metrics``     ``/metrics``: Prometheus families from a status, per-tick histograms
* ``server``      the aiohttp server on ``monitoring.host:port``
* ``connections`` the periodic ``connection_status`` log line
"""
