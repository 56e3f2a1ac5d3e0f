// Command example is a small shop that shows the whole flow of domain
// events: a Gin API over Bun whose committed changes of products and orders
// are delivered, signed, to a webhook.
//
//	go run ./example
//
// Environment:
//
//	PORT                  port to listen on (default 8080)
//	HOST                  address to listen on (default 127.0.0.1)
//	DATABASE_URL          empty: SQLite file example.db; a path: that SQLite
//	                      file; postgres://...: PostgreSQL
//	EVENTS_POLL_INTERVAL  the relay's fallback poll, a Go duration (default 5s)
//	EVENTS_DESTINATION    where events go (see the README); when unset the
//	                      example starts its own webhook receiver on a free
//	                      loopback port and sends events there
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents"
	"github.com/apsoai/domainevents/ginevents"
	"github.com/apsoai/domainevents/internal/dbopen"
	"github.com/apsoai/domainevents/publishers"
	_ "github.com/apsoai/domainevents/publishers/eventbridge"
	_ "github.com/apsoai/domainevents/publishers/kafka"
	_ "github.com/apsoai/domainevents/publishers/sqs"
	"github.com/apsoai/domainevents/publishers/webhook"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger)

	if err := run(logger); err != nil {
		logger.Error("shop failed", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	addr := net.JoinHostPort(env("HOST", "127.0.0.1"), env("PORT", "8080"))
	poll, err := time.ParseDuration(env("EVENTS_POLL_INTERVAL", "5s"))
	if err != nil || poll <= 0 {
		return fmt.Errorf("EVENTS_POLL_INTERVAL=%q is not a positive Go duration such as 5s or 250ms",
			os.Getenv("EVENTS_POLL_INTERVAL"))
	}

	db, err := dbopen.Open(os.Getenv(dbopen.EnvVar))
	if err != nil {
		return err
	}
	defer db.Close()

	if err := migrate(ctx, db); err != nil {
		return err
	}

	getenv := os.LookupEnv
	if strings.TrimSpace(os.Getenv(publishers.EnvDestination)) == "" {
		rcv, err := startReceiver(logger)
		if err != nil {
			return fmt.Errorf("start the demo webhook receiver: %w", err)
		}
		defer rcv.Close()

		logger.Info("EVENTS_DESTINATION is unset: sending events to the demo receiver",
			"url", rcv.URL)
		demo := map[string]string{
			publishers.EnvDestination: "webhook",
			webhook.EnvURL:            rcv.URL,
			webhook.EnvSecret:         rcv.Secret,
		}
		getenv = func(key string) (string, bool) {
			if v, ok := demo[key]; ok {
				return v, true
			}
			return os.LookupEnv(key)
		}
	}

	events, err := domainevents.Register(db, domainevents.Options{
		Entities:     EventEmittingModels,
		PollInterval: poll,
		Logger:       logger,
		Getenv:       getenv,
	})
	if err != nil {
		return err
	}
	defer events.Close()

	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
	router := gin.New()
	router.Use(gin.Recovery(), requestLog(logger), ginevents.Middleware(events))
	routes(router)

	srv := &http.Server{Addr: addr, Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set PORT or HOST): %w", addr, err)
	}
	logger.Info("shop listening", "addr", "http://"+ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("http shutdown", "error", err)
	}

	return events.Close()
}

// migrate creates the shop's tables and the events table if they are
// missing.
func migrate(ctx context.Context, db *bun.DB) error {
	if err := domainevents.CreateTable(ctx, db); err != nil {
		return err
	}

	for _, model := range []any{(*Product)(nil), (*Order)(nil)} {
		if _, err := db.NewCreateTable().Model(model).IfNotExists().Exec(ctx); err != nil {
			return fmt.Errorf("create table for %T: %w", model, err)
		}
	}

	return nil
}

func env(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}

	return def
}

func requestLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		logger.Info("request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "took", time.Since(start).Round(time.Microsecond))
	}
}
