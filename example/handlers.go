package main

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/apsoai/domainevents/ginevents"
)

func routes(r *gin.Engine) {
	r.POST("/products", createProduct)
	r.GET("/products/:id", getProduct)
	r.PATCH("/products/:id", patchProduct)
	r.DELETE("/products/:id", deleteProduct)
	r.POST("/orders", createOrder)
}

func fail(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// now is the time the shop stamps on rows, in UTC to the microsecond, which
// is what both databases store.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

type productInput struct {
	Name       *string `json:"name"`
	PriceCents *int64  `json:"price_cents"`
	Stock      *int64  `json:"stock"`
}

func createProduct(c *gin.Context) {
	var in productInput
	if err := c.ShouldBindJSON(&in); err != nil {
		fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	if in.Name == nil || in.PriceCents == nil || in.Stock == nil {
		fail(c, http.StatusBadRequest, "name, price_cents and stock are required")
		return
	}
	if *in.Name == "" {
		fail(c, http.StatusBadRequest, "name cannot be empty")
		return
	}
	if *in.PriceCents < 0 || *in.Stock < 0 {
		fail(c, http.StatusBadRequest, "price_cents and stock cannot be negative")
		return
	}

	t := now()
	p := &Product{Name: *in.Name, PriceCents: *in.PriceCents, Stock: *in.Stock,
		CreatedAt: t, UpdatedAt: t}
	if _, err := ginevents.Tx(c).NewInsert().Model(p).Exec(c.Request.Context()); err != nil {
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not save the product")
		return
	}

	c.JSON(http.StatusCreated, p)
}

func productID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		fail(c, http.StatusNotFound, "no such product")
		return 0, false
	}

	return id, true
}

func getProduct(c *gin.Context) {
	id, ok := productID(c)
	if !ok {
		return
	}

	p := &Product{ID: id}
	err := ginevents.Tx(c).NewSelect().Model(p).WherePK().Scan(c.Request.Context())
	switch {
	case errors.Is(err, sql.ErrNoRows):
		fail(c, http.StatusNotFound, "no such product")
	case err != nil:
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not read the product")
	default:
		c.JSON(http.StatusOK, p)
	}
}

func patchProduct(c *gin.Context) {
	id, ok := productID(c)
	if !ok {
		return
	}
	var in productInput
	if err := c.ShouldBindJSON(&in); err != nil {
		fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}

	if (in.Name != nil && *in.Name == "") || (in.PriceCents != nil && *in.PriceCents < 0) ||
		(in.Stock != nil && *in.Stock < 0) {
		fail(c, http.StatusBadRequest, "name cannot be empty; price_cents and stock cannot be negative")
		return
	}

	var changed []Product
	q := ginevents.Tx(c).NewUpdate().Model(&changed).ModelTableExpr("products").
		Set("updated_at = ?", now()).Where("id = ?", id).Returning("*")
	if in.Name != nil {
		q.Set("name = ?", *in.Name)
	}
	if in.PriceCents != nil {
		q.Set("price_cents = ?", *in.PriceCents)
	}
	if in.Stock != nil {
		q.Set("stock = ?", *in.Stock)
	}

	res, err := q.Exec(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not save the product")
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		fail(c, http.StatusNotFound, "no such product")
		return
	}

	p := changed[0]
	c.JSON(http.StatusOK, p)
}

func deleteProduct(c *gin.Context) {
	id, ok := productID(c)
	if !ok {
		return
	}

	var gone []Product
	res, err := ginevents.Tx(c).NewDelete().Model(&gone).Where("id = ?", id).
		Returning("*").Exec(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not delete the product")
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		fail(c, http.StatusNotFound, "no such product")
		return
	}

	c.Status(http.StatusNoContent)
}

type orderInput struct {
	ProductID *int64 `json:"product_id"`
	Quantity  *int64 `json:"quantity"`
}

func createOrder(c *gin.Context) {
	var in orderInput
	if err := c.ShouldBindJSON(&in); err != nil {
		fail(c, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return
	}
	if in.ProductID == nil || in.Quantity == nil || *in.Quantity <= 0 {
		fail(c, http.StatusBadRequest, "product_id and a positive quantity are required")
		return
	}

	ctx := c.Request.Context()
	tx := ginevents.Tx(c)

	order := &Order{ProductID: *in.ProductID, Quantity: *in.Quantity, CreatedAt: now()}
	if _, err := tx.NewInsert().Model(order).Exec(ctx); err != nil {
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not save the order")
		return
	}

	// Lower the stock in the same transaction; RETURNING gives the product
	// as stored, which is what its product.updated event carries.
	var changed []Product
	res, err := tx.NewUpdate().Model(&changed).ModelTableExpr("products").
		Set("stock = stock - ?", order.Quantity).Set("updated_at = ?", now()).
		Where("id = ?", order.ProductID).Returning("*").Exec(ctx)
	if err != nil {
		_ = c.Error(err)
		fail(c, http.StatusInternalServerError, "could not update the stock")
		return
	}
	if n, _ := res.RowsAffected(); n == 0 {
		fail(c, http.StatusNotFound, "no such product")
		return
	}
	if changed[0].Stock < 0 {
		// 409 rolls back the order and the stock change together.
		fail(c, http.StatusConflict, "not enough stock")
		return
	}

	c.JSON(http.StatusCreated, order)
}
