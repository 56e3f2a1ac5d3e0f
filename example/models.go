package main

import (
	"time"

	"github.com/uptrace/bun"
)

// Product is a thing the shop sells. Its changes emit product.created,
// product.updated and product.removed.
type Product struct {
	bun.BaseModel `bun:"table:products"`

	ID         int64     `bun:"id,pk,autoincrement" json:"id"`
	Name       string    `bun:"name,notnull" json:"name"`
	PriceCents int64     `bun:"price_cents,notnull" json:"price_cents"`
	Stock      int64     `bun:"stock,notnull" json:"stock"`
	CreatedAt  time.Time `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at,notnull" json:"updated_at"`
}

// Order is a purchase of one product. Placing one emits order.created.
type Order struct {
	bun.BaseModel `bun:"table:orders"`

	ID        int64     `bun:"id,pk,autoincrement" json:"id"`
	ProductID int64     `bun:"product_id,notnull" json:"product_id"`
	Quantity  int64     `bun:"quantity,notnull" json:"quantity"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
}

// EventEmittingModels is the manifest: the models whose changes become
// events. The Apso CLI generates this list in the same form.
var EventEmittingModels = []interface{}{Product{}, Order{}}
