//go:build daprshopcomponents

// The components daprd is built with by default (`make daprd`, which sets the
// daprshopcomponents tag): those daprshop's component sets use, with their
// aliases, plus SQLite and in-memory for trying things out. Dapr's other files
// in this folder register each component under the stablecomponents or
// allcomponents tag, which `make daprd DAPRD_COMPONENTS=stable` sets instead.
// zz_notag.go.patch keeps Dapr's panic for a build with none of the three tags.
package components

import (
	"github.com/dapr/components-contrib/nameresolution/mdns"
	pubsubinmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	mqtt "github.com/dapr/components-contrib/pubsub/mqtt3"
	"github.com/dapr/components-contrib/pubsub/rabbitmq"
	pubsubredis "github.com/dapr/components-contrib/pubsub/redis"
	stateinmemory "github.com/dapr/components-contrib/state/in-memory"
	"github.com/dapr/components-contrib/state/mysql"
	pgv1 "github.com/dapr/components-contrib/state/postgresql/v1"
	pgv2 "github.com/dapr/components-contrib/state/postgresql/v2"
	stateredis "github.com/dapr/components-contrib/state/redis"
	"github.com/dapr/components-contrib/state/sqlite"
	"github.com/dapr/dapr/pkg/components"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubLoader "github.com/dapr/dapr/pkg/components/pubsub"
	stateLoader "github.com/dapr/dapr/pkg/components/state"
)

func init() {
	stateLoader.DefaultRegistry.RegisterComponent(stateredis.NewRedisStateStore, "redis")
	stateLoader.DefaultRegistry.RegisterComponent(mysql.NewMySQLStateStore, "mysql")
	stateLoader.DefaultRegistry.RegisterComponent(sqlite.NewSQLiteStateStore, "sqlite", "sqlite3")
	stateLoader.DefaultRegistry.RegisterComponent(stateinmemory.NewInMemoryStateStore, "in-memory")
	// As Dapr's state_postgres.go: v1 unless the component asks for v2.
	postgres := components.Versioning{
		Preferred: components.VersionConstructor{Version: "v2", Constructor: pgv2.NewPostgreSQLStateStore},
		Others:    []components.VersionConstructor{{Version: "v1", Constructor: pgv1.NewPostgreSQLStateStore}},
		Default:   "v1",
	}
	stateLoader.DefaultRegistry.RegisterComponentWithVersions("postgres", postgres)
	stateLoader.DefaultRegistry.RegisterComponentWithVersions("postgresql", postgres)

	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubredis.NewRedisStreams, "redis")
	pubsubLoader.DefaultRegistry.RegisterComponent(rabbitmq.NewRabbitMQ, "rabbitmq")
	pubsubLoader.DefaultRegistry.RegisterComponent(mqtt.NewMQTTPubSub, "mqtt3", "mqtt")
	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubinmemory.New, "in-memory")

	nrLoader.DefaultRegistry.RegisterComponent(mdns.NewResolver, "mdns")
}
