package integration_test

// Helpers of the end-to-end tests of the example shop: they build the shop
// binary once, run it as a child process configured only through its
// environment, talk to it over HTTP, and receive its webhooks on a real
// HTTP server that checks every request with the Standard Webhooks
// project's own Go library.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
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
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/uptrace/bun"

	"github.com/apsoai/domainevents/internal/testdb"
)

var (
	exBuildOnce sync.Once
	exBuildDir  string
	exBinary    string
	exBuildErr  error
)

// TestMain removes the shop binary that the example tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if exBuildDir != "" {
		_ = os.RemoveAll(exBuildDir)
	}
	os.Exit(code)
}

// exShopBinary builds the example shop once per test binary and returns its
// path.
func exShopBinary(t *testing.T) string {
	t.Helper()

	exBuildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			exBuildErr = fmt.Errorf("find the go command to build the example: %w", err)
			return
		}

		dir, err := os.MkdirTemp("", "example-shop-")
		if err != nil {
			exBuildErr = fmt.Errorf("make a directory for the example binary: %w", err)
			return
		}
		exBuildDir = dir

		bin := filepath.Join(dir, "shop")
		cmd := exec.Command(goTool, "build", "-o", bin, "./example")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			exBuildErr = fmt.Errorf("go build ./example: %w\n%s", err, out)
			return
		}
		exBinary = bin
	})
	if exBuildErr != nil {
		t.Fatal(exBuildErr)
	}

	return exBinary
}

// exLogs collects what a shop writes to stdout and stderr.
type exLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *exLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.buf.Write(p)
}

func (l *exLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.buf.String()
}

// lines returns the log lines that contain every one of parts.
func (l *exLogs) lines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(l.String()) {
		matches := true
		for _, p := range parts {
			matches = matches && strings.Contains(line, p)
		}
		if matches {
			out = append(out, strings.TrimSpace(line))
		}
	}

	return out
}

// tail returns the last n lines of the logs.
func (l *exLogs) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return strings.Join(lines, "\n")
}

// exShop is one running example shop process.
type exShop struct {
	URL  string
	Logs *exLogs

	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
}

// exEnv builds the environment of a shop process: the test's environment
// without anything the shop reads, plus env.
func exEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(key, "EVENTS_") || key == "DATABASE_URL" || key == "PORT" ||
			key == "HOST" || key == "GIN_MODE" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}

	return out
}

// exFreePort returns a loopback TCP port that was free a moment ago.
func exFreePort(t *testing.T) string {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_ = ln.Close()

	return port
}

// exLaunch starts the shop binary in dir with env and stops it, by its PID,
// when the test ends. It does not wait for the shop to listen.
func exLaunch(t *testing.T, dir string, env map[string]string) *exShop {
	t.Helper()

	s := &exShop{Logs: &exLogs{}, done: make(chan struct{})}
	s.cmd = exec.Command(exShopBinary(t))
	s.cmd.Dir = dir
	s.cmd.Env = exEnv(env)
	s.cmd.Stdout = s.Logs
	s.cmd.Stderr = s.Logs
	exDieWithParent(s.cmd)

	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the shop: %v", err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.done)
	}()

	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("shop (pid %d) log tail:\n%s", s.cmd.Process.Pid, s.Logs.tail(40))
		}
	})

	return s
}

// exStartShop starts a shop on a free loopback port and waits until it
// answers HTTP. dir is its working directory; env its configuration. It
// tries another port when the one it picked was taken in the meantime.
func exStartShop(t *testing.T, dir string, env map[string]string) *exShop {
	t.Helper()

	for try := 1; ; try++ {
		port := exFreePort(t)
		full := map[string]string{"HOST": "127.0.0.1", "PORT": port}
		for k, v := range env {
			full[k] = v
		}

		s := exLaunch(t, dir, full)
		s.URL = "http://127.0.0.1:" + port
		if s.waitListening(t) {
			return s
		}
		if try == 3 || !strings.Contains(s.Logs.String(), "address already in use") {
			t.Fatalf("the shop exited before it listened (%v):\n%s", s.exitErr, s.Logs.tail(40))
		}
	}
}

