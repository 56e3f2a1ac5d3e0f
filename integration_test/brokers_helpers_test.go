package integration_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apsoai/domainevents/internal/dbopen"
)

// brokersDeadline bounds every wait of the broker tests. It only turns a
// hang into a failure; nothing asserts how fast anything is.
const brokersDeadline = 3 * time.Minute

// brokersBodyKeys are the keys of the contract's event body.
var brokersBodyKeys = []string{
	"attempts", "created_at", "id", "payload", "published_at", "status", "type",
}

// buildShopForBrokers builds the example shop into dir and returns the path
// of the binary.
func buildShopForBrokers(t *testing.T, dir string) string {
	t.Helper()

	bin := filepath.Join(dir, "shop")
	cmd := exec.Command("go", "build", "-o", bin, "./example")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./example: %v\n%s", err, out)
	}

	return bin
}

// brokersFreePort returns a TCP port on 127.0.0.1 that was free a moment
// ago.
func brokersFreePort(t *testing.T) int {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()

	return ln.Addr().(*net.TCPAddr).Port
}

// brokersShopEnv is the environment every shop runs with: its own
// address, a SQLite file and a short poll. HOME points at an empty
// directory so that the AWS SDK finds no shared configuration files.
func brokersShopEnv(t *testing.T, dbPath string, port int) map[string]string {
	t.Helper()

	return map[string]string{
		"HOST":                 "127.0.0.1",
		"PORT":                 strconv.Itoa(port),
		"DATABASE_URL":         dbPath,
		"EVENTS_POLL_INTERVAL": "200ms",
		"HOME":                 t.TempDir(),
	}
}

// brokersAWSEnv adds the AWS settings every AWS-backed shop gets: region,
// static credentials and no instance metadata.
func brokersAWSEnv(env map[string]string) {
	env["AWS_REGION"] = "us-east-1"
	env["AWS_ACCESS_KEY_ID"] = "test"
	env["AWS_SECRET_ACCESS_KEY"] = "test"
	env["AWS_EC2_METADATA_DISABLED"] = "true"
}

// brokersShop is one running example shop.
type brokersShop struct {
	t       *testing.T
	baseURL string
	dbPath  string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	db      *sql.DB
	stopped bool
}

// brokersStartShop runs bin with exactly the variables in extra (on top of
// brokersShopEnv), waits until it answers HTTP, and stops it by its PID
// when the test ends. The shop's log is shown when the test fails.
func brokersStartShop(t *testing.T, bin string, extra map[string]string) *brokersShop {
	t.Helper()

	dir := t.TempDir()
	port := brokersFreePort(t)
	dbPath := filepath.Join(dir, "shop.db")
	env := brokersShopEnv(t, dbPath, port)
	for k, v := range extra {
		env[k] = v
	}

	s := &brokersShop{
		t:       t,
		baseURL: fmt.Sprintf("http://127.0.0.1:%d", port),
		dbPath:  dbPath,
		logPath: filepath.Join(dir, "shop.log"),
		exited:  make(chan struct{}),
	}

	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = brokersEnvList(env)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start the shop: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()

	t.Cleanup(func() {
		s.stop()
		if s.db != nil {
			s.db.Close()
		}
		if t.Failed() {
			s.dumpLog()
		}
	})

	s.waitReady()

	return s
}

// brokersEnvList turns env into the KEY=value list that exec.Cmd takes.
func brokersEnvList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)

	return list
}

// waitReady waits until the shop answers HTTP, failing the test if it exits
// first.
func (s *brokersShop) waitReady() {
	s.t.Helper()

	deadline := time.Now().Add(brokersDeadline)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("the shop exited before it answered: %v", s.waitErr)
		default:
		}

		resp, err := http.Get(s.baseURL + "/products/0")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("the shop did not answer on %s", s.baseURL)
}

// stop sends SIGTERM to the shop's PID and waits for it, killing it if it
// does not exit. It returns the exit error, nil for a clean exit.
func (s *brokersShop) stop() error {
	if s.stopped {
		return s.waitErr
	}
	s.stopped = true

	select {
	case <-s.exited:
		return s.waitErr
	default:
	}

	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("the shop did not stop within a minute of SIGTERM; killed")
	}
}

// Stop stops the shop and fails the test unless it exits cleanly.
func (s *brokersShop) Stop() {
	s.t.Helper()

	if err := s.stop(); err != nil {
		s.t.Errorf("the shop did not exit cleanly on SIGTERM: %v", err)
	}
}

// dumpLog logs the end of the shop's output.
func (s *brokersShop) dumpLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		s.t.Logf("read shop log: %v", err)
		return
	}

	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 150 {
		lines = lines[len(lines)-150:]
	}
	s.t.Logf("shop log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
}

// call sends a JSON request to the shop and returns the response body,
// failing the test on a status other than want.
func (s *brokersShop) call(method, path string, body any, want int) json.RawMessage {
	s.t.Helper()

	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		reader = bytes.NewReader(b)
	}

	req, err := http.NewRequest(method, s.baseURL+path, reader)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()

	out, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}

	return out
}

