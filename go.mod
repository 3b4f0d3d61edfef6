module github.com/imagestore/imagestore

go 1.26.8

require (
	github.com/appc/spec v0.8.11
	github.com/hashicorp/errwrap v1.1.0
	github.com/klauspost/compress v1.20.4
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/peterbourgon/diskv v2.0.1+incompatible
	github.com/ulikunitz/xz v0.5.15
)

require (
	github.com/coreos/go-semver v0.3.1 // indirect
	github.com/google/btree v1.1.3 // indirect
	github.com/google/gofuzz v1.2.0 // indirect
	github.com/spf13/pflag v1.1.0 // indirect
	go4.org v0.0.0-20260112195520-a5071408f32f // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
)
