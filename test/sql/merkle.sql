SET search_path = jam, public;
-- merkle: RFC 9162 section 2.1 Merkle trees (src/merkle.c) through the
-- pure SQL helpers over in-memory leaves and the offline verifiers
-- (src/verify.c).  The helpers build their tree as the log does, by
-- appending through the frontier and keeping every completed subtree,
-- and read it through the same fetch interface.  Checked here against
-- the RFC 6962 reference tree the issue names, against a reference
-- implementation written below straight from the RFC's definitions, and
-- on every edge the verifiers must get right.  The public vector files
-- are tested in test/t/010_merkle_vectors.pl.
\set VERBOSITY terse
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/helpers.psql'
\i :helpers

-- The reference: MTH, PATH and PROOF of RFC 9162 sections 2.1.1, 2.1.3.1
-- and 2.1.4.1, recursively over the leaf inputs, with PostgreSQL's own
-- sha256().
-- the largest power of two smaller than n (n > 1)
CREATE FUNCTION pg_temp.ref_split(n integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k integer := 1;
BEGIN
    WHILE 2 * k < n LOOP
        k := 2 * k;
    END LOOP;
    RETURN k;
END
$$;
CREATE FUNCTION pg_temp.ref_mth(d bytea[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := coalesce(array_length(d, 1), 0);
    k integer;
BEGIN
    IF n = 0 THEN
        RETURN sha256('');
    ELSIF n = 1 THEN
        RETURN sha256('\x00'::bytea || d[1]);
    END IF;
    k := pg_temp.ref_split(n);
    RETURN sha256('\x01'::bytea || pg_temp.ref_mth(d[1:k]) || pg_temp.ref_mth(d[k + 1:n]));
END
$$;
CREATE FUNCTION pg_temp.ref_path(m integer, d bytea[]) RETURNS bytea[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := array_length(d, 1);
    k integer;
BEGIN
    IF n = 1 THEN
        RETURN '{}';
    END IF;
    k := pg_temp.ref_split(n);
    IF m < k THEN
        RETURN pg_temp.ref_path(m, d[1:k]) || pg_temp.ref_mth(d[k + 1:n]);
    END IF;
    RETURN pg_temp.ref_path(m - k, d[k + 1:n]) || pg_temp.ref_mth(d[1:k]);
END
$$;
CREATE FUNCTION pg_temp.ref_subproof(m integer, d bytea[], b boolean) RETURNS bytea[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n integer := array_length(d, 1);
    k integer;
BEGIN
    IF m = n THEN
        RETURN CASE WHEN b THEN '{}'::bytea[] ELSE ARRAY[pg_temp.ref_mth(d)] END;
    END IF;
    k := pg_temp.ref_split(n);
    IF m <= k THEN
        RETURN pg_temp.ref_subproof(m, d[1:k], b) || pg_temp.ref_mth(d[k + 1:n]);
    END IF;
    RETURN pg_temp.ref_subproof(m - k, d[k + 1:n], false) || pg_temp.ref_mth(d[1:k]);
END
$$;
CREATE FUNCTION pg_temp.hexes(hashes bytea[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(encode(h, 'hex') ORDER BY o), '{}')
    FROM unnest(hashes) WITH ORDINALITY AS u(h, o)
$$;
-- hash h with its first hex digit changed
CREATE FUNCTION pg_temp.flip(h text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN left(h, 1) = '0' THEN '1' ELSE '0' END || substr(h, 2)
$$;

-- The RFC 6962 reference tree of 8 leaves, and a tree of 1000 leaves
-- (leaf i is the 4 bytes of i, big-endian).
CREATE TEMP TABLE rfc AS
SELECT ARRAY['\x'::bytea, '\x00', '\x10', '\x2021', '\x3031', '\x40414243',
             '\x5051525354555657', '\x606162636465666768696a6b6c6d6e6f'] AS leaves;
CREATE TEMP TABLE big AS
SELECT array_agg(int4send(i) ORDER BY i) AS leaves FROM generate_series(0, 999) i;

-- Hashing: the leaf and node prefixes, the empty tree, the issue's root.
SELECT jam_merkle_leaf_hash('\x') AS empty_leaf,
       jam_merkle_leaf_hash('\x') = encode(sha256('\x00'), 'hex') AS leaf_prefix_ok,
       jam_merkle_leaf_hash(NULL) IS NULL AS strict;
SELECT jam_merkle_root('{}') AS empty_tree,
       jam_merkle_root('{}') = encode(sha256(''), 'hex') AS empty_tree_ok,
       jam_merkle_root(ARRAY['\x'::bytea]) = jam_merkle_leaf_hash('\x') AS one_leaf_is_its_hash,
       jam_merkle_root(ARRAY['\x'::bytea, '\x00']) =
           encode(sha256('\x01'::bytea || decode(jam_merkle_leaf_hash('\x'), 'hex')
                         || decode(jam_merkle_leaf_hash('\x00'), 'hex')), 'hex') AS node_prefix_ok;
SELECT jam_merkle_root(leaves) AS rfc_root,
       jam_merkle_root(leaves) = '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328' AS rfc_root_ok
FROM rfc;

-- The root of every prefix of the RFC tree, each equal to the reference's.
SELECT n, jam_merkle_root(leaves[1:n]) AS root,
       jam_merkle_root(leaves[1:n]) = encode(pg_temp.ref_mth(leaves[1:n]), 'hex') AS matches_reference
FROM rfc, generate_series(0, 8) n ORDER BY n;

-- Every inclusion proof of the RFC tree: its length, that it is the
-- reference's, and that it verifies.
SELECT n, m, cardinality(p) AS length,
       p = pg_temp.hexes(pg_temp.ref_path(m, leaves[1:n])) AS matches_reference,
       jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n, p, jam_merkle_root(leaves[1:n])) AS verifies
FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m,
     LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p
WHERE m < n ORDER BY n, m;

-- Every consistency proof between prefixes of the RFC tree, likewise.
SELECT m, n, cardinality(p) AS length,
       p = CASE WHEN m = n THEN '{}' ELSE pg_temp.hexes(pg_temp.ref_subproof(m, leaves[1:n], true)) END
           AS matches_reference,
       jam_verify_consistency(m, n, p, jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n])) AS verifies
FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m,
     LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p
WHERE m <= n ORDER BY m, n;

-- Every way of tampering with those proofs fails: each element changed in
-- turn, the proof shortened or lengthened, its elements reversed, another
-- leaf, another position, the roots swapped.
SELECT count(*) AS tampered_inclusion_proofs, count(*) FILTER (WHERE ok) AS verified
FROM (
    SELECT jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n,
                                p[:i - 1] || pg_temp.flip(p[i]) || p[i + 1:], jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m,
         LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p, generate_series(1, cardinality(p)) i
    WHERE m < n
    UNION ALL
    SELECT jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n, t, jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m,
         LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p,
         LATERAL (VALUES (p[2:]), (p[:cardinality(p) - 1]), (p || p[1]), (p || repeat('0', 64)),
                         (ARRAY(SELECT x FROM unnest(p) WITH ORDINALITY u(x, o) ORDER BY o DESC))) AS v(t)
    WHERE m < n AND cardinality(p) > 1
    UNION ALL
    SELECT jam_verify_inclusion(jam_merkle_leaf_hash(leaves[other + 1]), m, n, p, jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m, generate_series(0, 7) other,
         LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p
    WHERE m < n AND other < n AND other <> m
    UNION ALL
    SELECT jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), other, n, p, jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(0, 7) m, generate_series(0, 7) other,
         LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p
    WHERE m < n AND other < n AND other <> m
) AS t(ok);
SELECT count(*) AS tampered_consistency_proofs, count(*) FILTER (WHERE ok) AS verified
FROM (
    SELECT jam_verify_consistency(m, n, p[:i - 1] || pg_temp.flip(p[i]) || p[i + 1:],
                                  jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m,
         LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p, generate_series(1, cardinality(p)) i
    WHERE m < n
    UNION ALL
    SELECT jam_verify_consistency(m, n, t, jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m,
         LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p,
         LATERAL (VALUES (p[2:]), (p[:cardinality(p) - 1]), (p || p[1]), ('{}'::text[])) AS v(t)
    WHERE m < n
    UNION ALL
    SELECT jam_verify_consistency(m, n, p, jam_merkle_root(leaves[1:n]), jam_merkle_root(leaves[1:m]))
    FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m,
         LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p
    WHERE m < n
    UNION ALL
    -- the proof against the roots of other sizes
    SELECT jam_verify_consistency(m, n, p, jam_merkle_root(leaves[1:m2]), jam_merkle_root(leaves[1:n]))
    FROM rfc, generate_series(1, 8) n, generate_series(1, 8) m, generate_series(1, 8) m2,
         LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p
    WHERE m < n AND m2 <> m
) AS t(ok);

-- Against the reference on every tree of up to 130 leaves (roots) and of
-- up to 33 (every inclusion and consistency proof), which covers every
-- shape of frontier up to 7 levels.
SELECT count(*) AS roots,
       count(*) FILTER (WHERE jam_merkle_root(leaves[1:n]) = encode(pg_temp.ref_mth(leaves[1:n]), 'hex')) AS match
FROM big, generate_series(0, 130) n;
SELECT count(*) AS inclusion_proofs,
       count(*) FILTER (WHERE p = pg_temp.hexes(pg_temp.ref_path(m, leaves[1:n]))) AS match,
       count(*) FILTER (WHERE jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n, p,
                                                   jam_merkle_root(leaves[1:n]))) AS verify
FROM big, generate_series(1, 33) n, generate_series(0, 32) m,
     LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p
WHERE m < n;
SELECT count(*) AS consistency_proofs,
       count(*) FILTER (WHERE p = pg_temp.hexes(pg_temp.ref_subproof(m, leaves[1:n], true))) AS match,
       count(*) FILTER (WHERE jam_verify_consistency(m, n, p, jam_merkle_root(leaves[1:m]),
                                                     jam_merkle_root(leaves[1:n]))) AS verify
FROM big, generate_series(1, 33) n, generate_series(1, 32) m,
     LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p
WHERE m < n;

-- A tree of 1000 leaves: its root, and proofs around the power-of-two
-- boundaries, against the reference.
SELECT jam_merkle_root(leaves) AS root,
       jam_merkle_root(leaves) = encode(pg_temp.ref_mth(leaves), 'hex') AS matches_reference
FROM big;
SELECT m, n, cardinality(p) AS length,
       p = pg_temp.hexes(pg_temp.ref_path(m, leaves[1:n])) AS matches_reference,
       jam_verify_inclusion(jam_merkle_leaf_hash(leaves[m + 1]), m, n, p, jam_merkle_root(leaves[1:n])) AS verifies
FROM big, (VALUES (0, 1000), (511, 1000), (512, 1000), (767, 1000), (998, 1000), (999, 1000),
                  (0, 513), (512, 513), (255, 512), (500, 777)) AS c(m, n),
     LATERAL jam_merkle_inclusion_proof(leaves, m, n) AS p
ORDER BY n, m;
SELECT m, n, cardinality(p) AS length,
       p = pg_temp.hexes(pg_temp.ref_subproof(m, leaves[1:n], true)) AS matches_reference,
       jam_verify_consistency(m, n, p, jam_merkle_root(leaves[1:m]), jam_merkle_root(leaves[1:n])) AS verifies
FROM big, (VALUES (1, 1000), (511, 1000), (512, 1000), (513, 1000), (999, 1000),
                  (600, 777), (256, 512), (3, 5)) AS c(m, n),
     LATERAL jam_merkle_consistency_proof(leaves, m, n) AS p
ORDER BY n, m;

-- Edges of inclusion: a single leaf needs an empty proof; a position at or
-- past the size, a negative one, an empty or negative tree, and a proof
-- too long (even far too long) are false, not errors.
SELECT jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 1, '{}', jam_merkle_leaf_hash('\x')) AS single_leaf,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 1, 1, '{}', jam_merkle_leaf_hash('\x')) AS index_at_size,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 5, 1, '{}', jam_merkle_leaf_hash('\x')) AS index_past_size,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), -1, 1, '{}', jam_merkle_leaf_hash('\x')) AS negative_index,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 0, '{}', jam_merkle_leaf_hash('\x')) AS empty_tree,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, -1, '{}', jam_merkle_leaf_hash('\x')) AS negative_size,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 1, ARRAY[repeat('0', 64)], jam_merkle_leaf_hash('\x')) AS extra_element,
       jam_verify_inclusion(jam_merkle_leaf_hash('\x'), 0, 1, array_fill(repeat('0', 64), ARRAY[200]),
                            jam_merkle_leaf_hash('\x')) AS two_hundred_elements;
