-- bench/blob.sh: one of the side's 1 MiB preimages, at random (chosen in
-- a subquery: in the outer target list the read would run for every row
-- the OFFSET skips).
\set r random(0, 1000000000)
SELECT length(jam.jam_get_preimage((
    SELECT p.hash FROM bench_blob_puts p WHERE p.side = :side
    ORDER BY p.n OFFSET (:r % (SELECT count(*) FROM bench_blob_puts WHERE side = :side)) LIMIT 1)));
