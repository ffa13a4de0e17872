"""The live dashboard served at ``/`` by the monitoring server.

* ``board``   open opportunities and the last closed ones (an analytics consumer)
* ``state``   one JSON-ready state of the collector's memory (cache, analytics, venues)
* ``feed``    builds that state once per tick and fans the same bytes out to every viewer
* ``routes``  the page, its assets and the Server-Sent Events stream
* ``static/`` plain HTML, CSS and a small script, shipped with the package (no CDN)
"""
