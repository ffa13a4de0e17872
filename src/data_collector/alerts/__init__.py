"""Alert delivery through apprise: records in, short messages out, never on the hot path.

* ``events``    the records alerts take besides the analytics' (venue down/up, pair silent)
* ``messages``  each record worded as one short :class:`Alert`; digests of bursts
* ``policy``    which alerts go out: enabled events, ``min_net_pct``, ``cooldown_s``
* ``targets``   target URLs: checked, shown without secrets, named for metrics
* ``sender``    one daemon thread per target running apprise's blocking ``notify``
* ``delivery``  per target: bounded queue, coalescing, timeout, retries with backoff
* ``service``   :class:`Alerts`, what the collector subscribes and starts
* ``venues``    venue_down / venue_up from the feeds' connection counts
* ``check``     ``--test-alerts``
"""
