-- The first page of one attester's attestations (bench/history.sh).
SELECT jam.jam_list_attestations(attester => 'bench-auditor', "limit" => 50);