// brokersExpected is an event the shop must emit, as the API showed it.
type brokersExpected struct {
	Type    string
	Key     string
	Payload json.RawMessage
}

// createProduct creates a product and returns its id and the event it
// must emit.
func (s *brokersShop) createProduct(name string, stock int64) (int64, brokersExpected) {
	s.t.Helper()

	body := s.call(http.MethodPost, "/products",
		map[string]any{"name": name, "price_cents": 1000 + stock, "stock": stock},
		http.StatusCreated)
	id := brokersID(s.t, body)

	return id, brokersExpected{
		Type: "product.created", Key: fmt.Sprintf("Product:%d", id), Payload: body,
	}
}

// renameProduct renames a product and returns the event it must emit.
func (s *brokersShop) renameProduct(id int64, name string) brokersExpected {
	s.t.Helper()

	body := s.call(http.MethodPatch, fmt.Sprintf("/products/%d", id),
		map[string]any{"name": name}, http.StatusOK)

	return brokersExpected{
		Type: "product.updated", Key: fmt.Sprintf("Product:%d", id), Payload: body,
	}
}

// placeOrder orders quantity of a product and returns the two events it
// must emit: order.created, then product.updated with the lowered stock.
func (s *brokersShop) placeOrder(productID, quantity int64) []brokersExpected {
	s.t.Helper()

	order := s.call(http.MethodPost, "/orders",
		map[string]any{"product_id": productID, "quantity": quantity}, http.StatusCreated)
	product := s.call(http.MethodGet, fmt.Sprintf("/products/%d", productID), nil,
		http.StatusOK)

	return []brokersExpected{
		{Type: "order.created", Key: fmt.Sprintf("Order:%d", brokersID(s.t, order)),
			Payload: order},
		{Type: "product.updated", Key: fmt.Sprintf("Product:%d", productID), Payload: product},
	}
}

// brokersID returns the "id" of a JSON object the shop answered with.
func brokersID(t *testing.T, body json.RawMessage) int64 {
	t.Helper()

	var v struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ID == 0 {
		t.Fatalf("no id in %s (%v)", body, err)
	}

	return v.ID
}

// brokersRow is one row of the events table.
type brokersRow struct {
	ID          string
	Type        string
	Payload     string
	Status      string
	Attempts    int
	EntityKey   string
	DeliveredTo string
	LastError   string

	// Leased says the row has an available_at: a relay claimed it, or it
	// waits for a retry.
	Leased bool
}

