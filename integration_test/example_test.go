package integration_test

// End-to-end tests of the example shop: the real binary, driven over HTTP as
// a new user would drive it, delivering to real webhook receivers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// exAllDialects are the databases the cheap end-to-end tests run on.
var exAllDialects = []string{"sqlite", "postgres"}

// exWant is one event a test expects, with the entity as the API showed it.
type exWant struct {
	Type   string
	Entity []byte
}

// exCheckEntities fails the test unless each entity received exactly the
// wanted events, in order, with payloads equal to what the API returned.
func exCheckEntities(t *testing.T, firsts []exDelivery, want map[string][]exWant) {
	t.Helper()

	got := exByEntity(firsts)
	for key, ws := range want {
		ds := got[key]
		var gotTypes, wantTypes []string
		for _, d := range ds {
			gotTypes = append(gotTypes, d.Type)
		}
		for _, w := range ws {
			wantTypes = append(wantTypes, w.Type)
		}
		if !slices.Equal(gotTypes, wantTypes) {
			t.Errorf("%s: events %v, want %v", key, gotTypes, wantTypes)
			continue
		}
		for i, w := range ws {
			exSameJSON(t, fmt.Sprintf("%s %s payload", key, w.Type), ds[i].Payload, w.Entity)
		}
	}
	for key, ds := range got {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: unexpected events, first %s %s", key, ds[0].Type, ds[0].Payload)
		}
	}
}

// exWaitDrained waits until the receiver has accepted n distinct events and
// the events table has n rows, none pending.
func exWaitDrained(t *testing.T, rcv *exReceiver, db exDB, n int, timeout time.Duration) {
	t.Helper()

	exEventually(t, timeout, fmt.Sprintf("%d events delivered and published", n), func() bool {
		firsts, _ := rcv.firsts()
		return len(firsts) >= n && db.count(t, "SELECT count(*) FROM events") >= n &&
			db.pending(t) == 0
	})
}

// exCheckTableMatches fails the test unless the events table holds exactly
// the delivered events, every one published after no failed attempt.
func exCheckTableMatches(t *testing.T, db exDB, firsts []exDelivery) {
	t.Helper()

	delivered := map[string]string{}
	for _, d := range firsts {
		delivered[d.ID] = d.Type
	}

	rows := db.rows(t)
	if len(rows) != len(firsts) {
		t.Errorf("events table has %d rows, the receiver got %d distinct events",
			len(rows), len(firsts))
	}
	for _, r := range rows {
		if r.Status != "published" || r.Attempts != 0 {
			t.Errorf("event %s %s: status %s, attempts %d; want published, 0",
				r.ID, r.Type, r.Status, r.Attempts)
		}
		if typ, ok := delivered[r.ID]; !ok || typ != r.Type {
			t.Errorf("event %s %s in the table was not delivered as such (got %q)",
				r.ID, r.Type, typ)
		}
	}
}

