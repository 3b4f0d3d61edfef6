// Command rktoracle asks rkt v1.30.0's own image store and tree store
// (github.com/rkt/rkt/store/imagestore and store/treestore) what they do,
// for the tests of package treestore (see rkt_linux_test.go): tree IDs, tree
// hashes, sizes, rendered trees, and whether rkt's Check accepts a tree.
//
// It is not part of the module (the go tool ignores testdata/): the tests
// build it in GOPATH mode inside the rkt sources of
// ../shared/testdata/rkt-v1.30.0-src/, as their README describes. It only
// calls rkt's exported API. It must run as root: rkt's tar extraction
// re-executes this binary as "extracttar" and chroots into the tree.
//
// Usage (every command prints one JSON object on stdout):
//
//	rktoracle import STOREDIR [-latest] FILE...   write images (keys)
//	rktoracle render [-rebuild] STOREDIR [-latest] FILE...
//	                                               write images, render the last
//	                                               (id, hash, renderHash: what
//	                                               Render returned, size,
//	                                               treeStoreSize, path, seconds)
//	rktoracle renderkey [-rebuild] STOREDIR KEY    render an image in the store
//	rktoracle getid STOREDIR KEY                   treestore GetID
//	rktoracle check STOREDIR ID                    treestore Check (reads tree/ID)
//	rktoracle hash STOREDIR ID                     treestore Hash
//	rktoracle size STOREDIR ID                     treestore Size
//	rktoracle ids STOREDIR                         GetIDs with IsRendered
//
// "-latest" before a FILE writes it with ACIFetchInfo{Latest: true}.
// Exit status: 0 with the result, 1 when rkt returned an error (printed as
// {"error": "..."}), 2 for a usage error.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/errwrap"
	"github.com/rkt/rkt/pkg/multicall"
	"github.com/rkt/rkt/store/imagestore"
	"github.com/rkt/rkt/store/treestore"
)

type result struct {
	Keys          []string        `json:"keys,omitempty"`
	Key           string          `json:"key,omitempty"`
	ID            string          `json:"id,omitempty"`
	Hash          string          `json:"hash,omitempty"`
	RenderHash    *string         `json:"renderHash,omitempty"`
	Size          *int64          `json:"size,omitempty"`
	TreeStoreSize *int64          `json:"treeStoreSize,omitempty"`
	Path          string          `json:"path,omitempty"`
	RootFS        string          `json:"rootfs,omitempty"`
	Seconds       *float64        `json:"seconds,omitempty"`
	IDs           []string        `json:"ids,omitempty"`
	Rendered      map[string]bool `json:"rendered,omitempty"`
	Error         string          `json:"error,omitempty"`
}

type usageError string

func (e usageError) Error() string { return string(e) }

const usage = `usage: rktoracle import STOREDIR [-latest] FILE...
       rktoracle render [-rebuild] STOREDIR [-latest] FILE...
       rktoracle renderkey [-rebuild] STOREDIR KEY
       rktoracle getid|check|hash|size STOREDIR KEY|ID
       rktoracle ids STOREDIR`

func main() {
	// rkt's pkg/tar runs its extraction as this binary named "extracttar".
	multicall.MaybeExec()

	res, err := run(os.Args[1:])
	code := 0
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "rktoracle: %v\n%s\n", err, usage)
			os.Exit(2)
		}
		res = &result{Error: errorChain(err)}
		code = 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "rktoracle:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

// errorChain is the message of err with the errors it wraps: rkt's
// errwrap errors print only the outermost.
func errorChain(err error) string {
	var msgs []string
	errwrap.Walk(err, func(e error) {
		if _, wrapper := e.(errwrap.Wrapper); !wrapper {
			msgs = append(msgs, e.Error())
		}
	})
	if len(msgs) == 0 {
		return err.Error()
	}
	return strings.Join(msgs, ": ")
}

