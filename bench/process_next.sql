-- One claim per transaction: process the oldest pending package of the
-- service whose backlog sits behind the history.
SELECT jam.jam_process_next('drain');