func TestExample_fullFlow(t *testing.T) {
	t.Parallel()

	exDialects(t, exAllDialects, func(t *testing.T, dialect string) {
		rcv := exNewReceiver(t)
		db := exOpenDB(t, dialect)
		shop := exStartShop(t, t.TempDir(), exShopEnv(rcv.env(), map[string]string{
			"DATABASE_URL":         db.URL,
			"EVENTS_POLL_INTERVAL": "250ms",
		}))

		created := map[int64]time.Time{}
		create := func(name string, price, stock int64) ([]byte, int64) {
			b, id := shop.createProduct(t, name, price, stock)
			created[id] = time.Now()
			return b, id
		}

		lamp, lampID := create("Lamp", 1999, 5)
		desk, deskID := create("Desk", 15000, 1)
		chair, chairID := create("Chair", 4500, 3)
		if lampID == deskID || deskID == chairID || lampID == chairID {
			t.Fatalf("product ids are not unique: %d %d %d", lampID, deskID, chairID)
		}
		exSameJSON(t, "GET the new lamp", shop.call(t, http.StatusOK, http.MethodGet,
			fmt.Sprintf("/products/%d", lampID), ""), lamp)

		lampPatched := shop.call(t, http.StatusOK, http.MethodPatch,
			fmt.Sprintf("/products/%d", lampID), `{"name":"Desk lamp"}`)
		deskPatched := shop.call(t, http.StatusOK, http.MethodPatch,
			fmt.Sprintf("/products/%d", deskID), `{"price_cents":14000,"stock":2}`)
		chairPath := fmt.Sprintf("/products/%d", chairID)
		shop.call(t, http.StatusNoContent, http.MethodDelete, chairPath, "")

		shop.call(t, http.StatusNotFound, http.MethodDelete, chairPath, "")
		shop.call(t, http.StatusNotFound, http.MethodPatch, chairPath, `{"stock":1}`)
		shop.call(t, http.StatusNotFound, http.MethodGet, chairPath, "")

		order := shop.call(t, http.StatusCreated, http.MethodPost, "/orders",
			fmt.Sprintf(`{"product_id":%d,"quantity":2}`, lampID))
		orderID := exID(t, order)

		// Refused requests: none of them may persist anything or emit.
		shop.call(t, http.StatusConflict, http.MethodPost, "/orders",
			fmt.Sprintf(`{"product_id":%d,"quantity":3}`, deskID))
		shop.call(t, http.StatusBadRequest, http.MethodPost, "/orders",
			fmt.Sprintf(`{"product_id":%d,"quantity":`, lampID))
		shop.call(t, http.StatusBadRequest, http.MethodPost, "/products", `{"name":"Sofa",`)
		shop.call(t, http.StatusBadRequest, http.MethodPost, "/products",
			`{"name":"","price_cents":1,"stock":1}`)
		shop.call(t, http.StatusBadRequest, http.MethodPatch,
			fmt.Sprintf("/products/%d", deskID), `{"stock":`)
		shop.call(t, http.StatusNotFound, http.MethodPost, "/orders",
			`{"product_id":999999,"quantity":1}`)

		lampNow := shop.call(t, http.StatusOK, http.MethodGet,
			fmt.Sprintf("/products/%d", lampID), "")
		deskNow := shop.call(t, http.StatusOK, http.MethodGet,
			fmt.Sprintf("/products/%d", deskID), "")
		exSameJSON(t, "desk after the refused order", deskNow, deskPatched)

		var lampState struct{ Stock int64 }
		_ = json.Unmarshal(lampNow, &lampState)
		if lampState.Stock != 3 {
			t.Errorf("lamp stock after ordering 2 of 5 is %d, want 3", lampState.Stock)
		}

		want := map[string][]exWant{
			fmt.Sprintf("product:%d", lampID): {
				{"product.created", lamp}, {"product.updated", lampPatched},
				{"product.updated", lampNow},
			},
			fmt.Sprintf("product:%d", deskID): {
				{"product.created", desk}, {"product.updated", deskPatched},
			},
			fmt.Sprintf("product:%d", chairID): {
				{"product.created", chair}, {"product.removed", chair},
			},
			fmt.Sprintf("order:%d", orderID): {{"order.created", order}},
		}
		exWaitDrained(t, rcv, db, 8, 60*time.Second)

		firsts, dups := rcv.firsts()
		exCheckEntities(t, firsts, want)
		exCheckSameEvents(t, rcv.delivered())
		exCheckTableMatches(t, db, firsts)
		if dups != 0 {
			t.Errorf("a healthy receiver got %d duplicate deliveries", dups)
		}

		if n := db.count(t, "SELECT count(*) FROM orders"); n != 1 {
			t.Errorf("orders table has %d rows, want 1", n)
		}
		if n := db.count(t, "SELECT stock FROM products WHERE id = ?", deskID); n != 2 {
			t.Errorf("desk stock in the database is %d, want 2", n)
		}
		if n := db.count(t, "SELECT count(*) FROM products"); n != 2 {
			t.Errorf("products table has %d rows, want 2", n)
		}

		var lat []time.Duration
		for _, d := range firsts {
			if d.Type == "product.created" {
				lat = append(lat, d.At.Sub(created[exID(t, d.Payload)]))
			}
		}
		t.Logf("%s: 201 to delivery of product.created: %s", dialect, exMillis(lat))
	})
}

