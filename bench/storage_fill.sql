-- The same :n packages in any version: 16 services, 1 KiB payloads made
-- from the package number, submitted and then processed through the API,
-- 100 per transaction; then vacuumed, as autovacuum would leave them.
CREATE PROCEDURE bench_store(n integer)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 0 .. (n - 1) / 100 LOOP
        PERFORM count(jam.jam_submit_package('store-' || g % 16, convert_to(repeat(md5(g::text), 32), 'UTF8')))
        FROM generate_series(i * 100 + 1, least(n, i * 100 + 100)) AS g;
        COMMIT;
    END LOOP;
    LOOP
        PERFORM count(jam.jam_process_next()) FROM generate_series(1, 100);
        COMMIT;
        EXIT WHEN NOT EXISTS (SELECT FROM jam.jam_work_packages WHERE status = 'pending');
    END LOOP;
END
$$;
CALL bench_store(:n);
VACUUM ANALYZE;
