-- The first page of one service's failed packages, with its total (bench/history.sh).
SELECT jam.jam_list_packages('failed', 'hist-0', 50);
