package ids

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, id, wantErr string
	}{
		{"letters and digits", "apple42", ""},
		{"punctuation allowed", "A.b_c-1", ""},
		{"longest", strings.Repeat("x", MaxLen), ""},
		{"empty", "", "order id is empty"},
		{"too long", strings.Repeat("x", MaxLen+1), "order id is 65 characters long; the limit is 64"},
		{"slash", "a/b", `order id "a/b" may only hold letters, digits, '.', '_' and '-'`},
		{"space", "a b", "may only hold"},
		{"non-ascii", "café", "may only hold"},
		{"dapr key separator", "a||b", "may only hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("order id", tt.id)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}
