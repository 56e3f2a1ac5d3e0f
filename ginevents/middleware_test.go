package ginevents_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/bunhooks"
	"github.com/apsoai/domainevents/ginevents"
	"github.com/apsoai/domainevents/internal/testdb"
)

type Product struct {
	bun.BaseModel `bun:"table:products"`

	ID   int64  `bun:"id,pk,autoincrement" json:"id"`
	Name string `bun:"name,notnull" json:"name"`
}

type Review struct {
	bun.BaseModel `bun:"table:reviews"`

	ID        int64 `bun:"id,pk,autoincrement" json:"id"`
	ProductID int64 `bun:"product_id,notnull" json:"product_id"`
}

func init() { gin.SetMode(gin.TestMode) }

// app wires the middleware on a real database with a routes callback.
func app(t *testing.T, db *bun.DB, routes func(r *gin.Engine)) (*gin.Engine, *domainevents.Events) {
	t.Helper()
	ctx := context.Background()

	if err := domainevents.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Product)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// A foreign key checked only at COMMIT, to make a commit fail for real.
	if _, err := db.ExecContext(ctx, `CREATE TABLE reviews (
		id INTEGER PRIMARY KEY,
		product_id BIGINT NOT NULL
			REFERENCES products (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}

	events, err := domainevents.Register(db, domainevents.Options{
		Entities: []any{(*Product)(nil)},
		Getenv:   func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = events.Close() })

	r := gin.New()
	r.Use(gin.Recovery(), ginevents.Middleware(events))
	routes(r)

	return r, events
}

func do(r http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func counts(t *testing.T, db *bun.DB) (products, events int64) {
	t.Helper()
	ctx := context.Background()

	p, err := db.NewSelect().Model((*Product)(nil)).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := db.NewSelect().Table("events").Count(ctx)
	if err != nil {
		t.Fatal(err)
	}

	return p, e
}

func insertProduct(c *gin.Context) error {
	_, err := ginevents.Tx(c).NewInsert().Model(&Product{Name: "lamp"}).Exec(c.Request.Context())
	return err
}

func TestMiddleware_commitsOnSuccess(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		r, _ := app(t, db, func(r *gin.Engine) {
			r.POST("/p", func(c *gin.Context) {
				if err := insertProduct(c); err != nil {
					c.AbortWithError(500, err)
					return
				}
				c.Header("Location", "/p/1")
				c.JSON(http.StatusCreated, gin.H{"ok": true})
			})
		})

		w := do(r, "POST", "/p")
		if w.Code != http.StatusCreated || w.Header().Get("Location") != "/p/1" ||
			!strings.Contains(w.Body.String(), `"ok":true`) {
			t.Fatalf("response = %d %v %s", w.Code, w.Header(), w.Body)
		}
		if p, e := counts(t, db); p != 1 || e != 1 {
			t.Fatalf("products=%d events=%d, want 1 and 1", p, e)
		}
	})
}

func TestMiddleware_rollsBackOnFailure(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		r, _ := app(t, db, func(r *gin.Engine) {
			r.POST("/status", func(c *gin.Context) {
				_ = insertProduct(c)
				c.JSON(http.StatusConflict, gin.H{"error": "out of stock"})
			})
			r.POST("/error", func(c *gin.Context) {
				_ = insertProduct(c)
				_ = c.Error(errors.New("handler noted a failure"))
				c.Status(http.StatusOK)
			})
			r.POST("/panic", func(c *gin.Context) {
				_ = insertProduct(c)
				panic("handler bug")
			})
		})

		for path, want := range map[string]int{"/status": 409, "/error": 500, "/panic": 500} {
			if w := do(r, "POST", path); w.Code != want {
				t.Errorf("%s: status %d, want %d", path, w.Code, want)
			}
		}
		if p, e := counts(t, db); p != 0 || e != 0 {
			t.Fatalf("products=%d events=%d, want nothing persisted", p, e)
		}
	})
}

func TestMiddleware_failedCommitAnswers500(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		r, _ := app(t, db, func(r *gin.Engine) {
			r.POST("/review", func(c *gin.Context) {
				if err := insertProduct(c); err != nil {
					c.AbortWithError(500, err)
					return
				}
				review := &Review{ProductID: 999}
				_, err := ginevents.Tx(c).NewInsert().Model(review).Exec(c.Request.Context())
				if err != nil {
					c.AbortWithError(500, err)
					return
				}
				c.JSON(http.StatusCreated, gin.H{"ok": true})
			})
		})

		w := do(r, "POST", "/review")
		if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "ok") {
			t.Fatalf("response = %d %s, want a 500 without the handler's body", w.Code, w.Body)
		}
		if p, e := counts(t, db); p != 0 || e != 0 {
			t.Fatalf("products=%d events=%d, want nothing persisted", p, e)
		}
	})
}

func TestMiddleware_unserializablePayloadAnswers500(t *testing.T) {
	db := testdb.Open(t, "sqlite")
	ctx := context.Background()
	_ = domainevents.CreateTable(ctx, db)
	_, _ = db.NewCreateTable().Model((*Product)(nil)).Exec(ctx)
	events, err := domainevents.Register(db, domainevents.Options{
		Entities: []any{(*Product)(nil)},
		Mapper:   badMapper{},
		Getenv:   func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.Use(ginevents.Middleware(events))
	r.POST("/p", func(c *gin.Context) {
		_ = insertProduct(c)
		c.Status(http.StatusCreated)
	})

	if w := do(r, "POST", "/p"); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	if p, e := counts(t, db); p != 0 || e != 0 {
		t.Fatalf("products=%d events=%d, want nothing persisted", p, e)
	}
}

type badMapper struct{ bunhooks.DefaultMapper }

func (badMapper) Payload(any, bunhooks.Action) ([]byte, error) {
	return nil, errors.New("json: unsupported value")
}

func TestMiddleware_readsRunWithoutTransaction(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		r, _ := app(t, db, func(r *gin.Engine) {
			r.GET("/p", func(c *gin.Context) {
				if _, ok := ginevents.Tx(c).(*bun.DB); !ok {
					c.Status(http.StatusTeapot)
					return
				}
				if err := insertProduct(c); !errors.Is(err, bunhooks.ErrNoTransaction) {
					c.String(http.StatusInternalServerError, "write on GET: %v", err)
					return
				}
				c.Status(http.StatusOK)
			})
		})

		if w := do(r, "GET", "/p"); w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}

func TestMiddleware_clientGoneRollsBack(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		entered := make(chan struct{})
		r, _ := app(t, db, func(r *gin.Engine) {
			r.POST("/slow", func(c *gin.Context) {
				if err := insertProduct(c); err != nil {
					c.AbortWithError(500, err)
					return
				}
				close(entered)
				<-c.Request.Context().Done()
				c.Status(http.StatusCreated)
			})
		})

		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequest("POST", "/slow", nil).WithContext(ctx)
		done := make(chan struct{})
		go func() {
			r.ServeHTTP(httptest.NewRecorder(), req)
			close(done)
		}()
		<-entered
		cancel()
		<-done

		if p, e := counts(t, db); p != 0 || e != 0 {
			t.Fatalf("products=%d events=%d, want nothing persisted", p, e)
		}
		deadline := time.Now().Add(5 * time.Second)
		for db.Stats().InUse > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still in use", db.Stats().InUse)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func TestMiddleware_storesTraceParent(t *testing.T) {
	testdb.Each(t, func(t *testing.T, db *bun.DB) {
		r, _ := app(t, db, func(r *gin.Engine) {
			r.POST("/p", func(c *gin.Context) {
				if err := insertProduct(c); err != nil {
					c.AbortWithError(500, err)
					return
				}
				c.Status(http.StatusCreated)
			})
		})

		const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		req := httptest.NewRequest("POST", "/p", nil)
		req.Header.Set("traceparent", tp)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d", w.Code)
		}

		var meta string
		err := db.NewSelect().Table("events").Column("metadata").Scan(context.Background(), &meta)
		if err != nil {
			t.Fatal(err)
		}
		if meta != `{"traceparent":"`+tp+`"}` {
			t.Fatalf("metadata = %s, want the request's traceparent", meta)
		}
	})
}
