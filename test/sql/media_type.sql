-- media_type: a preimage's media type (src/media_type.c): its syntax, its
-- normalisation, and the allow-list jam.allowed_media_types.
SET search_path = jam, public;
\set VERBOSITY default
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- Normalisation: type and subtype lowercased, surrounding space dropped,
-- parameters kept as given after "; ".  Each put stores new bytes, so the
-- stored media type is the normalised given one.
SELECT given, p->>'created' AS created, p->>'media_type' AS stored
FROM (VALUES
    (1, 'text/plain'),
    (2, 'Text/Plain'),
    (3, 'APPLICATION/OCTET-STREAM'),
    (4, '  text/plain  '),
    (5, 'text/plain;charset=UTF-8'),
    (6, 'TEXT/HTML ;  Charset="UTF-8"  '),
    (7, 'text/plain;'),
    (8, 'text/plain ;  '),
    (9, 'application/vnd.api+json'),
    (10, 'application/x-www-form-urlencoded'),
    (11, 'model/x.a!#$&^_b'),
    (12, 'multipart/form-data; boundary=a; q=1'),
    (13, 'a/b'),
    (14, '0/1')
) AS t(n, given),
LATERAL (SELECT jam_put_preimage(convert_to('media_type:' || n, 'UTF8'), given) AS p) AS put
ORDER BY n;
SELECT media_type FROM jam_preimages WHERE hash = decode(jam_hash('media_type:6'), 'hex');

-- The longest names: a type or subtype of 127 characters; at most 255 in all.
SELECT length(jam_put_preimage('media_type:long', repeat('t', 127) || '/' || repeat('s', 127))->>'media_type') AS len;
SELECT what, error_detail(format('SELECT jam.jam_put_preimage(%L, %L)', 'media_type:x', given)) AS result
FROM (VALUES
    (1, 'type of 128', repeat('t', 128) || '/s'),
    (2, 'subtype of 128', 't/' || repeat('s', 128)),
    (3, '256 in all', 't/s; ' || repeat('p', 251)),
    (4, '256 in all, spaces first', repeat(' ', 10) || 't/s; ' || repeat('p', 251))
) AS t(n, what, given) ORDER BY n;
SELECT length(jam_put_preimage('media_type:long params', '  t/s; ' || repeat('p', 250))->>'media_type') AS len_255_after_leading_space;

-- Malformed media types: invalid_media_type.
SELECT given, error_detail(format('SELECT jam.jam_put_preimage(%L, %L)', 'media_type:x', given)) AS result
FROM (VALUES
    (''),
    ('   '),
    ('text'),
    ('text/'),
    ('/plain'),
    ('text /plain'),
    ('text/ plain'),
    ('te xt/plain'),
    ('text/plain extra'),
    ('text/plain/x'),
    ('text/pl@in'),
    ('*/*'),
    ('text/*'),
    ('*'),
    ('-text/plain'),
    ('text/-plain'),
    ('text/plain; a=' || chr(9) || 'b'),
    ('text/plain; a=' || chr(127))
) AS t(given);
-- Every control character, before, inside or after the media type, is
-- refused: a line break would otherwise reach a Content-Type header or a log.
SELECT count(*) AS tried,
       count(*) FILTER (WHERE expect_error(format('SELECT jam.jam_put_preimage(%L, %L)',
                                                  'media_type:ctl', given)) LIKE 'JM005 invalid_media_type:%') AS refused
FROM generate_series(1, 32) AS c,
     LATERAL (SELECT CASE WHEN c = 32 THEN chr(127) ELSE chr(c) END AS ch) AS x,
     LATERAL (VALUES (ch || 'text/plain'), ('text/plain' || ch), ('text/' || ch || 'plain'),
                     ('text/plain; a=' || ch), ('text/plain ' || ch || ' ')) AS t(given);
