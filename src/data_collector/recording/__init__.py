"""``--record``: every frame the links receive and every connection event, to hourly zstd
files (:mod:`~data_collector.recording.format` is the layout, documented in the README);
:mod:`~data_collector.recording.recorder` writes them off the hot path and
:mod:`~data_collector.recording.reader` reads them back for ``--replay``."""
