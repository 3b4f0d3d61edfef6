// This file holds signatures: the keyring of trusted keys and the check of
// an ACI's detached OpenPGP signature against it.

package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// maxSignatureSize bounds a signature read into memory; a detached
// signature is a few hundred bytes.
const maxSignatureSize = 1 << 20

// Keyring is a set of OpenPGP public keys trusted to sign ACIs. Every key
// is trusted for every image name (rkt's keystore kept keys per name
// prefix; a keyring file has no such notion).
type Keyring struct {
	entities openpgp.EntityList
}

// ReadKeyring reads public keys, ASCII-armored (gpg --export --armor) or
// binary (gpg --export); several armored blocks may follow each other.
func ReadKeyring(r io.Reader) (*Keyring, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	var el openpgp.EntityList
	if isArmored(data) {
		// ReadArmoredKeyRing reads one armored block: read them all.
		for rest := data; isArmored(rest); {
			i := bytes.Index(rest, []byte("-----END PGP PUBLIC KEY BLOCK-----"))
			if i < 0 {
				return nil, fmt.Errorf("read keyring: an armored block without its END line")
			}
			end := i + len("-----END PGP PUBLIC KEY BLOCK-----")
			block, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(rest[:end]))
			if err != nil {
				return nil, fmt.Errorf("read keyring: %w", err)
			}
			el = append(el, block...)
			rest = rest[end:]
		}
	} else {
		if el, err = openpgp.ReadKeyRing(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("read keyring: %w", err)
		}
	}
	if len(el) == 0 {
		return nil, errors.New("read keyring: no keys in it")
	}
	return &Keyring{entities: el}, nil
}

// LoadKeyring reads the keyring file at path (see ReadKeyring).
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	k, err := ReadKeyring(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.entities) }

func isArmored(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN PGP"))
}

// check verifies sig, armored or binary, as a detached signature of
// signed by a key of the keyring, and names the signer.
func (k *Keyring) check(signed io.Reader, sig []byte) (string, error) {
	var (
		signer *openpgp.Entity
		err    error
	)
	if isArmored(sig) {
		signer, err = openpgp.CheckArmoredDetachedSignature(k.entities, signed, bytes.NewReader(sig), nil)
	} else {
		signer, err = openpgp.CheckDetachedSignature(k.entities, signed, bytes.NewReader(sig), nil)
	}
	if err != nil {
		return "", err
	}
	return describeKey(signer), nil
}

// describeKey names a key by its identities and fingerprint.
func describeKey(e *openpgp.Entity) string {
	var ids []string
	for id := range e.Identities {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fp := ""
	if e.PrimaryKey != nil {
		fp = fmt.Sprintf(" (key %X)", e.PrimaryKey.Fingerprint)
	}
	return strings.Join(ids, ", ") + fp
}

// verifySignature downloads the detached signature at ascURL and checks
// it against the ACI in file, which is left at its start.
func (f *Fetcher) verifySignature(ctx context.Context, file *os.File, ascURL string) (string, error) {
	sig, err := f.getSmall(ctx, ascURL, maxSignatureSize)
	if err != nil {
		return "", fmt.Errorf("%w: signature: %w", ErrSignature, err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	signer, err := f.opts.Keyring.check(file, sig)
	if _, serr := file.Seek(0, io.SeekStart); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return "", fmt.Errorf("%w: %s does not verify against the keyring: %v", ErrSignature, ascURL, err)
	}
	return signer, nil
}

// getSmall GETs a small document (a signature) into memory.
func (f *Fetcher) getSmall(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	if err := f.checkURL(rawURL); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	res, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: %s", ErrHTTPStatus, rawURL, res.Status)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("get %s: more than %d bytes", rawURL, limit)
	}
	return data, nil
}