func TestExample_unicodeAndHTMLSurvive(t *testing.T) {
	t.Parallel()

	names := []string{
		"Café ☕ 🚀 👩🏽‍💻 🇯🇵",
		"שלום עולם",
		"مرحبا بالعالم \u200f(RTL)\u200e",
		`<script>alert("x&y")</script>&amp;"'`,
		"line\u2028sep\u2029para\ttab\\back\"quote",
		"e\u0301 versus \u00e9, ﬁ ligature, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
	}

	exDialects(t, exAllDialects, func(t *testing.T, dialect string) {
		rcv := exNewReceiver(t)
		db := exOpenDB(t, dialect)
		shop := exStartShop(t, t.TempDir(), exShopEnv(rcv.env(), map[string]string{
			"DATABASE_URL":         db.URL,
			"EVENTS_POLL_INTERVAL": "250ms",
		}))

		type sent struct {
			name string
			api  []byte
		}
		byEntity := map[string][]sent{}
		for i, name := range names {
			b, id := shop.createProduct(t, name, int64(100+i), 1)
			key := fmt.Sprintf("product:%d", id)
			byEntity[key] = append(byEntity[key], sent{name, b})

			renamed := names[(i+1)%len(names)] + " ✓"
			in, _ := json.Marshal(map[string]string{"name": renamed})
			pb := shop.call(t, http.StatusOK, http.MethodPatch,
				fmt.Sprintf("/products/%d", id), string(in))
			byEntity[key] = append(byEntity[key], sent{renamed, pb})
		}
		exWaitDrained(t, rcv, db, 2*len(names), 60*time.Second)

		firsts, _ := rcv.firsts()
		got := exByEntity(firsts)
		for key, ss := range byEntity {
			ds := got[key]
			if len(ds) != len(ss) {
				t.Errorf("%s: %d events, want %d", key, len(ds), len(ss))
				continue
			}
			for i, s := range ss {
				var p struct{ Name string }
				if err := json.Unmarshal(ds[i].Payload, &p); err != nil {
					t.Errorf("%s: payload %s: %v", key, ds[i].Payload, err)
				}
				if p.Name != s.name {
					t.Errorf("%s %s: name %q (% x), want %q (% x)", key, ds[i].Type,
						p.Name, p.Name, s.name, s.name)
				}
				if !bytes.Equal(ds[i].Payload, bytes.TrimSpace(s.api)) {
					t.Errorf("%s %s: payload bytes differ from the API's:\n got %s\n api %s",
						key, ds[i].Type, ds[i].Payload, s.api)
				}
			}
		}
	})
}

func TestExample_receiverOutage(t *testing.T) {
	t.Parallel()

	// SQLite sees a receiver that answers 503, PostgreSQL one whose listener
	// is closed, so that connections are refused.
	exDialects(t, exAllDialects, func(t *testing.T, dialect string) {
		rcv := exNewReceiver(t)
		db := exOpenDB(t, dialect)
		shop := exStartShop(t, t.TempDir(), exShopEnv(rcv.env(), map[string]string{
			"DATABASE_URL":         db.URL,
			"EVENTS_POLL_INTERVAL": "200ms",
		}))

		shop.createProduct(t, "before the outage", 1, 1)
		exWaitDrained(t, rcv, db, 1, 30*time.Second)

		refused := dialect == "postgres"
		if refused {
			rcv.closeListener(t)
		} else {
			rcv.setDown(true)
		}

		var ids []int64
		outage := time.Now()
		for i := 0; time.Since(outage) < 12*time.Second; i++ {
			_, id := shop.createProduct(t, fmt.Sprintf("during the outage %d", i), 1, 1)
			ids = append(ids, id)
			if i%3 == 0 {
				shop.call(t, http.StatusOK, http.MethodPatch, fmt.Sprintf("/products/%d", id),
					`{"stock":7}`)
			}
			time.Sleep(300 * time.Millisecond)
		}
		answered503 := len(rcv.all()) - 1

		if refused {
			rcv.reopen(t)
		} else {
			rcv.setDown(false)
		}
		recovered := time.Now()

		var rows []exRow
		exEventually(t, 120*time.Second, "the backlog drained after the outage", func() bool {
			rows = db.rows(t)
			return db.pending(t) == 0
		})
		drained := time.Since(recovered)

		maxAttempts := 0
		for _, r := range rows {
			maxAttempts = max(maxAttempts, r.Attempts)
			if r.Status != "published" {
				t.Errorf("event %s %s ended %s after %d attempts", r.ID, r.Type, r.Status,
					r.Attempts)
			}
		}

		firsts, dups := rcv.firsts()
		if len(firsts) != len(rows) {
			t.Errorf("the receiver got %d distinct events, the table has %d rows",
				len(firsts), len(rows))
		}
		got := exByEntity(firsts)
		for i, id := range ids {
			want := []string{"product.created"}
			if i%3 == 0 {
				want = append(want, "product.updated")
			}
			var types []string
			for _, d := range got[fmt.Sprintf("product:%d", id)] {
				types = append(types, d.Type)
			}
			if !slices.Equal(types, want) {
				t.Errorf("product %d: events %v, want %v", id, types, want)
			}
		}
		exCheckSameEvents(t, rcv.delivered())

		// Nothing forces a repeat here: every accepted delivery was answered.
		if dups != 0 {
			t.Errorf("%d duplicate deliveries after an outage with no lost answer", dups)
		}
		t.Logf("%s (connections refused=%v): %d events during a %s outage, %d requests "+
			"answered 503, drained %s after recovery, max attempts %d, duplicates %d",
			dialect, refused, len(rows)-1, recovered.Sub(outage).Round(time.Millisecond),
			answered503, drained.Round(time.Millisecond), maxAttempts, dups)
	})
}

