-- The same statements as two_round_trips.sql in one pipeline.
\set k random(1, 1000000000)
\startpipeline
BEGIN;
SELECT balance FROM pgb.accounts WHERE id = 'hot' FOR UPDATE;
SELECT id FROM pgb.tx WHERE key = 'k' || :k;
INSERT INTO pgb.tx (key) VALUES ('k' || :k || '-' || :client_id || '-' || random());
UPDATE pgb.accounts SET balance = balance - 1 WHERE id = 'hot';
COMMIT;
\endpipeline