SELECT jam_verify_inclusion(jam_merkle_leaf_hash(leaves[1]), 0, 8, jam_merkle_inclusion_proof(leaves, 0, 8),
                            jam_merkle_root(leaves)) AS leaf_0_of_8,
       jam_verify_inclusion(jam_merkle_leaf_hash(leaves[1]), 0, 9223372036854775807,
                            jam_merkle_inclusion_proof(leaves, 0, 8), jam_merkle_root(leaves)) AS in_largest_tree,
       jam_verify_inclusion(jam_merkle_leaf_hash(leaves[1]), 9223372036854775806, 9223372036854775807,
                            array_fill(repeat('0', 64), ARRAY[63]), jam_merkle_root(leaves)) AS last_of_largest_tree
FROM rfc;

-- Edges of consistency: equal sizes need an empty proof and equal roots;
-- the empty tree proves nothing (as in transparency-dev/merkle); a first
-- size above the second or negative is false.
SELECT jam_verify_consistency(2, 2, '{}', r2, r2) AS equal_trees,
       jam_verify_consistency(2, 2, '{}', r2, r3) AS equal_sizes_other_roots,
       jam_verify_consistency(2, 2, ARRAY[r2], r2, r2) AS equal_with_proof,
       jam_verify_consistency(0, 3, '{}', encode(sha256(''), 'hex'), r3) AS from_empty,
       jam_verify_consistency(0, 0, '{}', encode(sha256(''), 'hex'), encode(sha256(''), 'hex')) AS empty_to_empty,
       jam_verify_consistency(3, 2, '{}', r3, r2) AS shrinking,
       jam_verify_consistency(-1, 2, '{}', r2, r2) AS negative_first,
       jam_verify_consistency(2, -1, '{}', r2, r2) AS negative_second,
       jam_verify_consistency(2, 3, '{}', r2, r3) AS missing_proof,
       jam_verify_consistency(2, 3, array_fill(repeat('0', 64), ARRAY[200]), r2, r3) AS two_hundred_elements
