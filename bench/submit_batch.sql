-- A batch: 100 fresh packages of one service (1 KiB payloads) in one call.
SELECT jam.jam_submit_packages('svc-batch',
                               ARRAY(SELECT decode(repeat(md5(random()::text), 64), 'hex')
                                     FROM generate_series(1, 100)));
