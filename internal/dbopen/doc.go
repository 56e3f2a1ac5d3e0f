// Package dbopen opens the database that a DATABASE_URL value names, the
// same way for the example service and the domainevents command:
//
//   - empty: the SQLite file example.db in the working directory;
//   - postgres:// or postgresql://: PostgreSQL through Bun's pgdriver, with
//     the URL's parameters (sslmode, search_path, ...) as pgdriver reads them;
//   - anything else without a scheme: the path of a SQLite file, opened with
//     WAL, a 10-second busy timeout and IMMEDIATE transactions, so that
//     several connections and processes can write to it.
//
// Errors name DATABASE_URL and show the value with its password hidden.
package dbopen
