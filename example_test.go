// The package example, run as a test.

package store_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/appc/spec/schema/types"
	store "github.com/imagestore/imagestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "imagestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.NewStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Import a gzip-compressed image; the key is that of the plain tar.
	f, err := os.Open("testdata/hello.aci.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	key, err := s.WriteACI(f, store.ACIFetchInfo{Latest: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("key:", key)

	// Find it again by name and labels, as a runtime would.
	found, err := s.GetACI("example.com/hello", types.Labels{{Name: "version", Value: "1.0.0"}})
	if err != nil {
		log.Fatal(err)
	}
	im, err := s.GetImageManifest(found)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("name:", im.Name)

	// Read the uncompressed tar back.
	rc, err := s.ReadStream(key[:19]) // an unambiguous prefix is enough
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bytes:", n)
	// Output:
	// key: sha512-1c9abf1ff224a84ca981cdc055b964f83e457e08bd4a3a95006f7de38c5916d2
	// name: example.com/hello
	// bytes: 10240
}

// A Batch stores several images with one commit: all of them, or none.
func ExampleBatch() {
	dir, err := os.MkdirTemp("", "imagestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.NewStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	b := s.NewBatch()
	defer b.Discard() // a no-op once committed
	for _, name := range []string{"testdata/hello.aci", "testdata/hello.aci.xz"} {
		f, err := os.Open(name)
		if err != nil {
			log.Fatal(err)
		}
		key, err := b.Add(f, store.ACIFetchInfo{})
		f.Close()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("added:", key[:19])
	}
	infos, _ := s.GetAllACIInfos(nil, false)
	fmt.Println("stored before Commit:", len(infos))
	if err := b.Commit(); err != nil {
		log.Fatal(err)
	}
	infos, _ = s.GetAllACIInfos(nil, false)
	fmt.Println("stored after Commit:", len(infos))
	// Output:
	// added: sha512-1c9abf1ff224
	// added: sha512-1c9abf1ff224
	// stored before Commit: 0
	// stored after Commit: 1
}
