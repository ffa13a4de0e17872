-- arbitrage_opportunities.duration_s: a plain column kept equal to closed_at - opened_at by a
-- trigger, instead of a generated column; max_at and last_seen_at may be left out.
--
-- A generated column refuses any INSERT that names it ("cannot insert a non-DEFAULT value"),
-- even with NULL, so an analyst's script (or a restore, or a copy between databases) that
-- writes every column of the table failed. The trigger accepts such a row and stores the true
-- duration whatever value it named: NULL while open, closed_at - opened_at once closed.
-- The values already stored stay as they are (they were computed the same way).
-- A row that leaves out max_at (the tick of the maximum) or last_seen_at (the last tick seen
-- open), columns the collector always writes, gets the opening tick, and the closing tick
-- (or the maximum) for last_seen_at, instead of a NOT NULL error.
-- Running this file again does nothing new.

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = to_regclass('arbitrage_opportunities')
                 AND attname = 'duration_s' AND attgenerated <> '') THEN
        ALTER TABLE arbitrage_opportunities ALTER COLUMN duration_s DROP EXPRESSION;
    END IF;
END
$migration$;

CREATE OR REPLACE FUNCTION arbitrage_opportunities_duration() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    NEW.duration_s := EXTRACT(EPOCH FROM NEW.closed_at - NEW.opened_at);
    NEW.max_at := coalesce(NEW.max_at, NEW.opened_at);
    NEW.last_seen_at := coalesce(
        NEW.last_seen_at, greatest(NEW.max_at, coalesce(NEW.closed_at, NEW.opened_at)));
    RETURN NEW;
END
$function$;

DROP TRIGGER IF EXISTS arbitrage_opportunities_duration ON arbitrage_opportunities;
CREATE TRIGGER arbitrage_opportunities_duration
    BEFORE INSERT OR UPDATE ON arbitrage_opportunities
    FOR EACH ROW EXECUTE FUNCTION arbitrage_opportunities_duration();

COMMENT ON COLUMN arbitrage_opportunities.duration_s IS
    'closed_at - opened_at in seconds (kept by a trigger); NULL while open';
