-- The opportunity ledger: one row per cross-venue arbitrage opportunity, from open to close.
--
-- The analytics write a row when an opportunity opens, rewrite it at every analytics summary
-- while it stays open, and a last time when it closes. The writer's upsert only ever moves a
-- row forward (more ticks, or open -> closed), so a replayed older state never overwrites a
-- newer one and a closed row is never reopened. Prices and the size are the venues' exact
-- decimal strings; the percentages and the profit are computed (double precision, numeric).

CREATE TABLE IF NOT EXISTS arbitrage_opportunities (
    id                BIGSERIAL PRIMARY KEY,
    symbol_base       TEXT             NOT NULL,
    symbol_quote      TEXT             NOT NULL,
    buy_exchange      TEXT             NOT NULL,
    sell_exchange     TEXT             NOT NULL,
    opened_at         TIMESTAMPTZ      NOT NULL,
    closed_at         TIMESTAMPTZ      NULL,
    duration_s        NUMERIC          GENERATED ALWAYS AS (EXTRACT(EPOCH FROM closed_at - opened_at)) STORED,
    open_net_pct      DOUBLE PRECISION NOT NULL,
    max_net_pct       DOUBLE PRECISION NOT NULL,
    max_gross_pct     DOUBLE PRECISION NOT NULL,
    buy_price_at_max  NUMERIC          NOT NULL,
    sell_price_at_max NUMERIC          NOT NULL,
    size_at_max       NUMERIC          NULL,
    max_profit_quote  NUMERIC          NULL,
    max_at            TIMESTAMPTZ      NOT NULL,
    last_seen_at      TIMESTAMPTZ      NOT NULL,
    ticks             INTEGER          NOT NULL,
    close_reason      TEXT             NULL,
    CONSTRAINT arbitrage_opportunities_venues
        CHECK (buy_exchange <> sell_exchange
               AND buy_exchange = lower(buy_exchange) AND sell_exchange = lower(sell_exchange)),
    CONSTRAINT arbitrage_opportunities_close
        CHECK ((closed_at IS NULL) = (close_reason IS NULL)
               AND close_reason IN ('converged', 'stale', 'shutdown')),
    CONSTRAINT arbitrage_opportunities_times
        CHECK (max_at >= opened_at AND last_seen_at >= max_at AND closed_at >= opened_at),
    CONSTRAINT arbitrage_opportunities_prices_valid
        CHECK (buy_price_at_max > 0 AND buy_price_at_max < 'Infinity'
               AND sell_price_at_max > 0 AND sell_price_at_max < 'Infinity'
               AND size_at_max >= 0 AND size_at_max < 'Infinity'),
    CONSTRAINT arbitrage_opportunities_ticks CHECK (ticks >= 1)
);

COMMENT ON TABLE arbitrage_opportunities IS
    'Cross-venue arbitrage opportunities (buy at buy_exchange''s ask, sell at sell_exchange''s bid), net of both taker fees';
COMMENT ON COLUMN arbitrage_opportunities.opened_at IS 'the snapshot tick it first cleared the threshold';
COMMENT ON COLUMN arbitrage_opportunities.closed_at IS 'NULL while open; the tick it stopped, or the shutdown time';
COMMENT ON COLUMN arbitrage_opportunities.duration_s IS 'closed_at - opened_at in seconds; NULL while open';
COMMENT ON COLUMN arbitrage_opportunities.max_net_pct IS 'best net percentage (after both taker fees) while open';
COMMENT ON COLUMN arbitrage_opportunities.buy_price_at_max IS 'buy venue ask at the maximum, exactly as the venue wrote it';
COMMENT ON COLUMN arbitrage_opportunities.sell_price_at_max IS 'sell venue bid at the maximum, exactly as the venue wrote it';
COMMENT ON COLUMN arbitrage_opportunities.size_at_max IS 'smaller of the two top-of-book sizes at the maximum; NULL if unknown';
COMMENT ON COLUMN arbitrage_opportunities.max_profit_quote IS
    'size_at_max x (sell x (1 - sell fee) - buy x (1 + buy fee)) at the maximum, in the quote currency';
COMMENT ON COLUMN arbitrage_opportunities.max_at IS 'the tick of the maximum';
COMMENT ON COLUMN arbitrage_opportunities.last_seen_at IS 'the last tick it was seen open';
COMMENT ON COLUMN arbitrage_opportunities.ticks IS 'snapshot ticks it stayed open';
COMMENT ON COLUMN arbitrage_opportunities.close_reason IS
    'converged (prices came together), stale (a quote stopped being live), shutdown (the collector stopped or crashed)';

-- One row per opportunity: the writer's upsert key.
CREATE UNIQUE INDEX IF NOT EXISTS arbitrage_opportunities_key
    ON arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at);

-- Reports select by time.
CREATE INDEX IF NOT EXISTS arbitrage_opportunities_opened_at_idx
    ON arbitrage_opportunities (opened_at);

-- Rows a crashed collector left open, closed at the next start.
CREATE INDEX IF NOT EXISTS arbitrage_opportunities_open_idx
    ON arbitrage_opportunities (opened_at) WHERE closed_at IS NULL;
