-- submit.sql through a token: the same package, with the token presented in
-- the same statement (how the HTTP shim calls), by a jam_api login.
\set svc random(0, 15)
SELECT jam.jam_submit_package('svc-' || :svc, decode(repeat(md5(random()::text), 64), 'hex'))
FROM jam.jam_authenticate(:token);
