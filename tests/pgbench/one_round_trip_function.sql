-- One pipeline headed by the checks in a PL/pgSQL function (schema.sql).
\set k random(1, 1000000000)
\startpipeline
BEGIN;
SELECT pgb.guard(ARRAY['hot'], ARRAY[0::bigint], ARRAY['k' || :k]);
INSERT INTO pgb.tx (key) VALUES ('k' || :k || '-' || :client_id || '-' || random());
UPDATE pgb.accounts SET balance = balance - 1 WHERE id = 'hot';
COMMIT;
\endpipeline
