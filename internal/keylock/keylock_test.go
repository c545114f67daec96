package keylock

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLockSerialisesOverlappingKeys(t *testing.T) {
	l := New(8)
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			keys := []string{"a", "b"}
			if i%2 == 0 {
				keys = []string{"b", "a", "c"}
			}
			unlock := l.Lock(keys...)
			defer unlock()
			for _, k := range keys {
				counts[k]++ // the race detector fails this test if two callers overlap
			}
		}(i)
	}
	wg.Wait()
	assert.Equal(t, 50, counts["a"])
	assert.Equal(t, 50, counts["b"])
	assert.Equal(t, 25, counts["c"])
}
