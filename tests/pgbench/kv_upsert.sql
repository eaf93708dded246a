-- One plugin store write as payhost's kv_set sends it: an upsert of a 100-byte value under
-- one of 100,000 keys of one namespace. Run against a schema payhost migrated (see
-- BENCHMARKS.md, "Store quotas: what counting costs"), with PGOPTIONS setting its
-- search_path; compare with the usage trigger disabled.
\set k random(1, 100000)
INSERT INTO kv (ns, key, value) VALUES ('bench', 'order/' || :k, decode(repeat('ab', 100), 'hex'))
    ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value;
