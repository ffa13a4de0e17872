-- Best bid/ask snapshots, one row per (venue, pair, scheduler tick).
--
-- Prices and quantities are unconstrained NUMERIC: the venue's decimal string is stored
-- exactly (precision, scale and trailing zeros kept; "80535.880" reads back as "80535.880").
-- The CHECK constraints only reject values no venue quote can have (non-positive prices,
-- negative sizes, NaN, Infinity); the writer drops such rows one by one and counts them.

CREATE TABLE IF NOT EXISTS book_ticker_snapshots (
    id            BIGSERIAL PRIMARY KEY,
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
    -- NaN sorts above every number in PostgreSQL, so "< 'Infinity'" also rejects NaN
    CONSTRAINT book_ticker_snapshots_prices_valid
        CHECK (bid_price > 0 AND bid_price < 'Infinity' AND ask_price > 0 AND ask_price < 'Infinity'),
    CONSTRAINT book_ticker_snapshots_qtys_valid
        CHECK (bid_qty >= 0 AND bid_qty < 'Infinity' AND ask_qty >= 0 AND ask_qty < 'Infinity')
);

COMMENT ON TABLE book_ticker_snapshots IS
    'Top of book per exchange and pair at each snapshot tick; prices/sizes exactly as the venue wrote them';
COMMENT ON COLUMN book_ticker_snapshots.exchange IS 'lowercase venue name, e.g. mexc, gateio';
COMMENT ON COLUMN book_ticker_snapshots."timestamp" IS 'the snapshot tick (collector clock, UTC)';
COMMENT ON COLUMN book_ticker_snapshots.exchange_time IS 'venue time of the quote, NULL when the venue sent none';

-- One row per venue, pair and tick: a retried or duplicated batch is skipped (ON CONFLICT).
CREATE UNIQUE INDEX IF NOT EXISTS book_ticker_snapshots_key
    ON book_ticker_snapshots (exchange, symbol_base, symbol_quote, "timestamp");

-- Time-range queries across all venues and pairs.
CREATE INDEX IF NOT EXISTS book_ticker_snapshots_timestamp_idx
    ON book_ticker_snapshots ("timestamp");
