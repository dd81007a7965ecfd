# Shared by the scripts: where PostgreSQL 15 lives and how to run as the
# postgres user (the server refuses to run as root).
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$pg_config" ] || pg_config=$(command -v pg_config)
bindir=$("$pg_config" --bindir)
pgxs_dir=$("$pg_config" --pkglibdir)/pgxs

if [ "$(id -u)" = 0 ]; then
	as_pg() { runuser -u postgres -- "$@"; }
else
	as_pg() { "$@"; }
fi