func run(args []string) (*result, error) {
	if len(args) < 2 {
		return nil, usageError("missing command or STOREDIR")
	}
	cmd, args := args[0], args[1:]
	rebuild := false
	if (cmd == "render" || cmd == "renderkey") && args[0] == "-rebuild" {
		rebuild = true
		args = args[1:]
		if len(args) == 0 {
			return nil, usageError("missing STOREDIR")
		}
	}
	dir, args := args[0], args[1:]
	switch cmd {
	case "import", "render":
		if len(args) == 0 {
			return nil, usageError("no FILE")
		}
	case "renderkey", "getid", "check", "hash", "size":
		if len(args) != 1 {
			return nil, usageError(cmd + " takes STOREDIR and one argument")
		}
	case "ids":
		if len(args) != 0 {
			return nil, usageError("ids takes STOREDIR only")
		}
	default:
		return nil, usageError("unknown command " + cmd)
	}

	if cmd == "check" || cmd == "hash" || cmd == "size" || cmd == "ids" {
		// These read the tree directory only: no image store is opened,
		// so they work on a store that is not rkt's (our trees).
		ts, err := treestore.NewStore(dir, nil)
		if err != nil {
			return nil, err
		}
		return treeOnly(cmd, ts, args)
	}

	s, err := imagestore.NewStore(dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ts, err := treestore.NewStore(dir, s)
	if err != nil {
		return nil, err
	}

	res := &result{}
	key := ""
	switch cmd {
	case "import", "render":
		latest := false
		for _, a := range args {
			if a == "-latest" {
				latest = true
				continue
			}
			k, err := writeACI(s, a, latest)
			if err != nil {
				return nil, err
			}
			res.Keys = append(res.Keys, k)
			latest = false
		}
		if latest {
			return nil, usageError("-latest without a FILE")
		}
		if cmd == "import" {
			return res, nil
		}
		key = res.Keys[len(res.Keys)-1]
	case "renderkey":
		key = args[0]
	case "getid":
		id, err := ts.GetID(args[0])
		if err != nil {
			return nil, err
		}
		res.Key, res.ID = args[0], id
		return res, nil
	}

	start := time.Now()
	id, hash, err := ts.Render(key, rebuild)
	secs := time.Since(start).Seconds()
	if err != nil {
		return nil, err
	}
	// Render returns no hash for a tree rendered already: renderHash is
	// what it returned, hash the tree's hash (Hash) in any case.
	res.Key, res.ID, res.RenderHash, res.Seconds = key, id, &hash, &secs
	if res.Hash, err = ts.Hash(id); err != nil {
		return nil, err
	}
	size, err := ts.Size(id)
	if err != nil {
		return nil, err
	}
	res.Size = &size
	info, err := s.GetACIInfoWithBlobKey(key)
	if err != nil {
		return nil, err
	}
	res.TreeStoreSize = &info.TreeStoreSize
	res.Path, res.RootFS = ts.GetPath(id), ts.GetRootFS(id)
	return res, nil
}

func writeACI(s *imagestore.Store, name string, latest bool) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	k, err := s.WriteACI(f, imagestore.ACIFetchInfo{Latest: latest})
	if err != nil {
		return "", fmt.Errorf("WriteACI %s: %v", name, err)
	}
	return k, nil
}

func treeOnly(cmd string, ts *treestore.Store, args []string) (*result, error) {
	res := &result{}
	switch cmd {
	case "check":
		h, err := ts.Check(args[0])
		if err != nil {
			return nil, err
		}
		res.ID, res.Hash = args[0], h
	case "hash":
		h, err := ts.Hash(args[0])
		if err != nil {
			return nil, err
		}
		res.ID, res.Hash = args[0], h
	case "size":
		sz, err := ts.Size(args[0])
		if err != nil {
			return nil, err
		}
		res.ID, res.Size = args[0], &sz
	case "ids":
		ids, err := ts.GetIDs()
		if err != nil {
			return nil, err
		}
		res.IDs = ids
		res.Rendered = map[string]bool{}
		for _, id := range ids {
			r, err := ts.IsRendered(id)
			if err != nil {
				return nil, err
			}
			res.Rendered[id] = r
		}
	}
	return res, nil
}
