// Command daprd is Dapr's sidecar, built from the version pinned in go.mod with the
// SQLite name resolver and the components daprshop's sets use compiled in
// (_patches/dapr/cmd/daprd/components/daprshop.go: Redis, PostgreSQL, MySQL,
// SQLite and in-memory state; Redis, RabbitMQ, MQTT and in-memory pub/sub; mDNS),
// or all of Dapr's stable components with `make daprd DAPRD_COMPONENTS=stable`.
// The short list takes a third off daprd's first build, which a fresh clone's
// `make run` and `make test` wait for (2m47s against 4m00s on two cores), and
// makes a smaller binary (77 MB against 124) and sidecar (60 MiB resident at
// rest against 84, about half under load: bench/README.md, log 24).
//
// The SQLite resolver (in Dapr's release binaries, but not among the stable
// components) lets every system the runner starts keep its own registry of app
// instances in a file of its own, so that two systems on one machine (a `make
// run` and a `make test`) never resolve each other's apps, as they would through
// machine-wide mDNS.
//
// It also carries daprshop's changes to Dapr itself, under _patches/<name> (a folder
// the go command ignores) for the module github.com/dapr/<name>, in the module's
// layout: a <file>.patch changes that file of the module, a .go file is added
// beside Dapr's (the tests of a change, and the list of components). patch.sh
// applies them to copies of the modules, which the build uses in their place
// (`make daprd`; `make daprd-patches` runs the tests), so the module cache is
// never written to. There are four changes, besides the list of components:
//
//   - dapr pkg/runtime/pubsub/outbox.go: the transactional outbox's relay retried its
//     check of the outbox state with a backoff.ExponentialBackOff that had no Stop,
//     so once MaxElapsedTime had passed, backoff.Retry read the zero delay as "retry
//     now": a message whose transaction failed (an ETag conflict) was checked
//     against the store in a tight loop, forever (thousands of reads a second per
//     message, a sidecar's whole core under load). The relay now gives up after
//     its ten seconds and rejects the message, and outboxDiscardWhenMissingState
//     drops it only when the store answered that the state is not there, never
//     when the store failed to answer. And the relay first looks for a
//     message's marker after 100 ms, not a second: a transaction that has not
//     committed by then is looked for again, so the second only held every
//     order placed (and a subscription worker, and on RabbitMQ and MQTT an
//     in-flight delivery) for that long: `order.placed` left a second after the
//     order was saved.
//   - components-contrib pubsub/redis/redis.go: with readTimeout unset (the
//     default), a subscription read with XREADGROUP BLOCK 0, which waits forever
//     and does not see its context canceled. Dapr stops an app's subscriptions
//     while the app is unhealthy, so every time an overloaded app's health check
//     flapped, each subscription to a quiet stream kept a pooled connection
//     blocked; after a few flaps the pool (ten per CPU) was gone and the sidecar
//     could neither read, acknowledge nor publish, for good (seen in the bench:
//     all twenty of orders' connections blocked for minutes, its orders stuck).
//     The read now blocks for two seconds at most. (Setting readTimeout instead
//     races the read's own deadline: an i/o timeout error and a new connection
//     every readTimeout, for every quiet stream.)
//   - components-contrib nameresolution/sqlite/sqlite.go: the resolver ran a SQL
//     query on every service invocation, about a fifth of the calling sidecar's
//     CPU (bench/README.md). It now reads an app's live addresses once a second
//     and picks one at random from them, as before from the table.
//   - dapr pkg/api/grpc/server.go: the gRPC servers (the API the app calls, and the
//     one other sidecars call) started a goroutine for every call, and each one
//     grew its stack again by copying, from its first small size to what a call
//     needs: most of the 8-12% of a busy sidecar's CPU that went to stack growth.
//     Calls are now served by 16 long-lived workers (grpc.NumStreamWorkers),
//     whose stacks stay grown; a call that finds them all busy gets a goroutine
//     of its own, as before.
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