func TestExample_poisonEventFails(t *testing.T) {
	t.Parallel()

	exDialects(t, exAllDialects, func(t *testing.T, dialect string) {
		rcv := exNewReceiver(t)
		db := exOpenDB(t, dialect)
		shop := exStartShop(t, t.TempDir(), exShopEnv(rcv.env(), map[string]string{
			"DATABASE_URL":         db.URL,
			"EVENTS_POLL_INTERVAL": "100ms",
		}))

		// The receiver refuses the product.created event of "poison" forever,
		// by its id once it has seen it.
		var poisonMu sync.Mutex
		var poisonID string
		poison := func() string {
			poisonMu.Lock()
			defer poisonMu.Unlock()
			return poisonID
		}
		rcv.setReject(func(d exDelivery) bool {
			poisonMu.Lock()
			defer poisonMu.Unlock()
			if poisonID == "" && d.Type == "product.created" &&
				bytes.Contains(d.Payload, []byte(`"name":"poison"`)) {
				poisonID = d.ID
			}
			return d.ID == poisonID
		})
		poisonRequests := func() int {
			n := 0
			for _, r := range rcv.all() {
				if r.ID == poison() {
					n++
				}
			}
			return n
		}

		_, pid := shop.createProduct(t, "poison", 1, 1)
		patched := shop.call(t, http.StatusOK, http.MethodPatch,
			fmt.Sprintf("/products/%d", pid), `{"stock":9}`)
		var others []int64
		for i := range 5 {
			_, id := shop.createProduct(t, fmt.Sprintf("fine %d", i), 1, 1)
			others = append(others, id)
		}

		poisonRow := func() exRow {
			id := poison()
			for _, r := range db.rows(t) {
				if id != "" && r.ID == id {
					return r
				}
			}
			return exRow{}
		}

		// Attempts 1 to 3 happen on the relay's own back-off (1s, then 5s).
		exEventually(t, 60*time.Second, "the poison event's third failed attempt", func() bool {
			return poisonRow().Attempts >= 3
		})
		if r := poisonRow(); r.Status != "pending" || r.Attempts != 3 {
			t.Fatalf("poison event after 3 failures: %s with %d attempts, want pending with 3",
				r.Status, r.Attempts)
		}
		exEventually(t, 30*time.Second, "the other products delivered", func() bool {
			got := exByEntity(rcv.delivered())
			for _, id := range others {
				if len(got[fmt.Sprintf("product:%d", id)]) == 0 {
					return false
				}
			}
			return true
		})
		if ds := exByEntity(rcv.delivered())[fmt.Sprintf("product:%d", pid)]; len(ds) != 0 {
			t.Errorf("the poison product's update overtook its refused creation: %s", ds[0].Type)
		}

		// The next back-offs are 25s and 2m05s. Making the row claimable
		// again once a failure is recorded stands for that wait; the row
		// cannot be claimed in between, since its back-off has not run out.
		for _, n := range []int{3, 4} {
			res, err := db.DB.ExecContext(context.Background(),
				"UPDATE events SET available_at = NULL "+
					"WHERE id = ? AND status = 'pending' AND attempts = ?", poison(), n)
			if err != nil {
				t.Fatalf("end the back-off after attempt %d: %v", n, err)
			}
			if k, _ := res.RowsAffected(); k != 1 {
				t.Fatalf("end the back-off after attempt %d: %d rows changed", n, k)
			}
			exEventually(t, 30*time.Second, fmt.Sprintf("failed attempt %d", n+1), func() bool {
				return poisonRow().Attempts > n
			})
		}

		exEventually(t, 10*time.Second, "the poison event marked failed", func() bool {
			return poisonRow().Status == "failed"
		})
		if r := poisonRow(); r.Attempts != 5 {
			t.Errorf("failed poison event has %d attempts, want 5", r.Attempts)
		}
		if n := poisonRequests(); n != 5 {
			t.Errorf("the receiver got the poison event %d times, want 5", n)
		}

		// Once the poison event failed, its product's next event goes out.
		key := fmt.Sprintf("product:%d", pid)
		exEventually(t, 30*time.Second, "the poison product's update delivered", func() bool {
			return len(exByEntity(rcv.delivered())[key]) > 0
		})
		ds := exByEntity(rcv.delivered())[key]
		if len(ds) != 1 || ds[0].Type != "product.updated" {
			t.Fatalf("poison product deliveries: %d, first %s", len(ds), ds[0].Type)
		}
		exSameJSON(t, "poison product's update", ds[0].Payload, patched)
		var lastPoison int
		for _, r := range rcv.all() {
			if r.ID == poison() {
				lastPoison = r.Seq
			}
		}
		if ds[0].Seq < lastPoison {
			t.Errorf("the update (request %d) came before the poison's last attempt (%d)",
				ds[0].Seq, lastPoison)
		}

		exEventually(t, 30*time.Second, "every other event published", func() bool {
			return db.pending(t) == 0
		})
		for _, r := range db.rows(t) {
			if r.ID != poison() && r.Status != "published" {
				t.Errorf("event %s %s: %s after %d attempts", r.ID, r.Type, r.Status, r.Attempts)
			}
		}
	})
}

