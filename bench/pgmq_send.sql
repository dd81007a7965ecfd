-- pgmq's side of a single submit: one message of the same 1 KiB payload
-- (base64 in jsonb, pgmq's message type) to one of 16 queues.
\set svc random(0, 15)
SELECT pgmq.send('svc_' || :svc,
                 jsonb_build_object('payload', encode(decode(repeat(md5(random()::text), 64), 'hex'), 'base64')));