// waitListening waits until the shop answers HTTP and reports false if it
// exited first.
func (s *exShop) waitListening(t *testing.T) bool {
	t.Helper()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.exited() {
			return false
		}

		resp, err := client.Get(s.URL + "/products/0")
		if err == nil {
			_ = resp.Body.Close()
			return true
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shop did not answer on %s within 60s: %v\n%s",
				s.URL, err, s.Logs.tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pid returns the process id.
func (s *exShop) pid() int { return s.cmd.Process.Pid }

// exited reports whether the process has ended.
func (s *exShop) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to end, at most timeout, and returns its exit
// code, or -1 if it was ended by a signal.
func (s *exShop) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()

	select {
	case <-s.done:
	case <-time.After(timeout):
		t.Fatalf("the shop (pid %d) did not exit within %s:\n%s",
			s.cmd.Process.Pid, timeout, s.Logs.tail(40))
	}

	return s.cmd.ProcessState.ExitCode()
}

// kill ends the process with SIGKILL and waits until it is gone.
func (s *exShop) kill(t *testing.T) {
	t.Helper()

	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !s.exited() {
		t.Fatalf("kill -9 the shop: %v", err)
	}
	s.wait(t, 30*time.Second)
}

// stop ends the process with SIGTERM, or SIGKILL when it does not exit
// within 30 seconds, and reports a shutdown that did not succeed.
func (s *exShop) stop(t *testing.T) {
	t.Helper()

	if s.exited() {
		return
	}

	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("the shop (pid %d) did not stop within 30s of SIGTERM", s.cmd.Process.Pid)
		return
	}

	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the shop (pid %d) exited with status %d after SIGTERM:\n%s",
			s.cmd.Process.Pid, code, s.Logs.tail(20))
	}
}

// exClient is the HTTP client of the tests' API calls.
var exClient = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 64},
}

// try sends one API request and returns the status and body.
func (s *exShop) try(method, path, body string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := exClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()

	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}

	return resp.StatusCode, b, nil
}

// call sends one API request and fails the test unless the shop answers
// with want.
func (s *exShop) call(t *testing.T, want int, method, path, body string) []byte {
	t.Helper()

	status, b, err := s.try(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		t.Fatalf("%s %s %s: status %d, want %d; body %s", method, path, body, status, want, b)
	}

	return b
}

// createProduct creates a product and returns the API's answer and its id.
func (s *exShop) createProduct(t *testing.T, name string, price, stock int64) ([]byte, int64) {
	t.Helper()

	in, err := json.Marshal(map[string]any{"name": name, "price_cents": price, "stock": stock})
	if err != nil {
		t.Fatal(err)
	}
	b := s.call(t, http.StatusCreated, http.MethodPost, "/products", string(in))

	return b, exID(t, b)
}

// exID returns the "id" of an entity as the API or a payload shows it.
func exID(t *testing.T, entity []byte) int64 {
	t.Helper()

	var v struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(entity, &v); err != nil || v.ID <= 0 {
		t.Fatalf("entity %s has no positive id (%v)", entity, err)
	}

	return v.ID
}

// exSameJSON fails the test unless got and want hold the same JSON value.
func exSameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()

	decode := func(b []byte) (any, error) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		err := dec.Decode(&v)
		return v, err
	}

	g, errG := decode(got)
	w, errW := decode(want)
	if errG != nil || errW != nil {
		t.Errorf("%s: cannot decode (%v, %v): got %s, want %s", what, errG, errW, got, want)
		return
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
}

// exEventually polls cond until it holds and fails the test when it still
// does not after timeout. The timeout only turns a hang into a failure.
func exEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exSecret returns a fresh Standard Webhooks secret.
func exSecret(t *testing.T) string {
	t.Helper()

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}

	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// exDelivery is one webhook request the receiver answered with a 2xx.