// exLoadResult is the outcome of one POST /products under load.
type exLoadResult struct {
	status int
	body   []byte
	err    error
}

func TestExample_killDashNineUnderLoad(t *testing.T) {
	t.Parallel()

	rcv := exNewReceiver(t)
	db := exOpenDB(t, "sqlite")
	dir := t.TempDir()
	env := exShopEnv(rcv.env(), map[string]string{
		"DATABASE_URL":         db.URL,
		"EVENTS_POLL_INTERVAL": "200ms",
	})
	first := exStartShop(t, dir, env)

	const workers = 8
	var mu sync.Mutex
	results := map[string]exLoadResult{}
	var ok201 atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	loadStart := time.Now()
	for g := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("load-%d-%d", g, i)
				status, b, err := first.try(http.MethodPost, "/products",
					fmt.Sprintf(`{"name":%q,"price_cents":%d,"stock":1}`, name, i))
				mu.Lock()
				results[name] = exLoadResult{status, b, err}
				mu.Unlock()
				if status == http.StatusCreated {
					ok201.Add(1)
				}
				if err != nil {
					return
				}
			}
		})
	}

	// Kill the shop while the load goes on and the receiver holds the answer
	// to at least one delivery it accepted, so that the relay dies between
	// the receiver's acceptance and its own record of it.
	exEventually(t, 60*time.Second, "150 products created, 10 delivered", func() bool {
		return ok201.Load() >= 150 && len(rcv.delivered()) >= 10
	})
	firstDelivery := rcv.delivered()[0].At.Sub(loadStart)
	rcv.holdAnswers()
	exEventually(t, 60*time.Second, "a delivery in flight", func() bool {
		return len(rcv.heldIDs()) > 0
	})
	first.kill(t)
	killed := time.Now()
	held := rcv.heldIDs()
	rcv.releaseAnswers()
	stop.Store(true)
	wg.Wait()

	second := exStartShop(t, dir, env)
	exEventually(t, 120*time.Second, "every event published after the restart", func() bool {
		return db.pending(t) == 0
	})
	drained := time.Since(killed)

	stored := map[int64]string{}
	rows, err := db.DB.QueryContext(context.Background(), "SELECT id, name FROM products")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		stored[id] = name
	}
	_ = rows.Close()

	created := map[int64][]exDelivery{}
	for _, d := range rcv.delivered() {
		if d.Type == "product.created" {
			id := exID(t, d.Payload)
			created[id] = append(created[id], d)
		}
	}

	var inflight, failedRequests, dups int
	for name, r := range results {
		if r.status != http.StatusCreated {
			failedRequests++
			continue
		}
		id := exID(t, r.body)
		if stored[id] != name {
			t.Errorf("product %d (%s) got a 201 but is stored as %q", id, name, stored[id])
		}
		ds := created[id]
		if len(ds) == 0 {
			t.Errorf("product %d (%s) got a 201 but its product.created never arrived", id, name)
			continue
		}
		exSameJSON(t, fmt.Sprintf("product %d payload", id), ds[0].Payload, r.body)
	}
	for id, ds := range created {
		name, ok := stored[id]
		if !ok {
			t.Errorf("product.created for product %d, which is not in the database", id)
			continue
		}
		if r := results[name]; r.status != http.StatusCreated {
			inflight++ // committed, but the client saw the kill instead of a 201
		}
		dups += len(ds) - 1
	}
	for id, name := range stored {
		if len(created[id]) == 0 {
			t.Errorf("product %d (%s) is in the database but its event never arrived", id, name)
		}
	}
	for _, r := range db.rows(t) {
		if r.Status != "published" {
			t.Errorf("event %s %s: %s after %d attempts", r.ID, r.Type, r.Status, r.Attempts)
		}
	}
	if n := db.count(t, "SELECT count(*) FROM events"); n != len(stored) {
		t.Errorf("events table has %d rows for %d products", n, len(stored))
	}
	exCheckSameEvents(t, rcv.delivered())

	// The relay died before it heard the answers it was waiting for, so at
	// least once means those events arrive again.
	times := map[string]int{}
	for _, d := range rcv.delivered() {
		times[d.ID]++
	}
	for _, id := range held {
		if times[id] < 2 {
			t.Errorf("event %s was in flight at the kill but was delivered %d times, want >= 2",
				id, times[id])
		}
	}

	t.Logf("kill -9 after %d 201s with %d deliveries in flight: %d requests without a 201, "+
		"%d of them committed anyway, %d products stored, %d duplicate deliveries, "+
		"all published %s after the kill; first delivery %s after the load began",
		ok201.Load(), len(held), failedRequests, inflight, len(stored), dups,
		drained.Round(time.Millisecond), firstDelivery.Round(time.Millisecond))
	if second.exited() {
		t.Errorf("the restarted shop exited early")
	}
}