FROM (SELECT jam_merkle_root(leaves[1:2]) AS r2, jam_merkle_root(leaves[1:3]) AS r3 FROM rfc) AS r;

-- Malformed values: text that is not lowercase hex of even length is
-- invalid_hash; hex that is not 32 bytes is no hash and proves nothing
-- (transparency-dev's suite wants such proofs refused, and accepts equal
-- sizes with equal roots whatever their length); a null argument or
-- element, or a proof of two dimensions, is an error.
SELECT expect_error($$SELECT jam_verify_inclusion('xyz', 0, 1, '{}', repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_inclusion(repeat('0', 63), 0, 1, '{}', repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_inclusion(repeat('A', 64), 0, 1, '{}', repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_inclusion(repeat('0', 64), 0, 2, ARRAY['zz'], repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_consistency(1, 2, ARRAY[repeat('0', 64)], repeat('0', 64), repeat('g', 64))$$);
SELECT jam_verify_inclusion(repeat('0', 62), 0, 1, '{}', repeat('0', 62)) AS short_hashes,
       jam_verify_inclusion('', 0, 1, '{}', '') AS empty_hashes,
       jam_verify_inclusion(jam_merkle_leaf_hash(leaves[1]), 0, 2, ARRAY[jam_merkle_leaf_hash(leaves[2]) || '00'],
                            jam_merkle_root(leaves[1:2])) AS long_element,
       jam_verify_consistency(1, 2, ARRAY['00'], jam_merkle_root(leaves[1:1]), jam_merkle_root(leaves[1:2])) AS short_element,
       jam_verify_consistency(1, 1, '{}', 'abcd', 'abcd') AS equal_short_roots,
       jam_verify_consistency(1, 1, '{}', 'abcd', 'abce') AS unequal_short_roots
FROM rfc;
SELECT expect_error($$SELECT jam_verify_inclusion(NULL, 0, 1, '{}', repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_inclusion(repeat('0', 64), NULL, 1, '{}', repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_inclusion(repeat('0', 64), 0, 1, NULL, repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_consistency(1, 2, ARRAY[NULL], repeat('0', 64), repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_consistency(1, 2, ARRAY[ARRAY[repeat('0', 64)]], repeat('0', 64), repeat('0', 64))$$);
SELECT expect_error($$SELECT jam_verify_consistency(1, 2, '{}', repeat('0', 64), NULL)$$);

-- The helpers refuse positions outside the leaves they are given.
SELECT expect_error($$SELECT jam_merkle_inclusion_proof(leaves, 8, 8) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_inclusion_proof(leaves, 0, 9) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_inclusion_proof(leaves, -1, 8) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_inclusion_proof(leaves, 0, 0) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_inclusion_proof('{}', 0, 1)$$);
SELECT expect_error($$SELECT jam_merkle_consistency_proof(leaves, 5, 4) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_consistency_proof(leaves, -1, 4) FROM rfc$$);
SELECT expect_error($$SELECT jam_merkle_consistency_proof(leaves, 1, 9) FROM rfc$$);
SELECT jam_merkle_consistency_proof(leaves, 0, 5) AS from_empty,
       jam_merkle_consistency_proof(leaves, 5, 5) AS same_size,
       jam_merkle_consistency_proof('{}', 0, 0) AS empty_to_empty,
       jam_merkle_inclusion_proof(leaves, 0, 1) AS single_leaf
FROM rfc;
SELECT expect_error($$SELECT jam_merkle_root(ARRAY[NULL::bytea])$$);
SELECT expect_error($$SELECT jam_merkle_root(NULL)$$);
SELECT expect_error($$SELECT jam_merkle_root(ARRAY[ARRAY['\x00'::bytea]])$$);
SELECT expect_error($$SELECT jam_merkle_inclusion_proof(leaves, NULL, 8) FROM rfc$$);