type exDelivery struct {
	Seq     int    // order of arrival among all requests
	ID      string // event id
	Type    string
	Entity  string // "product:42": the type's entity and the payload's id
	Payload []byte
	Body    []byte
	At      time.Time
	From    int // the sender's TCP port
}

// exRequest is one webhook request and the receiver's answer.
type exRequest struct {
	exDelivery
	Status int
}

// exReceiver is a webhook endpoint on a loopback port. It checks every
// request with the Standard Webhooks library and the contract's body rules,
// and answers 204 unless told otherwise.
type exReceiver struct {
	URL    string
	Secret string

	wh   *standardwebhooks.Webhook
	addr string

	mu       sync.Mutex
	srv      *http.Server
	down     bool          // answer 503 to everything
	hold     chan struct{} // when not nil, answers wait until it is closed
	held     []string      // ids of the requests waiting on hold
	reject   func(d exDelivery) bool
	requests []exRequest
	problems []string
}

// exNewReceiver starts a receiver, closed when the test ends, and reports
// every request that failed verification or broke the body rules.
func exNewReceiver(t *testing.T) *exReceiver {
	t.Helper()

	r := &exReceiver{Secret: exSecret(t)}
	wh, err := standardwebhooks.NewWebhook(r.Secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	r.wh = wh

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("receiver listen: %v", err)
	}
	r.addr = ln.Addr().String()
	r.URL = "http://" + r.addr + "/hooks"
	r.serve(ln)

	t.Cleanup(func() {
		r.releaseAnswers()

		r.mu.Lock()
		srv := r.srv
		problems := slices.Clone(r.problems)
		r.mu.Unlock()
		if srv != nil {
			_ = srv.Close()
		}

		for i, p := range problems {
			if i == 10 {
				t.Errorf("receiver: %d more problems", len(problems)-10)
				break
			}
			t.Errorf("receiver: %s", p)
		}
	})

	return r
}

func (r *exReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()

	go func() { _ = srv.Serve(ln) }()
}

// env returns the shop's configuration for this receiver.
func (r *exReceiver) env() map[string]string {
	return map[string]string{
		"EVENTS_DESTINATION":    "webhook",
		"EVENTS_WEBHOOK_URL":    r.URL,
		"EVENTS_WEBHOOK_SECRET": r.Secret,
	}
}

// setDown makes the receiver answer 503 to everything, or stop doing so.
func (r *exReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.down = down
}

// closeListener closes the receiver's listener and connections, so that
// connections are refused until reopen.
func (r *exReceiver) closeListener(t *testing.T) {
	t.Helper()

	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()

	if err := srv.Close(); err != nil {
		t.Fatalf("close the receiver: %v", err)
	}
}

// reopen listens again on the receiver's address.
func (r *exReceiver) reopen(t *testing.T) {
	t.Helper()

	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("reopen the receiver on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

// holdAnswers makes the receiver record each request as accepted but keep
// its answer until releaseAnswers.
func (r *exReceiver) holdAnswers() {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.hold = make(chan struct{})
}

// heldIDs returns the events whose answers are being held.
func (r *exReceiver) heldIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()

	return slices.Clone(r.held)
}

// releaseAnswers sends the held answers and stops holding new ones.
func (r *exReceiver) releaseAnswers() {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.hold != nil {
		close(r.hold)
		r.hold = nil
	}
}

// setReject makes the receiver answer 400 to the requests for which reject
// returns true. reject runs with the receiver locked.
func (r *exReceiver) setReject(reject func(d exDelivery) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()

	r.reject = reject
}

var exBodyKeys = []string{
	"attempts", "created_at", "id", "payload", "published_at", "status", "type",
}

func (r *exReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	d := exDelivery{Body: body, At: time.Now()}
	if _, port, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		d.From, _ = strconv.Atoi(port)
	}
	var problems []string
	if err := r.wh.Verify(body, req.Header); err != nil {
		problems = append(problems, fmt.Sprintf("signature does not verify: %v", err))
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, fmt.Sprintf("content-type %q", ct))
	}
	problems = append(problems, exCheckBody(&d)...)
	if id := req.Header.Get("webhook-id"); id != d.ID {
		problems = append(problems, fmt.Sprintf("webhook-id %q, body id %q", id, d.ID))
	}

	r.mu.Lock()
	status := http.StatusNoContent
	switch {
	case len(problems) > 0:
		status = http.StatusUnauthorized
	case r.down:
		status = http.StatusServiceUnavailable
	case r.reject != nil && r.reject(d):
		status = http.StatusBadRequest
	}
	d.Seq = len(r.requests)
	r.requests = append(r.requests, exRequest{exDelivery: d, Status: status})
	for _, p := range problems {
		r.problems = append(r.problems, fmt.Sprintf("request %d (event %s): %s; body %s",
			d.Seq, d.ID, p, body))
	}
	hold := r.hold
	if hold != nil {
		r.held = append(r.held, d.ID)
	}
	r.mu.Unlock()

	if hold != nil {
		<-hold
	}
	w.WriteHeader(status)
}

