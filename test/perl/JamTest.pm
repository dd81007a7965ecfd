# Shared helpers for jam's TAP tests (test/t/*.pl).

package JamTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(jam_node sql_literal_bytea table_fingerprints jam_config_tables);

# A started cluster that preloads jam, with the extension created in the
# database "postgres".  Extra postgresql.conf lines may be passed.
sub jam_node
{
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n", "shared_preload_libraries = 'jam'", @conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION jam');
	return $node;
}

# A bytea literal for raw Perl bytes.
sub sql_literal_bytea
{
	my ($bytes) = @_;
	return "'\\x" . unpack('H*', $bytes) . "'::bytea";
}

# The tables whose data pg_dump keeps for the extension (the ones registered
# with pg_extension_config_dump), sorted by name.
sub jam_config_tables
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql(
		$db, q{
		SELECT c.relname
		FROM pg_extension e, unnest(e.extconfig) AS r(oid)
		JOIN pg_class c ON c.oid = r.oid
		WHERE e.extname = 'jam' AND c.relkind = 'r'
		ORDER BY 1});
	return split /\n/, $out;
}

# { table => "rows:md5" } for each of the given jam tables: the row count
# and an md5 over every row's text form, in a deterministic order.
sub table_fingerprints
{
	my ($node, $db, @tables) = @_;
	my %fp;
	for my $t (@tables)
	{
		$fp{$t} = $node->safe_psql(
			$db, qq{
			SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-')
			FROM jam.$t t});
	}
	return \%fp;
}

1;
