"""Fixtures of the report tests: the hand-built data set's report, read from PostgreSQL."""

from __future__ import annotations

import pytest

from db.report_model import Report, ReportQuery
from db.report_queries import fetch_report
from tests.report_data import SINCE, UNTIL, VENUES, fill_known_data


@pytest.fixture
async def known_report(pg_database) -> Report:
    """The report of tests/report_data.py's window, with coverage per pair and the timeline."""
    await fill_known_data(pg_database.dsn)
    query = ReportQuery(SINCE, UNTIL, venues=VENUES, per_pair=True, timeline=True)
    return await fetch_report(pg_database.dsn, query)
