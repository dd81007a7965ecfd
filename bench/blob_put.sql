-- bench/blob.sh: one new 1 MiB preimage (the threshold decides where it goes).
INSERT INTO bench_blob_puts (side, n, hash)
SELECT :side, s.n, jam.jam_put_preimage(overlay(b.bytes placing int8send(s.n) from 1 for 8))->>'hash'
FROM bench_blob_base b, (SELECT nextval('bench_blob_seq') AS n) s;
