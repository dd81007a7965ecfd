-- An inclusion proof and a consistency proof in a log of 10^6 entries.
\set seq random(0, 999999)
\set first random(1, 1000000)
SELECT jam.jam_inclusion_proof('proof-1m', :seq, 1000000), jam.jam_consistency_proof('proof-1m', :first, 1000000);
