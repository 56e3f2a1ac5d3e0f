package ginevents

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/bunhooks"
	"github.com/apsoai/domainevents/publishers"
)

// UnitOfWork runs a function in a transaction that captures events. The
// value domainevents.Register returns is one.
type UnitOfWork interface {
	// RunInTx runs fn in a transaction and commits it, with the events its
	// writes captured, if fn returns nil.
	RunInTx(ctx context.Context, opts *sql.TxOptions,
		fn func(ctx context.Context, tx bun.Tx) error) error

	// DB returns the database, which [Tx] hands to requests that run
	// without a transaction.
	DB() *bun.DB
}

// Config configures the middleware. The zero value is valid.
type Config struct {
	// Skip reports whether a request runs without a transaction. Defaults
	// to skipping GET, HEAD and OPTIONS requests.
	Skip func(c *gin.Context) bool

	// TxOptions are the options of each transaction. Defaults to nil, the
	// database's defaults.
	TxOptions *sql.TxOptions

	// OnCommitError writes the response when the commit failed, after the
	// held response was discarded. Defaults to a 500 with
	// {"error":"the request's changes could not be saved"}.
	OnCommitError func(c *gin.Context, err error)

	// Logger receives an error line when a commit fails. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

func (cfg *Config) setDefaults() {
	if cfg.Skip == nil {
		cfg.Skip = skipSafeMethods
	}
	if cfg.OnCommitError == nil {
		cfg.OnCommitError = func(c *gin.Context, _ error) {
			c.AbortWithStatusJSON(http.StatusInternalServerError,
				gin.H{"error": "the request's changes could not be saved"})
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

func skipSafeMethods(c *gin.Context) bool {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}

	return false
}

// txKey is the gin.Context key of the request's transaction.
const txKey = "github.com/apsoai/domainevents/ginevents.tx"

// dbKey is the gin.Context key of the database for requests without one.
const dbKey = "github.com/apsoai/domainevents/ginevents.db"

// errRollback makes RunInTx roll back a request that did not succeed.
var errRollback = errors.New("ginevents: request did not succeed")

// Middleware returns the unit-of-work middleware with the default
// configuration.
func Middleware(uow UnitOfWork) gin.HandlerFunc {
	return MiddlewareWithConfig(uow, Config{})
}

// MiddlewareWithConfig returns the unit-of-work middleware.
func MiddlewareWithConfig(uow UnitOfWork, cfg Config) gin.HandlerFunc {
	cfg.setDefaults()

	return func(c *gin.Context) {
		c.Set(dbKey, uow.DB())

		if cfg.Skip(c) {
			c.Next()
			return
		}

		ctx := c.Request.Context()
		if tp := c.GetHeader("traceparent"); bunhooks.ValidTraceParent(tp) {
			ctx = bunhooks.WithMetadata(ctx,
				map[string]string{publishers.MetadataTraceParent: tp})
		}

		orig := c.Writer
		held := newHeldWriter(orig)
		c.Writer = held
		defer func() { c.Writer = orig }()

		err := uow.RunInTx(ctx, cfg.TxOptions,
			func(ctx context.Context, tx bun.Tx) error {
				c.Set(txKey, tx)
				defer c.Set(txKey, nil)

				c.Next()

				if held.Status() >= http.StatusBadRequest || len(c.Errors) > 0 {
					return errRollback
				}
				return nil
			})

		c.Writer = orig
		switch {
		case err == nil:
			held.release()
		case errors.Is(err, errRollback) && held.Status() < http.StatusBadRequest:
			// The handler noted an error in c.Errors but wrote a success:
			// nothing was saved, so the client must not be told otherwise.
			cfg.OnCommitError(c, c.Errors.Last())
		case errors.Is(err, errRollback):
			held.release()
		default:
			cfg.Logger.Error("request rolled back: commit failed",
				"method", c.Request.Method, "path", c.FullPath(), "error", err)
			cfg.OnCommitError(c, err)
		}
	}
}

// Tx returns the request's transaction, or the database for a request that
// runs without one (where writes of event-emitting models are refused). It
// panics when the middleware is not installed, as that is a wiring mistake.
func Tx(c *gin.Context) bun.IDB {
	if tx, ok := c.Value(txKey).(bun.Tx); ok {
		return tx
	}
	if db, ok := c.Value(dbKey).(*bun.DB); ok {
		return db
	}

	panic("ginevents: Tx called on a route without ginevents.Middleware")
}
