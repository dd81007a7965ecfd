-- The plain queue's consumer: take the oldest message nobody holds, one
-- per transaction.
DELETE FROM bench_queue
WHERE id = (SELECT id FROM bench_queue ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING *;
