// Command domainevents is the operators' tool for a service's events table.
//
// Usage:
//
//	domainevents migrate
//	domainevents stats [-json]
//	domainevents redrive [-id ID]... [-type TYPE]... [-since TIME] [-until TIME]
//	domainevents prune -older-than 720h [-batch 1000]
//
// migrate creates the events table and its indexes, or adds the columns this
// library needs to a table another implementation created; it is safe to
// run again. stats prints the pending and failed counts and the age of the
// oldest pending event. redrive puts failed events back to pending, with
// their attempts reset, for the running relays to deliver again; a
// destination that already accepted an event does not get it again. With no
// filter it redrives every failed event; -id and -type may repeat, and
// -since and -until, RFC 3339 times such as 2026-01-02T15:04:05Z, bound the
// capture time (since inclusive, until exclusive). prune deletes published
// events older than -older-than, in batches of -batch rows per statement,
// and never touches pending or failed ones.
//
// DATABASE_URL names the database: empty for the SQLite file example.db,
// the path of a SQLite file, or a postgres:// URL. The command needs no
// destination configuration; it only reads and writes the table.
//
// Exit status: 0 on success, 1 when the operation failed, 2 for a usage
// error.
package main