// exCheckBody fills d from the body and returns how the body breaks the
// contract: exactly seven keys, a string id and type, a JSON object
// payload, status "pending", an integer attempts, created_at in RFC 3339 UTC
// and published_at null.
func exCheckBody(d *exDelivery) []string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(d.Body, &fields); err != nil {
		return []string{fmt.Sprintf("body is not a JSON object: %v", err)}
	}

	var problems []string
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, exBodyKeys) {
		problems = append(problems, fmt.Sprintf("body keys %v, want %v", keys, exBodyKeys))
	}

	var status, createdAt string
	var attempts json.Number
	errs := []error{
		json.Unmarshal(fields["id"], &d.ID),
		json.Unmarshal(fields["type"], &d.Type),
		json.Unmarshal(fields["status"], &status),
		json.Unmarshal(fields["attempts"], &attempts),
		json.Unmarshal(fields["created_at"], &createdAt),
	}
	if err := errors.Join(errs...); err != nil {
		problems = append(problems, fmt.Sprintf("body fields: %v", err))
	}
	if status != "pending" {
		problems = append(problems, fmt.Sprintf("status %q, want \"pending\"", status))
	}
	if _, err := attempts.Int64(); err != nil {
		problems = append(problems, fmt.Sprintf("attempts %q is not an integer", attempts))
	}
	ts, err := time.Parse(time.RFC3339Nano, createdAt)
	if err != nil || !strings.HasSuffix(createdAt, "Z") || ts.IsZero() {
		problems = append(problems, fmt.Sprintf("created_at %q is not RFC 3339 UTC", createdAt))
	}
	if string(fields["published_at"]) != "null" {
		problems = append(problems,
			fmt.Sprintf("published_at %s, want null", fields["published_at"]))
	}

	d.Payload = fields["payload"]
	var payload struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal(d.Payload, &payload); err != nil || !bytes.HasPrefix(
		bytes.TrimSpace(d.Payload), []byte("{")) {
		problems = append(problems, fmt.Sprintf("payload %s is not a JSON object", d.Payload))
	}
	entity, _, _ := strings.Cut(d.Type, ".")
	d.Entity = entity + ":" + payload.ID.String()

	return problems
}

// all returns every request so far, in order of arrival.
func (r *exReceiver) all() []exRequest {
	r.mu.Lock()
	defer r.mu.Unlock()

	return slices.Clone(r.requests)
}

// delivered returns the accepted requests, in order of arrival.
func (r *exReceiver) delivered() []exDelivery {
	var out []exDelivery
	for _, req := range r.all() {
		if req.Status >= 200 && req.Status <= 299 {
			out = append(out, req.exDelivery)
		}
	}

	return out
}

