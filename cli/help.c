/*
 * help.c: the help texts, in one place so that they read as one manual
 * (cli/jamctl.1 says the same at more length).
 */
#include "help.h"

#include <stdio.h>
#include <string.h>

#include "jamctl.h"

struct help
{
	const char *verb;
	const char *text;
};

static const struct help helps[] = {
	{"preimage",
		"usage: jamctl preimage put FILE|- [--media-type TYPE]\n"
		"       jamctl preimage get HASH [-o FILE]\n"
		"       jamctl preimage stat HASH [--meta]\n"
		"       jamctl preimage --stat --hash HASH [--meta]     (the prototype's spelling)\n"
		"       jamctl preimage hash FILE|-                     (offline)\n"
		"\n"
		"Preimages are blobs addressed by their BLAKE2b-256 hash.  See jamctl preimage VERB --help.\n"},
	{"preimage put",
		"usage: jamctl preimage put FILE|- [--media-type TYPE]\n"
		"\n"
		"Uploads the bytes of FILE (or stdin) and prints their hash and whether they\n"
		"were created or already stored.  The hash the server answers is checked against\n"
		"BLAKE2b-256 of the bytes computed here (exit 6 when they differ).\n"
		"\n"
		"  --media-type TYPE   the Content-Type to store (default application/octet-stream)\n"},
	{"preimage get",
		"usage: jamctl preimage get HASH [-o FILE]\n"
		"\n"
		"Downloads a preimage and checks that its bytes hash to HASH before writing any\n"
		"of them (exit 6, nothing written, when they do not).  Binary bytes are not\n"
		"written to a terminal: redirect stdout, or give -o.\n"
		"\n"
		"  -o, --output FILE   write to FILE (atomically: a temporary file renamed into place);\n"
		"                      -o - writes to stdout even when it is a terminal\n"},
	{"preimage stat",
		"usage: jamctl preimage stat HASH [--meta]\n"
		"       jamctl preimage --stat --hash HASH [--meta]\n"
		"\n"
		"A preimage's hash, size, media type, refcount, storage class and creation time.\n"
		"--meta is accepted for the prototype's spelling; stat always shows the meta.\n"},
	{"preimage hash",
		"usage: jamctl preimage hash FILE|-\n"
		"\n"
		"Prints the content address (BLAKE2b-256) of FILE, computed locally.\n"},
	{"package",
		"usage: jamctl package submit --service S FILE|- [--preimage H]... [--declared-hash H]\n"
		"                             [--contract-version N] [--weight N] [--with-receipt]\n"
		"       jamctl package id --service S FILE|- [--preimage H]... [--contract-version N] [--weight N]\n"
		"       jamctl package get ID\n"
		"\n"
		"See jamctl package VERB --help.\n"},
	{"package submit",
		"usage: jamctl package submit --service S FILE|- [--preimage H]... [--declared-hash H]\n"
		"                             [--contract-version N] [--weight N] [--with-receipt]\n"
		"\n"
		"Submits FILE (or stdin) as a package's payload.  jamctl computes the package id\n"
		"from the documented encoding, declares it (so that the server refuses a package\n"
		"whose id it computes otherwise, exit 6) and checks the id the server answers.\n"
		"Submitting an identical package again returns the stored one (\"existing\").\n"
		"\n"
		"  --service S            the service (required)\n"
		"  --preimage H           a referenced preimage, in order; repeatable\n"
		"  --declared-hash H      declare this id instead of the computed one\n"
		"  --contract-version N   execution contract version (default 1)\n"
		"  --weight N             weight hint for rate limits (default 1)\n"
		"  --with-receipt         include the log receipt\n"},
	{"package id",
		"usage: jamctl package id --service S FILE|- [--preimage H]... [--contract-version N] [--weight N]\n"
		"\n"
		"Prints the id the package would have, computed locally (offline).\n"},
	{"package get",
		"usage: jamctl package get ID\n"
		"\n"
		"One package, its payload in base64.\n"},
	{"packages",
		"usage: jamctl packages [--status S] [--service S] [--limit N] [--offset N | --after SEQ | --all]\n"
		"\n"
		"Lists packages, oldest first.  --all follows the pages to the end, printing each\n"
		"page as it arrives (keyset paging: every page costs what the first does); as JSON\n"
		"it writes {\"items\": [...], \"count\": N}.\n"
		"\n"
		"  --status S    pending, applied or failed\n"
		"  --service S   one service\n"
		"  --limit N     items per page (1 to 1000; default 50)\n"
		"  --offset N    skip N items\n"
		"  --after SEQ   items after this seq (keyset paging)\n"
		"  --all         every page\n"},
	{"reports",
		"usage: jamctl reports [--service S] [--status S] [--limit N] [--offset N | --after SEQ | --all]\n"
		"\n"
		"Lists reports, oldest first; options as for jamctl packages.\n"},
	{"process",
		"usage: jamctl process [--service S] [--max N]\n"
		"\n"
		"Processes the oldest pending package (of the service, if given) and prints its\n"
		"report.  Exit 7 when nothing is pending.\n"
		"\n"
		"  --max N   up to N packages in one transaction\n"},
	{"report",
		"usage: jamctl report --package ID [--with-receipt]\n"
		"       jamctl report ID [--with-receipt]\n"
		"\n"
		"The report of a package (exit 2 while it has none).  --with-receipt adds the\n"
		"report's log receipt with its inclusion proof.\n"},
	{"receipt",
		"usage: jamctl receipt HASH [--proof | --entry [--package ID]] [-o FILE]\n"
		"\n"
		"The log receipt of a package id or report hash, with its inclusion proof.\n"
		"--proof writes the receipt as a c2sp.org/tlog-proof@v1 text instead, which\n"
		"jamctl verify checks offline, years later, with only the node's key.\n"
		"--entry writes the 74-byte log entry (the proof's leaf), rebuilt here from the\n"
		"receipt and the package (or report) and checked against the receipt's leaf hash,\n"
		"for jamctl verify --leaf-data FILE --hash HASH.\n"
		"\n"
		"  --proof             the offline proof (text), to stdout or -o FILE\n"
		"  --entry             the log entry (binary), to -o FILE or a redirection\n"
		"  --package ID        with --entry for a report's hash: the report's package\n"
		"  -o, --output FILE   write it to FILE\n"},
	{"roots",
		"usage: jamctl roots\n"
		"\n"
		"The head of every service's log: tree size and root.\n"},
	{"checkpoint",
		"usage: jamctl checkpoint --service S\n"
		"       jamctl checkpoint S\n"
		"\n"
		"The service's signed checkpoint (C2SP tlog-checkpoint), as the note text;\n"
		"with --json, {service_id, origin, tree_size, root, note}.\n"},
	{"status",
		"usage: jamctl status\n"
		"\n"
		"jam_status(): enablement, version, the node's verifier key (for jamctl verify),\n"
		"limits, counts and log heads.  Without a token, only the public part.\n"},
	{"quota",
		"usage: jamctl quota [--service S | --token ID]\n"
		"\n"
		"Quota usage of a service or a token (jam_quota_usage); without either, the\n"
		"presented token's.  Needs the shim's GET /jam/quota.\n"},
	{"tokens",
		"usage: jamctl tokens list\n"
		"       jamctl tokens create NAME --scope SCOPE... [--service S]... [--tenant T] [--expires TIME]\n"
		"       jamctl tokens revoke ID\n"
		"\n"
		"Token administration (needs jam:admin; the shim's /jam/tokens routes).  create\n"
		"prints the new token once: keep it in a file, mode 600, and use --token-file.\n"
		"Scopes: jam:read, jam:submit, jam:process, jam:admin.\n"},
	{"verify",
		"usage: jamctl verify FILE|- --key VKEY [--leaf-data FILE | --leaf-hash HEX] [--hash H] [--origin O]\n"
		"                     [--witness WKEY]... [--min-witnesses K]\n"
		"\n"
		"Checks a c2sp.org/tlog-proof@v1 file (jamctl receipt HASH --proof) offline: no\n"
		"server is contacted.  Each check is named when it fails (exit 6):\n"
		"  format     the proof and its checkpoint are well formed\n"
		"  signature  the checkpoint is signed by VKEY (Ed25519 signed note)\n"
		"  witnesses  K of the WKEY witnesses cosigned it (with --witness; all without -K)\n"
		"  origin     the checkpoint is of log O (with --origin, e.g. jam/svc-1)\n"
		"  inclusion  the path leads from the leaf to the checkpoint's root (RFC 9162)\n"
		"  leaf       the leaf is the log entry of H (with --hash)\n"
		"\n"
		"  --key VKEY          the node's verifier key, name+keyid+key (jamctl status)\n"
		"  --leaf-data FILE    the 74-byte log entry the proof is for\n"
		"  --leaf-hash HEX     or its leaf hash (a receipt's leaf_hash)\n"
		"  --hash H            the package id or report hash the entry must name\n"
		"  --origin O          the log the checkpoint must be of\n"
		"  --witness WKEY      a witness's cosigner key (its jam_cosigner_key(), type 0x04,\n"
		"                      or its note key); repeat for each witness\n"
		"  --min-witnesses K   how many of them must have cosigned (default: all)\n"
		"\n"
		"Without --leaf-data or --leaf-hash only the path's shape can be checked.\n"},
	{"help",
		"usage: jamctl help [VERB]\n"},
	{NULL, NULL}
};

