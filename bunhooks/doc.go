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
//     bare *bun.DB, on a bun.Conn or in a transaction begun elsewhere
//     ([ErrNoTransaction]). Capturing it would not be atomic, so it is not
//     allowed to happen.
//   - An UPDATE or DELETE whose model does not identify its rows (a nil or
//     empty model, or a struct without its primary key) and has no
//     RETURNING, and an INSERT with ON CONFLICT without RETURNING *
//     ([ErrNeedsReturning]): the event would not carry the rows written.
//   - A write to an opted-in table that does not go through its model
//     (Table, TableExpr, a map model) ([ErrNeedsModel]).
//   - A write through the transaction after RunInTx began to commit, such as
//     one from a goroutine a handler left running ([ErrUnitClosed]).
//
// A write whose affected rows are not the rows its model holds (a struct
// model updated by a WHERE that matched several rows) fails the transaction
// with [ErrRowsMismatch]. So does a payload that does not serialize: RunInTx
// rolls back and returns the error.
//
// The default payload is shallow: the model's own fields, without Bun
// relation fields, as encoding/json writes them. An update with .Column()
// writes some columns but the payload is the whole model as the program
// holds it; add .Returning("*") to send the row as stored. An upsert (ON
// CONFLICT DO UPDATE) emits created for every row, updated or not.
//
// Capture belongs to the *bun.DB it was installed on: another bun.DB over
// the same *sql.DB has no hook and captures nothing. Install it once per
// *bun.DB; installing it twice refuses every write.
//
// Not captured: raw SQL (NewRaw, ExecContext), MERGE, and writes made by
// other programs. Events captured inside a savepoint (a nested RunInTx on a
// bun.Tx) that is later rolled back are still written; use one transaction
// per unit of work.
package bunhooks
