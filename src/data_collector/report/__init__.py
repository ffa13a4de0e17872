"""``--report``: what the collector stored, answered from the database.

* ``options`` the flags: the window (``--since``, ``--until``), format, detail, plot
* ``runner``  reads the database through :mod:`db.report_queries`, prints, plots
* ``tables``  the report's sections as typed tables
* ``render``  text, JSON and CSV
* ``plot``    the PNG (matplotlib, the optional extra ``[report]``)
"""