void
help_overview(FILE *to)
{
	fputs("usage: jamctl [--url URL] [--token-file FILE] [--json | --human] [--retry N] [-q] VERB ...\n"
		  "\n"
		  "jamctl talks to jam's HTTP shim: preimages, packages, processing, reports,\n"
		  "receipts and signed checkpoints, and checks receipts offline.\n"
		  "\n"
		  "verbs:\n"
		  "  preimage put|get|stat|hash  store, fetch (hash-checked), describe, hash a blob\n"
		  "  package submit|id|get       submit a package (id checked locally), compute an id\n"
		  "  packages                    list packages (--all: every page)\n"
		  "  reports                     list reports\n"
		  "  process                     process the next pending package (exit 7: none)\n"
		  "  report                      a package's report\n"
		  "  receipt                     a log receipt; --proof: the offline proof\n"
		  "  roots                       every service's log head\n"
		  "  checkpoint                  a service's signed checkpoint\n"
		  "  status                      jam_status(): version, verifier key, limits, counts\n"
		  "  quota                       quota usage of a service or token\n"
		  "  tokens list|create|revoke   token administration\n"
		  "  verify                      check a receipt's proof offline\n"
		  "  help [VERB]                 this, or a verb's help (also: jamctl VERB --help)\n"
		  "\n"
		  "global options (before or after the verb):\n"
		  "  --url URL          the shim (default: JAM_URL, else " JAMCTL_DEFAULT_URL ")\n"
		  "  --token-file FILE  read the bearer token from FILE (else JAM_TOKEN, else the\n"
		  "                     file JAM_TOKEN_FILE names); never on the command line\n"
		  "  --json             one JSON document on stdout (the default when stdout is not a terminal)\n"
		  "  --human            aligned text even when stdout is not a terminal\n"
		  "  --retry N          retry up to N times on 429, 503 and refused connections,\n"
		  "                     waiting as Retry-After says\n"
		  "  --timeout SECONDS  give up on a request after this long (default: never)\n"
		  "  -q, --quiet        no progress bar, no retry notices\n"
		  "  --version          jamctl's version\n"
		  "\n"
		  "exit status:\n"
		  "  0 ok   1 usage   2 not found   3 unauthenticated or forbidden\n"
		  "  4 rate limited or over quota   5 server unavailable   6 verification failed\n"
		  "  7 nothing pending   8 any other error (the server refused the request, I/O)\n"
		  "\n"
		  "Errors are one line on stderr: \"jamctl: CODE: message\", CODE the server's stable\n"
		  "code (rate_limited, package_not_found, ...) or jamctl's own (usage,\n"
		  "connection_failed, verification_failed, ...).  See jamctl(1).\n", to);
}

static const struct help *
find(const char *verb)
{
	for (const struct help *h = helps; h->verb; h++)
		if (strcmp(h->verb, verb) == 0)
			return h;
	return NULL;
}

int
help_exists(const char *verb)
{
	return find(verb) != NULL;
}

int
help_verb(const char *verb)
{
	const struct help *h = find(verb);

	if (!h)
	{
		help_overview(stdout);
		return JC_OK;
	}
	fputs(h->text, stdout);
	fputs("\nGlobal options (--url, --token-file, --json, --human, --retry, --timeout, -q): jamctl help.\n",
		  stdout);
	return JC_OK;
}
