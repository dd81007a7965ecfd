// tiles reads a log served as C2SP tlog-tiles (c2sp.org/tlog-tiles) with
// the transparency-log world's reference client code,
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, which
// nobody on the jam project wrote:
//
//	tiles [-token T] PREFIX VERIFIER_KEY ORIGIN prove
//	tiles [-token T] PREFIX VERIFIER_KEY ORIGIN consistency OLD_CHECKPOINT_FILE
//
// PREFIX is the log's URL prefix (http://...) or a folder holding a copy
// of its files.  Both commands read PREFIX/checkpoint and open it with
// note.Open under the key; its body must name ORIGIN.  Tiles are read
// through tlog.TileHashReader, which checks every tile against the signed
// tree before any hash of it is used.
//
// prove: for every entry of the tree, the entry's bytes come from its
// entry bundle (tile/entries/...), and tlog.ProveRecord and
// tlog.CheckRecord prove SHA-256(0x00 || entry) at its index in the tree.
// consistency: the old checkpoint, opened under the same key, is proved a
// prefix of the current one with tlog.ProveTree and tlog.CheckTree, and
// tlog.TreeHash of its size recomputed from the current tree's tiles.
//
// Prints "ok ..." and exits 0, or prints why not and exits 1.  Only the
// checkpoint body and the bundles' length prefixes are parsed here; every
// check is the library's.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The tile height of c2sp.org/tlog-tiles: 256 hashes a tile.
const height = 8

var token = flag.String("token", "", "a bearer token to present")

func fail(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

// fetch reads one resource under the prefix, by HTTP or from a folder.
func fetch(prefix, path string) ([]byte, error) {
	if !strings.HasPrefix(prefix, "http://") && !strings.HasPrefix(prefix, "https://") {
		return os.ReadFile(filepath.Join(prefix, filepath.FromSlash(path)))
	}
	req, err := http.NewRequest("GET", strings.TrimSuffix(prefix, "/")+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, nil
}

// tlogTilesPath is Go's tile path without its height element, which
// c2sp.org/tlog-tiles leaves out (its height is always 8).
func tlogTilesPath(t tlog.Tile) string {
	return strings.Replace(t.Path(), fmt.Sprintf("tile/%d/", height), "tile/", 1)
}

// tileReader is tlog's TileReader over the prefix, keeping what it read.
type tileReader struct {
	prefix string
	cache  map[string][]byte
	reads  int
}

func (r *tileReader) Height() int { return height }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		p := tlogTilesPath(t)
		if data, ok := r.cache[p]; ok {
			out[i] = data
			continue
		}
		data, err := fetch(r.prefix, p)
		if err != nil {
			return nil, err
		}
		r.reads++
		r.cache[p] = data
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// checkpoint opens a signed checkpoint and returns its tree.
func checkpoint(text []byte, verifier note.Verifier, origin string) tlog.Tree {
	n, err := note.Open(text, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != origin {
		fail("checkpoint origin is not %q", origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad checkpoint size %q", lines[1])
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail("bad checkpoint root %q", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], raw)
	return tree
}

// entries reads the entry bundles of a tree of size n, in order.
func entries(prefix string, n int64) [][]byte {
	var all [][]byte
	for k := int64(0); k*256 < n; k++ {
		t := tlog.Tile{H: height, L: 0, N: k, W: 256}
		if rest := n - k*256; rest < 256 {
			t.W = int(rest)
		}
		p := strings.Replace(tlogTilesPath(t), "tile/0/", "tile/entries/", 1)
		bundle, err := fetch(prefix, p)
		if err != nil {
			fail("%v", err)
		}
		count := 0
		for len(bundle) > 0 {
			if len(bundle) < 2 {
				fail("%s: a length prefix is cut short", p)
			}
			size := int(bundle[0])<<8 | int(bundle[1])
			if len(bundle) < 2+size {
				fail("%s: an entry is cut short", p)
			}
			all = append(all, append([]byte(nil), bundle[2:2+size]...))
			bundle = bundle[2+size:]
			count++
		}
		if count != t.W {
			fail("%s holds %d entries, not %d", p, count, t.W)
		}
	}
	return all
}

func main() {
	flag.Parse()
	args := flag.Args()
	if len(args) < 4 {
		fail("usage: tiles [-token T] PREFIX VERIFIER_KEY ORIGIN prove | consistency OLD_CHECKPOINT_FILE")
	}
	prefix, origin := args[0], args[2]
	verifier, err := note.NewVerifier(args[1])
	if err != nil {
		fail("bad verifier key: %v", err)
	}
	text, err := fetch(prefix, "checkpoint")
	if err != nil {
		fail("%v", err)
	}
	tree := checkpoint(text, verifier, origin)
	reader := &tileReader{prefix: prefix, cache: map[string][]byte{}}
	hashes := tlog.TileHashReader(tree, reader)

	switch args[3] {
	case "prove":
		all := entries(prefix, tree.N)
		for i, e := range all {
			proof, err := tlog.ProveRecord(tree.N, int64(i), hashes)
			if err != nil {
				fail("entry %d: %v", i, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, int64(i), tlog.RecordHash(e)); err != nil {
				fail("entry %d: %v", i, err)
			}
		}
		fmt.Printf("ok %d entries proved in a tree of %d, %d tiles read\n", len(all), tree.N, reader.reads)
	case "consistency":
		if len(args) != 5 {
			fail("consistency needs the old checkpoint")
		}
		oldText, err := os.ReadFile(args[4])
		if err != nil {
			fail("%v", err)
		}
		old := checkpoint(oldText, verifier, origin)
		if old.N > tree.N {
			fail("the old tree (%d) is larger than the current one (%d)", old.N, tree.N)
		}
		proof, err := tlog.ProveTree(tree.N, old.N, hashes)
		if err != nil {
			fail("consistency proof: %v", err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
			fail("consistency: %v", err)
		}
		h, err := tlog.TreeHash(old.N, hashes)
		if err != nil {
			fail("old tree hash: %v", err)
		}
		if h != old.Hash {
			fail("the old tree hash recomputed from the tiles differs")
		}
		fmt.Printf("ok %d is consistent with %d, %d tiles read\n", old.N, tree.N, reader.reads)
	default:
		fail("unknown command %q", args[3])
	}
}
