-- The plain queue's consumer, 100 messages a statement (pgmq pop's shape).
WITH taken AS (SELECT id FROM bench_queue ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED)
DELETE FROM bench_queue q USING taken WHERE q.id = taken.id
RETURNING q.*;