// firsts returns the first accepted delivery of each event, in order of
// arrival, and how many accepted deliveries repeated an event.
func (r *exReceiver) firsts() (firsts []exDelivery, duplicates int) {
	seen := map[string]bool{}
	for _, d := range r.delivered() {
		if seen[d.ID] {
			duplicates++
			continue
		}
		seen[d.ID] = true
		firsts = append(firsts, d)
	}

	return firsts, duplicates
}

// exByEntity groups deliveries by entity, keeping their order of arrival.
func exByEntity(ds []exDelivery) map[string][]exDelivery {
	out := map[string][]exDelivery{}
	for _, d := range ds {
		out[d.Entity] = append(out[d.Entity], d)
	}

	return out
}

// exCheckSameEvents fails the test if two deliveries of one event id differ
// in type or payload.
func exCheckSameEvents(t *testing.T, ds []exDelivery) {
	t.Helper()

	first := map[string]exDelivery{}
	for _, d := range ds {
		f, ok := first[d.ID]
		if !ok {
			first[d.ID] = d
			continue
		}
		if f.Type != d.Type || !bytes.Equal(f.Payload, d.Payload) {
			t.Errorf("event %s arrived as %s %s and as %s %s",
				d.ID, f.Type, f.Payload, d.Type, d.Payload)
		}
	}
}

// exDB is the database a shop runs on, as the shop's DATABASE_URL and as a
// connection of the test's own.
type exDB struct {
	URL string
	DB  *bun.DB
}

// exOpenDB returns a fresh database of the named dialect ("sqlite" or
// "postgres"). PostgreSQL gets a schema of its own.
func exOpenDB(t *testing.T, dialect string) exDB {
	t.Helper()

	switch dialect {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "shop.db")
		return exDB{URL: path, DB: testdb.SQLite(t, path)}
	case "postgres":
		dsn := os.Getenv(testdb.EnvPostgres)
		if dsn == "" {
			t.Fatalf("%s is not set; run ./scripts/test.sh, which starts PostgreSQL",
				testdb.EnvPostgres)
		}
		db := testdb.Postgres(t)

		var schema string
		err := db.QueryRowContext(context.Background(), "SELECT current_schema()").Scan(&schema)
		if err != nil {
			t.Fatalf("read the test schema: %v", err)
		}
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return exDB{URL: dsn + sep + "search_path=" + schema, DB: db}
	default:
		t.Fatalf("unknown dialect %q", dialect)
		return exDB{}
	}
}

// exRow is one row of the events table.
type exRow struct {
	ID       string
	Type     string
	Status   string
	Attempts int
}

// rows returns the events table, oldest first.
func (d exDB) rows(t *testing.T) []exRow {
	t.Helper()

	rows, err := d.DB.QueryContext(context.Background(),
		"SELECT id, type, status, attempts FROM events ORDER BY created_at")
	if err != nil {
		t.Fatalf("read the events table: %v", err)
	}
	defer rows.Close()

	var out []exRow
	for rows.Next() {
		var r exRow
		if err := rows.Scan(&r.ID, &r.Type, &r.Status, &r.Attempts); err != nil {
			t.Fatalf("scan an events row: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the events table: %v", err)
	}

	return out
}

// count returns the result of a SELECT count(*) query.
func (d exDB) count(t *testing.T, query string, args ...any) int {
	t.Helper()

	var n int
	if err := d.DB.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}

	return n
}

// pending returns the number of events rows still pending.
func (d exDB) pending(t *testing.T) int {
	t.Helper()

	return d.count(t, "SELECT count(*) FROM events WHERE status = 'pending'")
}

// exShopEnv merges configuration maps, later ones winning.
func exShopEnv(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}

	return out
}

// exDialects runs fn as parallel subtests, once per dialect.
func exDialects(t *testing.T, dialects []string, fn func(t *testing.T, dialect string)) {
	t.Helper()

	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// exMillis formats durations for the measurement logs.
func exMillis(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)

	return fmt.Sprintf("n=%d min=%s median=%s p90=%s max=%s", len(s),
		s[0].Round(time.Microsecond), s[len(s)/2].Round(time.Microsecond),
		s[len(s)*9/10].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}
