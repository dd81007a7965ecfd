-- Up to 100 pending packages of the service in one call and transaction.
SELECT jam.jam_process_packages('drain', 100);
