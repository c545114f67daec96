// Command daprd is Dapr's sidecar, built from the version pinned in go.mod with the
// stable components compiled in.
package main

import "github.com/dapr/dapr/cmd/daprd/app"

func main() {
	app.Run()
}
