-- jam 1.8 to 1.9: the log entries' index by hash becomes a hash index.
\echo Use "ALTER EXTENSION jam UPDATE TO '1.9'" to load this file. \quit

-- jam_log_entries_hash_idx serves one kind of query: the entry whose hash
-- is a given package id or report hash (jam_receipt and the proofs by
-- hash, the receipts of packages submitted again), always by equality.
-- Those hashes are uniformly random, so every submit and every processed
-- package inserted into a random leaf of a btree holding the 32 bytes of
-- each: after each checkpoint the first change to a page writes the whole
-- page to the WAL, and a log's btree of 10^6 entries has more leaves than
-- a few seconds of appends touch, so nearly every append wrote an 8 KiB
-- page image for it.  A hash index keeps a 4-byte hash code an entry
-- instead of the key: about half the btree's pages for the same entries,
-- so fewer page images to write (a fifth less WAL a submit, in
-- CHANGELOG.md's measurement); lookups by equality, the only ones made,
-- are as direct.  Hash indexes are WAL-logged and crash-safe since
-- PostgreSQL 10.
--
-- The new index is built before the old one is dropped: building it holds
-- off only the log's writers, while dropping an index locks its table
-- against readers too, until the update commits.  Done first, the drop
-- would keep receipts and proofs waiting for the whole build (6.7 s with
-- 5.8 million entries); done last, for the moment of the drop.
CREATE INDEX jam_log_entries_hash_idx_new ON jam_log_entries USING hash (hash);
DROP INDEX jam_log_entries_hash_idx;
ALTER INDEX jam_log_entries_hash_idx_new RENAME TO jam_log_entries_hash_idx;
