-- The "timestamp" index of book_ticker_snapshots becomes ("timestamp", exchange).
--
-- It serves every time-range query the old one did ("timestamp" leads), and it also holds
-- the venue of each row, so `--report`'s coverage per venue (rows per venue and tick over the
-- whole window) is an index-only scan that arrives grouped, instead of a scan of every row of
-- the heap and a hash aggregate over them: 5-7 s -> about 1 s for a day of 10 million rows
-- (bench/RESULTS.md case 10). With B-tree deduplication (about 60 rows share a key) it is
-- about as large as the old one (71 MB against 68 MB for those 10 million rows) and costs each
-- insert the same single index entry, so it replaces the old index rather than joining it.
--
-- On an existing database this builds the new index on every partition (about 6-12 s per
-- 10 million rows here), holding writes to the table meanwhile: the collector buffers them.
-- Running this file again does nothing.

DROP INDEX IF EXISTS book_ticker_snapshots_timestamp_idx;

CREATE INDEX IF NOT EXISTS book_ticker_snapshots_timestamp_exchange_idx
    ON book_ticker_snapshots ("timestamp", exchange);
