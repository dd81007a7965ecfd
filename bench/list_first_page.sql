-- The first page of the package list, with its total (bench/history.sh).
SELECT jam.jam_list_packages("limit" => 50);