SELECT error_detail(format('SELECT jam.jam_put_preimage(%L, %L)', 'media_type:ctl', E'text/plain\n')) AS trailing_newline;
SELECT count(*) AS stored FROM jam_preimages WHERE hash = decode(jam_hash('media_type:ctl'), 'hex');
-- Non-ASCII (shown by code only, so that the output does not depend on the
-- database encoding).
SELECT n, split_part(expect_error(format('SELECT jam.jam_put_preimage(%L, %L)', 'media_type:x', given)), ':', 1) AS result
FROM (VALUES
    (1, 'text/plain; charset=caf' || chr(233)),
    (2, 't' || chr(235) || 'xt/plain'),
    (3, 'text/pl' || chr(228) || 'in')
) AS t(n, given) ORDER BY n;
-- In full, with detail and hint.
SELECT jam_put_preimage('media_type:x', 'text');
SELECT jam_put_preimage('media_type:x', 'text/plain extra');
SELECT jam_put_preimage('media_type:x', 'text/');
SELECT count(*) AS stored FROM jam_preimages WHERE hash = decode(jam_hash('media_type:x'), 'hex');

-- The allow-list: exact entries, type/* and * (or */*); case and
-- parameters of the given type are ignored.
SET jam.allowed_media_types = 'text/plain, image/*';
SELECT given, CASE WHEN r = 'no error' THEN 'allowed' ELSE r END AS result
FROM (VALUES
    ('text/plain'),
    ('TEXT/Plain; charset=utf-8'),
    ('image/png'),
    ('IMAGE/SVG+XML'),
    ('text/html'),
    ('text/plainx'),
    ('application/octet-stream'),
    ('imagex/png'),
    ('imag/png'),
    ('image2/png')
) AS t(given),
LATERAL (SELECT expect_error(format('SELECT jam.jam_put_preimage(%L, %L)',
                                    'media_type:allow:' || given, given)) AS r) AS x;
-- In full: the detail shows the list.
SELECT jam_put_preimage('media_type:x', 'text/html');
-- Refused puts stored nothing; allowed ones did.
SELECT count(*) AS stored FROM jam_preimages
WHERE hash IN (decode(jam_hash('media_type:allow:text/html'), 'hex'), decode(jam_hash('media_type:allow:imagex/png'), 'hex'),
               decode(jam_hash('media_type:allow:application/octet-stream'), 'hex'));
SELECT count(*) AS stored FROM jam_preimages
WHERE hash IN (decode(jam_hash('media_type:allow:text/plain'), 'hex'), decode(jam_hash('media_type:allow:image/png'), 'hex'));
-- Syntax is checked before the allow-list.
SELECT expect_error($$SELECT jam.jam_put_preimage('media_type:x', 'text')$$) AS malformed_first;
-- The default media type is subject to the list as well.
SELECT expect_error($$SELECT jam.jam_put_preimage('media_type:x')$$) AS default_type;
-- The list is checked even when the bytes are already stored.
SELECT expect_error($$SELECT jam.jam_put_preimage('media_type:1', 'application/json')$$) AS already_stored;

-- Entries are matched without regard to case and surrounding space.
SET jam.allowed_media_types = '  Application/JSON ,IMAGE/*  ';
SELECT given, CASE WHEN r = 'no error' THEN 'allowed' ELSE r END AS result
FROM (VALUES ('application/json'), ('image/gif'), ('text/plain')) AS t(given),
LATERAL (SELECT expect_error(format('SELECT jam.jam_put_preimage(%L, %L)',
                                    'media_type:allow2:' || given, given)) AS r) AS x;

-- * and */* allow everything.
SET jam.allowed_media_types = '*';
SELECT jam_put_preimage('media_type:star', 'x-custom/thing')->>'media_type' AS star;
SET jam.allowed_media_types = 'text/plain, */*';
SELECT jam_put_preimage('media_type:star-star', 'x-custom/other')->>'media_type' AS star_star;
-- A partial wildcard is not a wildcard.
SET jam.allowed_media_types = 'text/pl*, t*/plain';
SELECT expect_error($$SELECT jam.jam_put_preimage('media_type:x', 'text/plain')$$) AS partial_wildcards;
-- An empty list allows nothing.
SET jam.allowed_media_types = '';
SELECT expect_error($$SELECT jam.jam_put_preimage('media_type:x', 'text/plain')$$) AS empty_list;
RESET jam.allowed_media_types;
SHOW jam.allowed_media_types;
SELECT count(*) AS stored FROM jam_preimages WHERE hash = decode(jam_hash('media_type:x'), 'hex');
