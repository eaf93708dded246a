-- A hot account row and the tables of one posting, for the pgbench scripts beside this
-- file (see BENCHMARKS.md, "PostgreSQL batches in one round trip"). Drop with
-- DROP SCHEMA pgb CASCADE.
DROP SCHEMA IF EXISTS pgb CASCADE;
CREATE SCHEMA pgb;
CREATE TABLE pgb.accounts (id text PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE pgb.tx (id bigserial PRIMARY KEY, key text UNIQUE NOT NULL);
CREATE TABLE pgb.entries (tx bigint NOT NULL, line int NOT NULL, account text NOT NULL, delta bigint NOT NULL, PRIMARY KEY (tx, line));
INSERT INTO pgb.accounts VALUES ('hot', 1000000000000);
-- The checks of guard_function.sql as one PL/pgSQL function.
CREATE FUNCTION pgb.guard(ids text[], expected bigint[], keys text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  PERFORM 1 FROM pgb.accounts WHERE id = ANY(ids) ORDER BY id FOR UPDATE;
  SELECT count(*) INTO n FROM pgb.accounts a JOIN unnest(ids, expected) AS e(id, bal) ON a.id = e.id WHERE a.balance >= e.bal;
  IF n <> cardinality(ids) THEN RAISE EXCEPTION 'stale' USING ERRCODE = 'PH001'; END IF;
  IF EXISTS (SELECT 1 FROM pgb.tx WHERE key = ANY(keys)) THEN RAISE EXCEPTION 'key' USING ERRCODE = 'PH001'; END IF;
END $$;
