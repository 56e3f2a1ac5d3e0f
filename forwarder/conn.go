package forwarder

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/outbox"
)

// pinnedConn keeps one connection of the database's pool for a loop of the
// relay, so that the loop does not reconnect for every batch when the pool
// keeps few idle connections. A query error drops the connection; the next
// use takes a fresh one, which is how the relay rides out a database
// restart.
type pinnedConn struct {
	base *outbox.Store
	conn *bun.Conn
}

func (p *pinnedConn) store(ctx context.Context) (*outbox.Store, error) {
	if p.conn == nil {
		conn, err := p.base.DB().Conn(ctx)
		if err != nil {
			return nil, err
		}
		p.conn = &conn
	}

	return p.base.On(*p.conn), nil
}

func (p *pinnedConn) drop() {
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}
