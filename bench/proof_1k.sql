-- An inclusion proof and a consistency proof in a log of 10^3 entries.
\set seq random(0, 999)
\set first random(1, 1000)
SELECT jam.jam_inclusion_proof('proof-1k', :seq, 1000), jam.jam_consistency_proof('proof-1k', :first, 1000);
