// Package outbox reads and writes the events table: the transactional
// outbox that capture fills and the relay drains.
//
// The table keeps the columns the contract fixes (id, type, payload, status,
// attempts, created_at, published_at) so that rows written by any Apso
// implementation stay valid, plus a few nullable or defaulted columns of its
// own, listed on [Columns]. [Store.CreateTable] creates the table and its
// indexes, and adds the extra columns to a table another implementation
// created; the same DDL ships as SQL files in schema/ for migration tools.
//
// A [Store] works on SQLite and PostgreSQL. It claims pending rows oldest
// first in one statement; on PostgreSQL the claim uses FOR UPDATE SKIP LOCKED
// so that several relays share the work without sending a row twice. A claim
// is a lease: a relay that dies leaves its rows claimable again once the lease
// runs out. Only the oldest pending row of each entity is claimable, so one
// entity's events are handed out one at a time, in the order they were
// captured, while other entities' events go ahead.
package outbox
