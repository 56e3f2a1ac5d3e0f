// Package bunhooks captures changes of opted-in Bun models as rows of the
// events table, inside the transaction that makes the change.
//
// A [Capture] is a [bun.QueryHook]. For every INSERT, UPDATE and DELETE that
// Bun builds for a model named in [Config.Entities], it maps each changed
// row to an event ([Mapper]) and keeps the events with the transaction.
// [Capture.RunInTx] writes them with one multi-row INSERT just before COMMIT,
// so a committed change always has its events and a rolled-back change has
// none. The Gin middleware in package ginevents runs every mutating request
// through RunInTx; jobs and commands call it directly.
//
// What is captured:
//
//   - An insert gives one created event per row, a slice insert one per
//     element, after the database filled generated columns.
//   - An update or delete gives one updated or removed event per affected
//     row. The payload is the row as the model holds it after the query; a
//     query with RETURNING fills the model from the database, so
//     .Returning("*") gives the row as stored. An update or delete that
//     matched no row emits nothing. A soft delete (soft_delete tag) is
//     removed.
//   - The events row itself and models not in Entities emit nothing.
//
// What is refused, with an error that names the fix and before any SQL runs:
//
//   - A write of an opted-in model outside a transaction of RunInTx, on the
//     bare *bun.DB or in a transaction begun elsewhere ([ErrNoTransaction]).
//     Capturing it would not be atomic, so it is not allowed to happen.
//   - A bulk UPDATE or DELETE by a WHERE clause on a nil or empty model
//     without RETURNING ([ErrNeedsReturning]), since it carries no row to
//     put in the event.
//
// A payload that does not serialize fails the transaction: RunInTx rolls
// back and returns the mapper's error.
//
// Not captured: raw SQL (NewRaw, ExecContext), MERGE, and writes made by
// other programs. Events captured inside a savepoint (a nested RunInTx on a
// bun.Tx) that is later rolled back are still written; use one transaction
// per unit of work.
package bunhooks
