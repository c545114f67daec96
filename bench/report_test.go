package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSidecarSettingsSayWhatDaprdGets(t *testing.T) {
	assert.Equal(t, []string{"GOGC=400", "GOMAXPROCS=1"}, sidecarSettings(envOf(map[string]string{"HOME": "/root"})))
	assert.Equal(t, []string{"GOGC=off", "GOMAXPROCS=1"}, sidecarSettings(envOf(map[string]string{"GOGC": "off"})))

	r := &report{SidecarEnv: sidecarSettings(envOf(nil)), Settings: map[string]string{}}
	assert.True(t, strings.Contains(r.markdown(), "every daprd with `GOGC=400 GOMAXPROCS=1`"), "the report says what ran")
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
