// Package ids holds the one rule for the identifiers daprshop takes from clients and
// events (product, customer and order ids), so that every service accepts the same
// ids and every id is safe to put in a URL path and a state key.
package ids

import "fmt"

// MaxLen is the longest id accepted, in bytes.
const MaxLen = 64

// Check returns nil when id is 1 to MaxLen characters, each an ASCII letter, a
// digit, '.', '_' or '-'. Otherwise it returns an error, lowercase and fit to show
// a client, that starts with what (for example "product id").
func Check(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(id) > MaxLen {
		return fmt.Errorf("%s is %d characters long; the limit is %d", what, len(id), MaxLen)
	}
	for i := 0; i < len(id); i++ {
		if !allowed(id[i]) {
			return fmt.Errorf("%s %q may only hold letters, digits, '.', '_' and '-'", what, id)
		}
	}
	return nil
}

func allowed(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}
