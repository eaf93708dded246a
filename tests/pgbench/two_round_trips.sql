-- The lock and the key lookup, then the writes and COMMIT: two pipelines, two round trips.
\set k random(1, 1000000000)
\startpipeline
BEGIN;
SELECT balance FROM pgb.accounts WHERE id = 'hot' FOR UPDATE;
SELECT id FROM pgb.tx WHERE key = 'k' || :k;
\endpipeline
\startpipeline
INSERT INTO pgb.tx (key) VALUES ('k' || :k || '-' || :client_id || '-' || random());
UPDATE pgb.accounts SET balance = balance - 1 WHERE id = 'hot';
COMMIT;
\endpipeline
