-- jam 1.5 to 1.6: an attester's attestations found through an index.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.6'" to load this file. \quit

-- jam_list_attestations(attester => ...) (and GET /jam/attestations?attester=)
-- found an attester's attestations by walking them all in id order: the
-- node signs one for every report, so a page of an external attester who
-- had signed 8 took 15 to 19 ms with 200,000 reports, and more with every
-- report ever written.  This index serves that filter, and keyset paging
-- within it (id > after), at the cost of one small entry per attestation;
-- the library plans each combination of the list's filters on its own, so
-- that the filter's plan uses it.  Building it takes a lock that holds off
-- processing (which writes attestations) until the update commits.
CREATE INDEX jam_attestations_attester_idx ON jam_attestations (attester, id);
