// The power-cut child and the model that checks a store after a cut.

package store

import (
	"bufio"
	"bytes"
	"crypto/sha512"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The power-cut trials (powercut_linux_test.go) run childPowerCut on a
// store through the test filesystem and cut the power under it. The child
// logs each call when it starts and when it is acknowledged to a log
// outside the mount, fsynced line by line, so the parent knows exactly
// what was acknowledged before the cut.

// childPowerCut opens the store and runs a seeded mix of calls on it until
// it is killed or has made IMAGESTORE_OPS calls.
func childPowerCut(dir string) error {
	armFailpoint()
	seed, _ := strconv.ParseInt(os.Getenv("IMAGESTORE_SEED"), 10, 64)
	nops, _ := strconv.Atoi(os.Getenv("IMAGESTORE_OPS"))
	logf, err := os.OpenFile(os.Getenv("IMAGESTORE_OPLOG"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	say := func(format string, args ...any) error {
		if _, err := fmt.Fprintf(logf, format+"\n", args...); err != nil {
			return err
		}
		return logf.Sync()
	}
	rnd := rand.New(rand.NewSource(seed))

	say("start open")
	s, err := NewStore(dir)
	if err != nil {
		return err
	}
	defer s.Close()
	say("ack open")
	var written [][]byte // this child's images, for rewrites
	for i := 0; i < nops; i++ {
		ais, err := s.GetAllACIInfos(nil, true)
		if err != nil {
			return err
		}
		var some string // a stored image, if any
		if len(ais) > 0 {
			some = ais[rnd.Intn(len(ais))].BlobKey
		}
		op := rnd.Intn(100)
		switch {
		case some != "" && (len(ais) >= 6 || op < 15):
			say("start remove %s", some)
			if err := s.RemoveACI(some); err != nil {
				return err
			}
			say("ack remove %s", some)
		case op < 50 && rnd.Intn(4) == 0:
			// Three new images as one Batch: after a cut, all or none.
			b := s.NewBatch()
			var keys []string
			for j := 0; j < 3; j++ {
				img, err := powerCutImage(seed, 1000*(i+1)+j, false)
				if err != nil {
					return err
				}
				if _, err := b.Add(bytes.NewReader(img), ACIFetchInfo{}); err != nil {
					return err
				}
				keys = append(keys, keyOf(img))
			}
			say("start batch %s", strings.Join(keys, ","))
			if err := b.Commit(); err != nil {
				return err
			}
			for _, key := range keys {
				say("ack write %s", key)
			}
		case op < 50 || some == "":
			img, err := powerCutImage(seed, i, rnd.Intn(8) == 0)
			if err != nil {
				return err
			}
			key := "-"
			if len(written) > 0 && rnd.Intn(6) == 0 {
				img = written[rnd.Intn(len(written))] // the same image again
				key = keyOf(img)
			}
			written = append(written, img)
			if rnd.Intn(2) == 0 {
				if img, err = gzipData(img); err != nil {
					return err
				}
			}
			say("start write %s", key)
			key, err = s.WriteACI(bytes.NewReader(img), ACIFetchInfo{Latest: rnd.Intn(2) == 0})
			if err != nil {
				return err
			}
			say("ack write %s", key)
		case op < 60:
			u := fmt.Sprintf("https://example.com/%d/%d", seed, i)
			say("start remote %s %s", u, some)
			if err := s.WriteRemote(&Remote{ACIURL: u, BlobKey: some, ETag: u}); err != nil {
				return err
			}
			say("ack remote %s %s", u, some)
		case op < 70:
			u := fmt.Sprintf("https://example.com/do/%d/%d", seed, i)
			say("start remote %s %s", u, some)
			err := s.Do(func(tx *sql.Tx) error {
				return WriteRemote(tx, &Remote{ACIURL: u, BlobKey: some, ETag: u})
			})
			if err != nil {
				return err
			}
			say("ack remote %s %s", u, some)
		case op < 85:
			n := rnd.Int63n(1 << 40)
			say("start tree %s %d", some, n)
			if err := s.UpdateTreeStoreSize(some, n); err != nil {
				return err
			}
			say("ack tree %s %d", some, n)
		default:
			say("start read %s", some)
			rc, err := s.ReadStream(some)
			if err != nil {
				return err
			}
			h := sha512.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil {
				return err
			}
			if got := hashToKey(h); got != some {
				return fmt.Errorf("image %s reads back as %s", some, got)
			}
			say("ack read %s", some)
		}
	}
	return nil
}

// powerCutImage is the i-th image of the child seeded seed: tiny, or with
// 3 MiB of random content.
func powerCutImage(seed int64, i int, big bool) ([]byte, error) {
	body := []byte(fmt.Sprintf("%d/%d", seed, i))
	if big {
		body = make([]byte, 3<<20)
		rand.New(rand.NewSource(seed*1000 + int64(i))).Read(body)
	}
	return tarBytes(
		tarEntry{"manifest", manifestJSON("example.com/powercut", fmt.Sprintf("seed=%d", seed), fmt.Sprintf("i=%d", i))},
		tarEntry{"rootfs/", nil},
		tarEntry{"rootfs/data", body},
	)
}

// cutModel is what the parent knows from the children's logs: what must
// be in the store after a cut, and what may or may not be.
type cutModel struct {
	batch   []string                  // a Batch whose commit was under way at the cut
	alive   map[string]bool           // acknowledged written, not removed since
	removed map[string]bool           // acknowledged removed, not written since
	maybe   map[string]bool           // written or removed at the cut: either
	remotes map[string]string         // acknowledged remote URL → its blob key
	trees   map[string]map[int64]bool // key → the tree store sizes it may have
	acks    int
	inOpen  int // cuts that fell before NewStore returned
}

func newCutModel() *cutModel {
	return &cutModel{alive: map[string]bool{}, removed: map[string]bool{}, maybe: map[string]bool{},
		remotes: map[string]string{}, trees: map[string]map[int64]bool{}}
}

// read applies a child's log to the model.
func (m *cutModel) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	opening := false
	defer func() {
		if opening {
			m.inOpen++
		}
	}()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[1] == "open" {
			opening = f[0] == "start"
		}
		if len(f) < 2 {
			continue // a line torn by the kill
		}
		ack := f[0] == "ack"
		if ack {
			m.acks++
		}
		if f[1] != "batch" {
			m.batch = nil // the batch's commit returned: its images are acknowledged
		}
		switch arg := f[2:]; f[1] {
		case "batch":
			if len(arg) == 1 && !ack {
				m.batch = strings.Split(arg[0], ",")
				for _, k := range m.batch {
					m.maybe[k] = true
				}
			}
		case "write":
			if len(arg) == 0 {
				continue
			}
			switch {
			case ack:
				m.alive[arg[0]] = true
				delete(m.removed, arg[0])
				delete(m.maybe, arg[0])
			case arg[0] != "-" && !m.alive[arg[0]]:
				m.maybe[arg[0]] = true
			}
		case "remove":
			if len(arg) == 0 {
				continue
			}
			if ack {
				m.gone(arg[0])
				m.removed[arg[0]] = true
			} else {
				m.maybe[arg[0]] = true
			}
		case "remote":
			if ack && len(arg) == 2 {
				m.remotes[arg[0]] = arg[1]
			}
		case "tree":
			if len(arg) < 2 {
				continue
			}
			n, _ := strconv.ParseInt(arg[1], 10, 64)
			if ack {
				m.trees[arg[0]] = map[int64]bool{n: true}
			} else {
				if m.trees[arg[0]] == nil {
					m.trees[arg[0]] = map[int64]bool{0: true}
				}
				m.trees[arg[0]][n] = true
			}
		}
	}
}

// gone forgets key and what went with it.
func (m *cutModel) gone(key string) {
	delete(m.alive, key)
	delete(m.maybe, key)
	delete(m.trees, key)
	for u, k := range m.remotes {
		if k == key {
			delete(m.remotes, u)
		}
	}
}

// check opens the store at dir as a reboot would and checks it against the
// model, which learns how the calls in flight ended. It returns every
// finding; problems Verify reported are also returned apart.
func (m *cutModel) check(dir string) (findings []string, problems []Problem) {
	bad := func(format string, args ...any) { findings = append(findings, fmt.Sprintf(format, args...)) }
	s, err := NewStore(dir)
	if err != nil {
		bad("NewStore: %v", err)
		return findings, nil
	}
	defer s.Close()
	// Verify first: right after the recovery of NewStore.
	v, err := s.Verify()
	if err != nil {
		bad("Verify: %v", err)
	} else if !v.OK() {
		problems = v.Problems
		for _, p := range v.Problems {
			bad("Verify: %s", p)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		bad("tmp/ holds %v (%v)", names, err)
	}
	found := 0
	for _, key := range m.batch {
		if s.HasFullKey(key) {
			found++
		}
	}
	if found != 0 && found != len(m.batch) {
		bad("%d of the %d images of a batch cut in its commit are stored", found, len(m.batch))
	}
	m.batch = nil
	for key := range m.maybe {
		if s.HasFullKey(key) {
			m.alive[key] = true
			delete(m.removed, key)
		} else {
			m.gone(key)
			m.removed[key] = true
		}
	}
	m.maybe = map[string]bool{}
	ais, err := s.GetAllACIInfos(nil, true)
	if err != nil {
		bad("list: %v", err)
		return findings, problems
	}
	rows := map[string]*ACIInfo{}
	for _, ai := range ais {
		rows[ai.BlobKey] = ai
		if m.removed[ai.BlobKey] {
			bad("removed image %s is back", ai.BlobKey)
		}
		if !m.alive[ai.BlobKey] {
			m.alive[ai.BlobKey] = true // written, not yet acknowledged: it must be whole too
		}
	}
	keys := make([]string, 0, len(m.alive))
	for key := range m.alive {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if rows[key] == nil {
			bad("acknowledged image %s lost: no row", key)
			continue
		}
		if err := readsBack(s, key); err != nil {
			bad("acknowledged image %s: %v", key, err)
		}
		if _, err := s.GetImageManifest(key); err != nil {
			bad("acknowledged image %s: manifest: %v", key, err)
		}
		if ok := m.trees[key]; ok != nil {
			got := rows[key].TreeStoreSize
			if !ok[got] {
				bad("image %s: tree store size %d, want one of %v", key, got, ok)
			}
			m.trees[key] = map[int64]bool{got: true}
		}
	}
	for u, key := range m.remotes {
		r, err := s.GetRemote(u)
		if err != nil || r.BlobKey != key {
			bad("acknowledged remote %s lost (%v)", u, err)
		}
	}
	return findings, problems
}

// readsBack checks that key's image reads back whole under its key.
func readsBack(s *Store, key string) error {
	rc, err := s.ReadStream(key)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha512.New()
	if _, err := io.Copy(h, rc); err != nil {
		return err
	}
	if got := hashToKey(h); got != key {
		return fmt.Errorf("reads back as %s", got)
	}
	return nil
}
