//go:build unix

// This file holds the remotes: Remote, rkt's *sql.Tx helpers for it, and
// the Store's methods that read and write them.

package store

import (
	"database/sql"
	"fmt"
	"time"
)

// Remote records where an image was fetched from, so that a fetcher can
// revalidate it (ETag, CacheMaxAge) instead of downloading it again. The
// store keeps the fields as given; their meaning is the fetcher's, as in
// rkt.
//
// The *sql.Tx helpers of this file (GetRemote, GetAllRemotes, WriteRemote,
// RemoveRemote), like those of aciinfo.go, are meant to run inside
// (*Store).Do, one write transaction for all the functions given to it.
type Remote struct {
	// ACIURL is the URL used to import an ACI: the row's primary key.
	ACIURL string
	// SigURL is the URL used to import an ACI verification signature.
	SigURL string
	// ETag is the HTTP entity tag the server sent with the ACI, for a
	// conditional request (If-None-Match) the next time; "" if none.
	ETag string
	// BlobKey is the key in the blob store under which the ACI has been
	// saved. Removing that image removes its remotes.
	BlobKey string
	// CacheMaxAge is the max-age of the server's Cache-Control header, in
	// seconds: the download is fresh until DownloadTime plus CacheMaxAge,
	// and a fetcher may use it without asking the server. 0 means ask.
	CacheMaxAge int
	// DownloadTime is when the ACI was downloaded (or last revalidated).
	DownloadTime time.Time
}

// NewRemote returns a Remote for an ACI URL and its signature URL.
func NewRemote(aciurl, sigurl string) *Remote {
	return &Remote{ACIURL: aciurl, SigURL: sigurl}
}

const remoteColumns = `aciurl, sigurl, etag, blobkey, cachemaxage, downloadtime`

func scanRemotes(rows *sql.Rows, err error) ([]*Remote, error) {
	if err != nil {
		return nil, wrap(err, "query remotes")
	}
	defer rows.Close()
	var out []*Remote
	for rows.Next() {
		r := &Remote{}
		if err := rows.Scan(&r.ACIURL, &r.SigURL, &r.ETag, &r.BlobKey, &r.CacheMaxAge, dbTime{&r.DownloadTime}); err != nil {
			return nil, wrap(err, "scan remote")
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "query remotes")
	}
	return out, nil
}

// GetRemote tries to retrieve a remote with the given aciURL.
// If remote doesn't exist, it returns ErrRemoteNotFound error.
func GetRemote(tx *sql.Tx, aciURL string) (*Remote, error) {
	return getRemote(tx, aciURL)
}

func getRemote(q querier, aciURL string) (*Remote, error) {
	rs, err := scanRemotes(q.QueryContext(background, `SELECT `+remoteColumns+` FROM remote WHERE aciurl = ?`, aciURL))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, ErrRemoteNotFound
	}
	return rs[0], nil
}

// GetAllRemotes returns all the remotes, ordered by ACI URL.
func GetAllRemotes(tx *sql.Tx) ([]*Remote, error) {
	return allRemotes(tx)
}

func allRemotes(q querier) ([]*Remote, error) {
	return scanRemotes(q.QueryContext(background, `SELECT `+remoteColumns+` FROM remote ORDER BY aciurl`))
}

// WriteRemote adds or updates the provided Remote. Remotes are keyed by
// ACIURL; its BlobKey is empty or a full key, which may name an image that
// is not (yet) in the store.
func WriteRemote(tx *sql.Tx, remote *Remote) error {
	if err := checkRemote(remote); err != nil {
		return err
	}
	_, err := tx.Exec(`INSERT INTO remote (`+remoteColumns+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (aciurl) DO UPDATE SET sigurl = excluded.sigurl, etag = excluded.etag,
			blobkey = excluded.blobkey, cachemaxage = excluded.cachemaxage,
			downloadtime = excluded.downloadtime`,
		remote.ACIURL, remote.SigURL, remote.ETag, remote.BlobKey, remote.CacheMaxAge, dbTime{&remote.DownloadTime})
	return wrap(err, "write remote %q", remote.ACIURL)
}

func checkRemote(remote *Remote) error {
	if remote == nil {
		return fmt.Errorf("%w: nil Remote", ErrInvalidArgument)
	}
	if remote.ACIURL == "" {
		return fmt.Errorf("%w: remote without ACIURL", ErrInvalidArgument)
	}
	if remote.BlobKey != "" {
		if err := checkFullKey(remote.BlobKey); err != nil {
			return wrap(err, "remote %q", remote.ACIURL)
		}
	}
	return nil
}

// RemoveRemote removes the remotes with the given blobKey.
func RemoveRemote(tx *sql.Tx, blobKey string) error {
	if err := checkFullKey(blobKey); err != nil {
		return err
	}
	_, err := tx.Exec(`DELETE FROM remote WHERE blobkey = ?`, blobKey)
	return wrap(err, "remove remotes of %s", blobKey)
}

// GetRemote tries to retrieve a remote with the given ACIURL. If remote
// doesn't exist, it returns ErrRemoteNotFound error.
func (s *Store) GetRemote(aciURL string) (*Remote, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return getRemote(s.db.prepared, aciURL)
}

// WriteRemote adds or updates the provided Remote.
func (s *Store) WriteRemote(remote *Remote) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := checkRemote(remote); err != nil {
		return err
	}
	return s.db.do(func(tx *sql.Tx) error { return WriteRemote(tx, remote) })
}

// GetAllRemotes returns every remote, ordered by ACI URL.
func (s *Store) GetAllRemotes() ([]*Remote, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	return allRemotes(s.db.readers)
}
