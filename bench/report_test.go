package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSidecarSettingsSayWhatDaprdGets(t *testing.T) {
	assert.Equal(t, []string{"GOGC=400", "GOMAXPROCS=1"}, sidecarSettings([]string{"HOME=/root"}))
	assert.Equal(t, []string{"GOGC=off", "GOMAXPROCS=1"}, sidecarSettings([]string{"GOGC=off"}))

	r := &report{SidecarEnv: sidecarSettings(nil), Settings: map[string]string{}}
	assert.True(t, strings.Contains(r.markdown(), "every daprd with `GOGC=400 GOMAXPROCS=1`"), "the report says what ran")
}
