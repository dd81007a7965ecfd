-- bench/blob.sh: 1 MiB of pseudo-random bytes (a chain of SHA-512s, which
-- no compression shrinks); each put overlays a new number on its first 8
-- bytes, so that every preimage is new.  bench_blob_puts records who put
-- what, for the gets.
CREATE TABLE bench_blob_base AS
SELECT string_agg(sha512(int8send(i)), ''::bytea ORDER BY i) AS bytes FROM generate_series(1, 16384) i;
CREATE SEQUENCE bench_blob_seq;
CREATE TABLE bench_blob_puts (side text NOT NULL, n bigint NOT NULL, hash text NOT NULL);
CREATE INDEX ON bench_blob_puts (side, n);
