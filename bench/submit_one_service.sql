-- The hard case for the log: every package goes to one service, whose row
-- serializes the appends.
SELECT jam.jam_submit_package('svc-hot', decode(repeat(md5(random()::text), 64), 'hex'));
