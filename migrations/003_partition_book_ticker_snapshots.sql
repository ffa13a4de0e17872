-- book_ticker_snapshots becomes range-partitioned on "timestamp": one partition per UTC day
-- (created ahead by the collector, see src/db/partitions.py) and a DEFAULT partition, so that
-- no row is ever refused for lack of one.
--
-- The rows of the plain table are not copied: the old table itself is attached as one
-- partition, book_ticker_snapshots_legacy, covering its whole days [first day, last day + 1).
-- Its unique and "timestamp" indexes match the parent's and are attached as they are, so the
-- conversion costs one validating scan, not a rewrite (bench/storage_bench.py: 10 million
-- rows). Archive and retention treat its days like any other day.
--
-- What changes for users: "id" keeps its values and its sequence but is no longer a primary
-- key (a unique constraint on a partitioned table must include the partition key); the row's
-- identity is the unique key (exchange, symbol_base, symbol_quote, "timestamp"), as before.
-- Running this file again does nothing: it only acts on a plain (relkind 'r') table.

DO $migration$
DECLARE
    first_ts timestamptz;
    last_ts  timestamptz;
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('book_ticker_snapshots'))
        IS DISTINCT FROM 'r' THEN
        RETURN;
    END IF;

    ALTER TABLE book_ticker_snapshots RENAME TO book_ticker_snapshots_legacy;
    ALTER TABLE book_ticker_snapshots_legacy DROP CONSTRAINT IF EXISTS book_ticker_snapshots_pkey;
    ALTER INDEX IF EXISTS book_ticker_snapshots_key RENAME TO book_ticker_snapshots_legacy_key;
    ALTER INDEX IF EXISTS book_ticker_snapshots_timestamp_idx
        RENAME TO book_ticker_snapshots_legacy_timestamp_idx;

    CREATE TABLE book_ticker_snapshots (
        id            BIGINT      NOT NULL DEFAULT nextval('book_ticker_snapshots_id_seq'),
        exchange      TEXT        NOT NULL,
        symbol_base   TEXT        NOT NULL,
        symbol_quote  TEXT        NOT NULL,
        bid_price     NUMERIC     NOT NULL,
        bid_qty       NUMERIC     NOT NULL,
        ask_price     NUMERIC     NOT NULL,
        ask_qty       NUMERIC     NOT NULL,
        "timestamp"   TIMESTAMPTZ NOT NULL,
        exchange_time TIMESTAMPTZ NULL,
        created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        CONSTRAINT book_ticker_snapshots_exchange_lower
            CHECK (exchange <> '' AND exchange = lower(exchange)),
        CONSTRAINT book_ticker_snapshots_prices_valid
            CHECK (bid_price > 0 AND bid_price < 'Infinity'
                   AND ask_price > 0 AND ask_price < 'Infinity'),
        CONSTRAINT book_ticker_snapshots_qtys_valid
            CHECK (bid_qty >= 0 AND bid_qty < 'Infinity' AND ask_qty >= 0 AND ask_qty < 'Infinity')
    ) PARTITION BY RANGE ("timestamp");
    -- the sequence now belongs to the parent: dropping the legacy partition must not drop it
    ALTER SEQUENCE book_ticker_snapshots_id_seq OWNED BY book_ticker_snapshots.id;

    COMMENT ON TABLE book_ticker_snapshots IS
        'Top of book per exchange and pair at each snapshot tick; prices/sizes exactly as the '
        'venue wrote them. Partitioned by UTC day of "timestamp".';
    COMMENT ON COLUMN book_ticker_snapshots.exchange IS 'lowercase venue name, e.g. mexc, gateio';
    COMMENT ON COLUMN book_ticker_snapshots."timestamp" IS
        'the snapshot tick (collector clock, UTC)';
    COMMENT ON COLUMN book_ticker_snapshots.exchange_time IS
        'venue time of the quote, NULL when the venue sent none';

    -- One row per venue, pair and tick: a retried or duplicated batch is skipped (ON CONFLICT).
    CREATE UNIQUE INDEX book_ticker_snapshots_key
        ON book_ticker_snapshots (exchange, symbol_base, symbol_quote, "timestamp");
    -- Time-range queries across all venues and pairs.
    CREATE INDEX book_ticker_snapshots_timestamp_idx ON book_ticker_snapshots ("timestamp");

    CREATE TABLE book_ticker_snapshots_default PARTITION OF book_ticker_snapshots DEFAULT;

    SELECT min("timestamp"), max("timestamp") INTO first_ts, last_ts
        FROM book_ticker_snapshots_legacy;
    IF first_ts IS NULL THEN
        DROP TABLE book_ticker_snapshots_legacy;
        RETURN;
    END IF;
    EXECUTE format(
        'ALTER TABLE book_ticker_snapshots ATTACH PARTITION book_ticker_snapshots_legacy '
        'FOR VALUES FROM (%L) TO (%L)',
        date_trunc('day', first_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
        (date_trunc('day', last_ts AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'
    );
END
$migration$;
