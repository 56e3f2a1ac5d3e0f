package dbopen

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// EnvVar is the environment variable that holds the database URL.
const EnvVar = "DATABASE_URL"

// DefaultSQLiteFile is the SQLite file an empty DATABASE_URL opens.
const DefaultSQLiteFile = "example.db"

// SQLitePragmas are the DSN parameters every SQLite file is opened with.
const SQLitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)&_txlock=immediate"

// Open opens the database that databaseURL names; see the package
// documentation for the forms it accepts. It does not connect: the first
// query does.
func Open(databaseURL string) (*bun.DB, error) {
	scheme, _, hasScheme := strings.Cut(databaseURL, "://")

	switch {
	case databaseURL == "":
		return openSQLite(DefaultSQLiteFile)
	case scheme == "postgres" || scheme == "postgresql":
		return openPostgres(databaseURL)
	case hasScheme:
		return nil, fmt.Errorf("dbopen: %s %q: unsupported scheme %q; "+
			"use postgres://user:password@host:5432/db or the path of a SQLite file",
			EnvVar, Redacted(databaseURL), scheme)
	default:
		return openSQLite(databaseURL)
	}
}

// SQLitePath returns the path of the SQLite file that databaseURL names,
// and false when it names PostgreSQL or something unsupported.
func SQLitePath(databaseURL string) (string, bool) {
	if databaseURL == "" {
		return DefaultSQLiteFile, true
	}
	if strings.Contains(databaseURL, "://") {
		return "", false
	}

	return databaseURL, true
}

func openSQLite(path string) (*bun.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("dbopen: %s %q: a SQLite path cannot contain '?' or '#'; "+
			"the connection parameters are fixed", EnvVar, path)
	}

	if dir := filepath.Dir(path); dir != "." {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, fmt.Errorf("dbopen: %s %q: directory %q does not exist; "+
				"create it or point DATABASE_URL elsewhere", EnvVar, path, dir)
		}
	}

	sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?"+SQLitePragmas)
	if err != nil {
		return nil, fmt.Errorf("dbopen: %s %q: open SQLite file: %w", EnvVar, path, err)
	}

	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

func openPostgres(dsn string) (db *bun.DB, err error) {
	// url.Parse's error repeats the URL, password included, so it is not
	// passed on.
	if _, err := url.Parse(dsn); err != nil {
		return nil, fmt.Errorf("dbopen: %s %q is not a valid URL; "+
			"percent-encode special characters in the user name and password",
			EnvVar, Redacted(dsn))
	}

	// pgdriver.WithDSN panics on parameters it does not accept, such as an
	// unknown sslmode; turn that into an error that names the variable.
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("dbopen: %s %q: %v", EnvVar, Redacted(dsn), p)
		}
	}()

	connector := pgdriver.NewConnector(pgdriver.WithDSN(dsn))

	return bun.NewDB(sql.OpenDB(connector), pgdialect.New()), nil
}

// Redacted returns raw with the password of a URL replaced by "xxxxx", for
// error messages and logs. A value that is not a URL is returned as it is,
// unless it looks like it holds credentials, which are then cut off.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err == nil {
		return u.Redacted()
	}

	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if scheme, _, ok := strings.Cut(raw, "://"); ok {
			return scheme + "://xxxxx" + raw[at:]
		}
	}

	return raw
}
