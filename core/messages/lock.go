package messages

import (
	"hash/fnv"
	"sync"
)

// docLocks serialises this process's writes to one document on the MongoDB
// engine (mongoBackend); the SQLite engine has one writer and needs none.
//
// On MongoDB a conditional update is atomic, but the embedded engine
// (FerretDB v1 on SQLite) runs an update as query, modify in Go, then an
// unconditional write by _id: two concurrent conditional updates of one
// document can both match and the later write silently undoes the earlier.
// Every write to a message goes through this package, so striping a lock by
// _id restores the guarantee within a daemon, which is all the embedded
// engine serves; on MongoDB the lock is merely redundant.
type docLocks struct {
	stripes [64]sync.Mutex
}

func (l *docLocks) lock(id string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}