// rows reads the shop's events table in capture order.
func (s *brokersShop) rows() []brokersRow {
	s.t.Helper()

	if s.db == nil {
		db, err := dbopen.Open(s.dbPath)
		if err != nil {
			s.t.Fatal(err)
		}
		s.db = db.DB
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rs, err := s.db.QueryContext(ctx, `SELECT id, type, payload, status, attempts,
	entity_key, delivered_to, last_error, available_at IS NOT NULL
	FROM events ORDER BY created_at, rowid`)
	if err != nil {
		s.t.Fatalf("read the events table: %v", err)
	}
	defer rs.Close()

	var out []brokersRow
	for rs.Next() {
		var r brokersRow
		var key, delivered, lastErr sql.NullString
		err := rs.Scan(&r.ID, &r.Type, &r.Payload, &r.Status, &r.Attempts,
			&key, &delivered, &lastErr, &r.Leased)
		if err != nil {
			s.t.Fatalf("read the events table: %v", err)
		}
		r.EntityKey, r.DeliveredTo, r.LastError = key.String, delivered.String, lastErr.String
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		s.t.Fatalf("read the events table: %v", err)
	}

	return out
}

// waitAllPublished waits until the table holds want rows and every one is
// published, failing at once if a row ends failed.
func (s *brokersShop) waitAllPublished(want int) []brokersRow {
	s.t.Helper()

	var rows []brokersRow
	brokersWait(s.t, fmt.Sprintf("%d events published", want), func() (bool, string) {
		rows = s.rows()
		counts := map[string]int{}
		for _, r := range rows {
			counts[r.Status]++
			if r.Status == "failed" {
				s.t.Fatalf("event %s (%s) ended failed after %d attempts: %s",
					r.ID, r.Type, r.Attempts, r.LastError)
			}
		}
		return len(rows) == want && counts["published"] == want,
			fmt.Sprintf("%d rows, by status %v", len(rows), counts)
	})

	return rows
}

// brokersWait polls cond until it holds, and fails the test with the last
// state cond described if it does not within brokersDeadline.
func brokersWait(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()

	deadline := time.Now().Add(brokersDeadline)
	var state string
	for {
		var ok bool
		if ok, state = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last state: %s", brokersDeadline, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// brokersMatch pairs the table's rows with the expected events: the rows
// of each entity, in capture order, must be exactly its expected events in
// the order the API calls made them, with the payload the API returned. It
// returns the expected event of each event id.
func brokersMatch(
	t *testing.T, rows []brokersRow, want []brokersExpected,
) map[string]brokersExpected {
	t.Helper()

	byKey := map[string][]brokersExpected{}
	for _, w := range want {
		byKey[w.Key] = append(byKey[w.Key], w)
	}

	byID := map[string]brokersExpected{}
	seen := map[string]int{}
	for _, r := range rows {
		i := seen[r.EntityKey]
		seen[r.EntityKey]++
		list := byKey[r.EntityKey]
		if i >= len(list) {
			t.Errorf("unexpected event %s %s of %q: %s", r.ID, r.Type, r.EntityKey, r.Payload)
			continue
		}
		w := list[i]
		if r.Type != w.Type || !brokersJSONEqual(json.RawMessage(r.Payload), w.Payload) {
			t.Errorf("event %d of %s is %s %s, want %s %s",
				i+1, r.EntityKey, r.Type, r.Payload, w.Type, w.Payload)
		}
		byID[r.ID] = w
	}
	for key, list := range byKey {
		if seen[key] != len(list) {
			t.Errorf("%s has %d events in the table, want %d", key, seen[key], len(list))
		}
	}

	return byID
}

// brokersCheckBody returns what is wrong with a delivered event body: it
// must hold exactly the contract's seven keys, with the event's id, type
// and the payload the API returned.
func brokersCheckBody(body []byte, id string, want brokersExpected) []string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return []string{fmt.Sprintf("body is not a JSON object: %v: %s", err, body)}
	}

	var problems []string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, brokersBodyKeys) {
		problems = append(problems, fmt.Sprintf("keys %v, want %v", keys, brokersBodyKeys))
	}

	str := func(key string) string {
		var v string
		if err := json.Unmarshal(fields[key], &v); err != nil {
			problems = append(problems, fmt.Sprintf("%s is %s, not a string", key, fields[key]))
		}
		return v
	}
	if got := str("id"); got != id {
		problems = append(problems, fmt.Sprintf("id %q, want %q", got, id))
	}
	if got := str("type"); got != want.Type {
		problems = append(problems, fmt.Sprintf("type %q, want %q", got, want.Type))
	}
	if got := str("status"); got != "pending" {
		problems = append(problems, fmt.Sprintf("status %q, want pending", got))
	}
	created := str("created_at")
	if ts, err := time.Parse(time.RFC3339Nano, created); err != nil ||
		!strings.HasSuffix(created, "Z") || ts.IsZero() {
		problems = append(problems, fmt.Sprintf("created_at %q is not RFC 3339 in UTC", created))
	}
	var attempts int
	if err := json.Unmarshal(fields["attempts"], &attempts); err != nil || attempts < 0 {
		problems = append(problems, fmt.Sprintf("attempts %s is not a count", fields["attempts"]))
	}
	if string(fields["published_at"]) != "null" {
		problems = append(problems, fmt.Sprintf("published_at %s, want null",
			fields["published_at"]))
	}
	if !brokersJSONEqual(fields["payload"], want.Payload) {
		problems = append(problems, fmt.Sprintf("payload %s, want what the API returned: %s",
			fields["payload"], want.Payload))
	}

	return problems
}

// brokersJSONEqual reports whether two JSON documents hold the same value.
func brokersJSONEqual(a, b json.RawMessage) bool {
	decode := func(raw json.RawMessage) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}

	va, okA := decode(a)
	vb, okB := decode(b)

	return okA && okB && reflect.DeepEqual(va, vb)
}

// brokersCheckOrder fails the test unless, for every entity, the first
// delivery of each of its events comes in capture order. got lists event
// ids in the order one ordered stream (a partition, a FIFO group)
// delivered them, repeats included.
func brokersCheckOrder(t *testing.T, stream string, got []string, rows []brokersRow) {
	t.Helper()

	pos := map[string]int{}
	keyOf := map[string]string{}
	for i, r := range rows {
		pos[r.ID] = i
		keyOf[r.ID] = r.EntityKey
	}

	last := map[string]int{}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			continue
		}
		seen[id] = true

		key := keyOf[id]
		if p, ok := last[key]; ok && pos[id] < p {
			t.Errorf("%s: event %s of %s arrived after a later event of it", stream, id, key)
		}
		last[key] = pos[id]
	}
}

// brokersStartupError runs bin with env, expects it to exit non-zero
// without serving, and returns its output.
func brokersStartupError(t *testing.T, bin string, env map[string]string) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), brokersDeadline)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = brokersEnvList(env)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the shop did not exit within %s:\n%s", brokersDeadline, out)
	}

	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
		t.Fatalf("the shop exited with %v, want a non-zero status:\n%s", err, out)
	}
	if bytes.Contains(out, []byte("shop listening")) {
		t.Errorf("the shop started serving before it failed:\n%s", out)
	}

	return string(out)
}
