// tlogproof checks a C2SP tlog-proof (c2sp.org/tlog-proof@v1) with the
// transparency-log world's reference code, golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, which nobody on the jam project wrote:
//
//	tlogproof VERIFIER_KEY ORIGIN PROOF_FILE LEAF_FILE
//
// It prints "ok" and exits 0 when the checkpoint is signed by the key, names
// the origin, and the inclusion path leads from SHA-256(0x00 || leaf) at the
// proof's index to the checkpoint's root; otherwise it prints why and exits 1.
// Only the proof's text layout is parsed here; every check is the library's.
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 5 {
		fail("usage: tlogproof VERIFIER_KEY ORIGIN PROOF_FILE LEAF_FILE")
	}
	proofText, err := os.ReadFile(os.Args[3])
	if err != nil {
		fail("read proof: %v", err)
	}
	leaf, err := os.ReadFile(os.Args[4])
	if err != nil {
		fail("read leaf: %v", err)
	}

	// The proof: header, "index N", hashes, a blank line, the checkpoint.
	head, checkpoint, found := bytes.Cut(proofText, []byte("\n\n"))
	if !found {
		fail("no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 2 || lines[0] != "c2sp.org/tlog-proof@v1" {
		fail("not a c2sp.org/tlog-proof@v1")
	}
	if !strings.HasPrefix(lines[1], "index ") {
		fail("no index line")
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil || index < 0 || strconv.FormatInt(index, 10) != strings.TrimPrefix(lines[1], "index ") {
		fail("bad index %q", lines[1])
	}
	var path tlog.RecordProof
	for _, l := range lines[2:] {
		raw, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(raw) != tlog.HashSize {
			fail("bad proof hash %q", l)
		}
		var h tlog.Hash
		copy(h[:], raw)
		path = append(path, h)
	}

	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("bad verifier key: %v", err)
	}
	n, err := note.Open(checkpoint, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	body := strings.Split(n.Text, "\n")
	if len(body) < 4 || body[0] != os.Args[2] {
		fail("checkpoint origin is not %q", os.Args[2])
	}
	size, err := strconv.ParseInt(body[1], 10, 64)
	if err != nil || size <= index {
		fail("bad checkpoint size %q", body[1])
	}
	rawRoot, err := base64.StdEncoding.Strict().DecodeString(body[2])
	if err != nil || len(rawRoot) != tlog.HashSize {
		fail("bad checkpoint root %q", body[2])
	}
	var root tlog.Hash
	copy(root[:], rawRoot)

	if err := tlog.CheckRecord(path, size, root, index, tlog.RecordHash(leaf)); err != nil {
		fail("inclusion: %v", err)
	}
	fmt.Println("ok")
}
