-- One package per transaction: a fresh 1 KiB payload for one of 16 services.
\set svc random(0, 15)
SELECT jam.jam_submit_package('svc-' || :svc, decode(repeat(md5(random()::text), 64), 'hex'));
