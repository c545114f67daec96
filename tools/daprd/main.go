// Command daprd is Dapr's sidecar, built from the version pinned in go.mod with the
// stable components compiled in, plus the SQLite name resolver.
//
// The SQLite resolver (in Dapr's release binaries, but not among the stable
// components) lets every system the runner starts keep its own registry of app
// instances in a file of its own, so that two systems on one machine (a `make
// run` and a `make test`) never resolve each other's apps, as they would through
// machine-wide mDNS.
package main

import (
	"github.com/dapr/components-contrib/nameresolution/sqlite"
	"github.com/dapr/dapr/cmd/daprd/app"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
)

func main() {
	nrLoader.DefaultRegistry.RegisterComponent(sqlite.NewResolver, "sqlite")
	app.Run()
}
