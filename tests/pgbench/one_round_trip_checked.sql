-- One pipeline headed by the checks as plain SQL (a failed check divides by zero).
\set k random(1, 1000000000)
\startpipeline
BEGIN;
SELECT CASE WHEN count(*) = 1 THEN 0 ELSE 1/(count(*) * 0) END FROM (SELECT balance FROM pgb.accounts WHERE id = ANY(ARRAY['hot']) AND balance >= 0 ORDER BY id FOR UPDATE) s;
SELECT CASE WHEN count(*) = 0 THEN 0 ELSE 1/(count(*) * 0) END FROM pgb.tx WHERE key = ANY(ARRAY['k' || :k]);
INSERT INTO pgb.tx (key) VALUES ('k' || :k || '-' || :client_id || '-' || random());
UPDATE pgb.accounts SET balance = balance - 1 WHERE id = 'hot';
COMMIT;
\endpipeline