func TestExample_twoProcessesShareOneDatabase(t *testing.T) {
	t.Parallel()

	exDialects(t, exAllDialects, func(t *testing.T, dialect string) {
		rcv := exNewReceiver(t)
		db := exOpenDB(t, dialect)
		env := exShopEnv(rcv.env(), map[string]string{
			"DATABASE_URL":         db.URL,
			"EVENTS_POLL_INTERVAL": "100ms",
		})
		shops := []*exShop{exStartShop(t, t.TempDir(), env), exStartShop(t, t.TempDir(), env)}

		const perWorker = 25
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := map[int64]time.Time{}
		for w := range 4 {
			shop := shops[w%2]
			wg.Go(func() {
				for i := range perWorker {
					status, b, err := shop.try(http.MethodPost, "/products",
						fmt.Sprintf(`{"name":"shared-%d-%d","price_cents":1,"stock":10}`, w, i))
					if err != nil || status != http.StatusCreated {
						t.Errorf("POST /products: %d %s %v", status, b, err)
						return
					}
					var p struct{ ID int64 }
					_ = json.Unmarshal(b, &p)
					mu.Lock()
					created[p.ID] = time.Now()
					mu.Unlock()

					status, b, err = shop.try(http.MethodPatch,
						fmt.Sprintf("/products/%d", p.ID), `{"stock":9}`)
					if err != nil || status != http.StatusOK {
						t.Errorf("PATCH /products/%d: %d %s %v", p.ID, status, b, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}

		n := 4 * perWorker * 2
		exWaitDrained(t, rcv, db, n, 90*time.Second)

		firsts, dups := rcv.firsts()
		if dups != 0 {
			t.Errorf("two relays delivered %d events twice to a healthy receiver", dups)
		}
		exCheckTableMatches(t, db, firsts)
		for key, ds := range exByEntity(firsts) {
			if len(ds) != 2 || ds[0].Type != "product.created" || ds[1].Type != "product.updated" {
				var types []string
				for _, d := range ds {
					types = append(types, d.Type)
				}
				t.Errorf("%s: events %v, want [product.created product.updated]", key, types)
			}
		}

		var lat []time.Duration
		for _, d := range firsts {
			if d.Type == "product.created" {
				lat = append(lat, d.At.Sub(created[exID(t, d.Payload)]))
			}
		}
		t.Logf("%s: two processes, %d events, duplicates %d; 201 to delivery: %s",
			dialect, len(firsts), dups, exMillis(lat))

		// Tell the relays apart by the sockets each process holds.
		var split []int
		for _, shop := range shops {
			ports, err := exLocalPorts(shop.pid())
			if err != nil {
				t.Fatalf("find the sockets of shop %d: %v", shop.pid(), err)
			}
			n := 0
			for _, d := range firsts {
				if ports[d.From] {
					n++
				}
			}
			split = append(split, n)
			if n == 0 {
				t.Errorf("shop %d relayed nothing while the other relayed all", shop.pid())
			}
		}
		t.Logf("%s: deliveries by process: %v of %d", dialect, split, len(firsts))
	})
}

func TestExample_startupConfigErrors(t *testing.T) {
	t.Parallel()

	const badSecret = "whsec_this is not base64!!"
	cases := []struct {
		name    string
		env     map[string]string
		want    []string
		notWant string
	}{
		{
			name: "unknown destination",
			env:  map[string]string{"EVENTS_DESTINATION": "bogus"},
			want: []string{"EVENTS_DESTINATION", "bogus", "eventbridge, kafka, sqs, webhook"},
		},
		{
			name: "one unknown in a list",
			env:  map[string]string{"EVENTS_DESTINATION": "webhook,bogus"},
			want: []string{"EVENTS_DESTINATION", "bogus", "eventbridge, kafka, sqs, webhook"},
		},
		{
			name: "secret that does not decode",
			env: map[string]string{
				"EVENTS_DESTINATION":    "webhook",
				"EVENTS_WEBHOOK_URL":    "http://127.0.0.1:9/hooks",
				"EVENTS_WEBHOOK_SECRET": badSecret,
			},
			want:    []string{"EVENTS_WEBHOOK_SECRET"},
			notWant: badSecret,
		},
		{
			name: "webhook without a URL",
			env: map[string]string{
				"EVENTS_DESTINATION":    "webhook",
				"EVENTS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			},
			want: []string{"EVENTS_WEBHOOK_URL"},
		},
		{
			name: "webhook without a secret",
			env: map[string]string{
				"EVENTS_DESTINATION": "webhook",
				"EVENTS_WEBHOOK_URL": "http://127.0.0.1:9/hooks",
			},
			want: []string{"EVENTS_WEBHOOK_SECRET"},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			env := exShopEnv(tc.env, map[string]string{
				"HOST": "127.0.0.1", "PORT": exFreePort(t),
			})
			shop := exLaunch(t, t.TempDir(), env)
			code := shop.wait(t, 60*time.Second)
			out := shop.Logs.String()

			if code == 0 {
				t.Errorf("exit status 0, want non-zero; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not name %q:\n%s", w, out)
				}
			}
			if tc.notWant != "" && strings.Contains(out, tc.notWant) {
				t.Errorf("output shows the secret %q:\n%s", tc.notWant, out)
			}
			if strings.Contains(out, "shop listening") {
				t.Errorf("the shop listened despite the bad configuration:\n%s", out)
			}
		})
	}
}

func TestExample_demoReceiverVerifies(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	shop := exStartShop(t, dir, nil)

	_, id := shop.createProduct(t, "demo kettle", 2500, 4)

	var line string
	exEventually(t, 30*time.Second, "the demo receiver's log line", func() bool {
		lines := shop.Logs.lines(`msg="webhook received"`, "event_type=product.created")
		if len(lines) == 0 {
			return false
		}
		line = lines[0]
		return true
	})
	for _, want := range []string{
		"signature=verified",
		fmt.Sprintf(`\"id\":%d`, id),
		`\"name\":\"demo kettle\"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("the demo receiver's line lacks %s:\n%s", want, line)
		}
	}
	if rejected := shop.Logs.lines("webhook rejected"); len(rejected) > 0 {
		t.Errorf("the demo receiver rejected deliveries:\n%s", strings.Join(rejected, "\n"))
	}

	if _, err := os.Stat(filepath.Join(dir, "example.db")); err != nil {
		t.Errorf("with DATABASE_URL unset the shop should use example.db in its directory: %v",
			err)
	}
}
