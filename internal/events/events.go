// Package events is the one definition of daprshop's asynchronous contracts: the
// pub/sub component, the topics, the CloudEvent types and their payloads. Every
// producer and consumer imports it, so a renamed field breaks the build, not
// production.
package events

// PubSub is the name of the pub/sub component every service publishes and
// subscribes through. Each component set under components/ defines it.
const PubSub = "pubsub"

// Topics. Each of orders' events has a topic of its own, because their
// audiences differ (inventory acts on placed and cancelled orders,
// notifications on confirmed and cancelled ones): on one shared topic every
// subscriber would be handed, and would only acknowledge, the events it does not
// act on. The inventory and payments each own one topic, whose events every
// subscriber acts on but for the rarer outcomes, told apart by their CloudEvent
// type. OrderReserved is saved but never published: no service consumes it.
const (
	TopicOrderPlaced    = "order-placed"
	TopicOrderConfirmed = "order-confirmed"
	TopicOrderCancelled = "order-cancelled"
	TopicInventory      = "inventory"
	TopicPayments       = "payments"
)

// OrderTopic returns the topic orders publishes the event of type typ on, or ""
// for a type it does not publish.
func OrderTopic(typ string) string {
	switch typ {
	case OrderPlaced:
		return TopicOrderPlaced
	case OrderConfirmed:
		return TopicOrderConfirmed
	case OrderCancelled:
		return TopicOrderCancelled
	}
	return ""
}

// DeadLetterTopic is the topic where the named app's undeliverable events end.
func DeadLetterTopic(appID string) string { return appID + "-deadletter" }

// CloudEvent types.
const (
	OrderPlaced    = "daprshop.order.placed.v1"
	OrderReserved  = "daprshop.order.reserved.v1"
	OrderConfirmed = "daprshop.order.confirmed.v1"
	OrderCancelled = "daprshop.order.cancelled.v1"

	StockReserved = "daprshop.stock.reserved.v1"
	StockRejected = "daprshop.stock.rejected.v1"
	StockReleased = "daprshop.stock.released.v1"

	PaymentSucceeded = "daprshop.payment.succeeded.v1"
	PaymentFailed    = "daprshop.payment.failed.v1"
)

// Order statuses, in the order the saga moves through them.
const (
	StatusPending   = "pending"
	StatusReserved  = "reserved"
	StatusPaid      = "paid"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
)

// State store component names, one per service, each scoped to its app.
const (
	StoreCatalog       = "catalog-store"
	StoreOrders        = "orders-store"
	StoreInventory     = "inventory-store"
	StorePayments      = "payments-store"
	StoreNotifications = "notifications-store"
)

// Reasons an order is cancelled for.
const (
	ReasonOutOfStock      = "out_of_stock"
	ReasonUnknownProduct  = "unknown_product"
	ReasonPaymentDeclined = "payment_declined"
	ReasonNoAccount       = "no_account"
	ReasonProcessing      = "processing_failed"
	// ReasonTimedOut cancels an order the saga did not finish in time, which
	// only happens when a consumer is gone for that long (see orders'
	// reconciler).
	ReasonTimedOut = "timed_out"
)

// Line is one product and quantity of an order.
type Line struct {
	ProductID  string `json:"productId"`
	Quantity   int64  `json:"quantity"`
	PriceCents int64  `json:"priceCents"`
}

// Order is the payload of every order event: the order as it stands after the
// change the event names.
type Order struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	Lines      []Line `json:"lines"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
}

// Stock is the payload of the inventory's events. It carries what payments needs
// to charge, so that payments never has to ask orders.
type Stock struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId"`
	TotalCents int64  `json:"totalCents"`
	Currency   string `json:"currency"`
	Reason     string `json:"reason,omitempty"`
}

// Payment is the payload of the payments service's events.
type Payment struct {
	OrderID     string `json:"orderId"`
	CustomerID  string `json:"customerId"`
	AmountCents int64  `json:"amountCents"`
	Currency    string `json:"currency"`
	Reason      string `json:"reason,omitempty"`
}

// EventID is the deterministic id of the event of type typ about orderID. A
// producer that publishes the same outcome twice publishes the same id, so a
// consumer can tell a duplicate from a new event.
func EventID(orderID, typ string) string { return orderID + "/" + typ }
