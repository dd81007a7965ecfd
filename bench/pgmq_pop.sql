-- pgmq's consumer: pop the oldest message of the drained queue.
SELECT * FROM pgmq.pop('drain');
