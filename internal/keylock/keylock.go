// Package keylock serialises work on the same key inside one process.
//
// The Redis state store runs a Dapr state transaction as a MULTI/EXEC of one Lua
// script per operation, so an ETag mismatch in one operation does not undo the
// others. A service that changes several keys in one transaction therefore takes
// the keys' locks first: within one instance no transaction can then lose an ETag
// race, and the ETags stay as the guard against other instances.
package keylock

import (
	"hash/maphash"
	"sort"
	"sync"
)

// Locks is a fixed set of mutexes that keys hash onto. The zero value is not
// usable; call New.
type Locks struct {
	seed    maphash.Seed
	stripes []sync.Mutex
}

// New returns a set of n stripes.
func New(n int) *Locks {
	if n < 1 {
		n = 1
	}
	return &Locks{seed: maphash.MakeSeed(), stripes: make([]sync.Mutex, n)}
}

// Lock locks every stripe the keys hash onto, in one global order so that two
// callers with overlapping keys cannot deadlock, and returns the unlock function.
func (l *Locks) Lock(keys ...string) (unlock func()) {
	idx := make([]int, 0, len(keys))
	seen := make(map[int]bool, len(keys))
	for _, k := range keys {
		i := int(maphash.String(l.seed, k) % uint64(len(l.stripes)))
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			l.stripes[idx[j]].Unlock()
		}
	}
}
