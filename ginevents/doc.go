// Package ginevents runs each mutating Gin request as one unit of work: a
// Bun transaction that handlers reach through [Tx], committed with the
// request's events when the handler succeeds and rolled back otherwise.
//
//	router.Use(ginevents.Middleware(events))
//
//	router.POST("/products", func(c *gin.Context) {
//		_, err := ginevents.Tx(c).NewInsert().Model(&p).Exec(c.Request.Context())
//		...
//	})
//
// The rules:
//
//   - A request runs in a transaction unless [Config.Skip] says otherwise;
//     by default GET, HEAD and OPTIONS requests do not.
//
//   - The transaction commits when the handlers return with a status below
//     400 and no error in c.Errors; otherwise it rolls back. A handler that
//     notes an error in c.Errors but writes a success status gets the
//     commit-failure answer instead (a 500 by default): its changes were not
//     saved.
//
//   - The response is held until the commit succeeded. If the commit fails,
//     the client gets a 500 and none of what the handler wrote, and nothing
//     of the request persists. A handler therefore cannot stream or hijack
//     the connection in a transactional request.
//
//   - A panic rolls the transaction back and goes on, unchanged, to
//     gin.Recovery or whatever recovers it.
//
//   - The transaction lives in the request's context: a client that
//     disconnects cancels it, and database/sql rolls it back and returns the
//     connection.
//
//   - A valid W3C traceparent header of the request is stored with the
//     request's events and sent on in the destinations' headers.
//
// Pass c.Request.Context() to queries, not c: Gin reuses its Context once
// the request ends, while database/sql may still watch the context it was
// given.
//
// The events themselves are written by the unit of work (see package
// bunhooks), which also wakes the relay after the commit.
package ginevents
