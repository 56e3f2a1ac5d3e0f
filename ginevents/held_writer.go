package ginevents

import (
	"bufio"
	"bytes"
	"errors"
	"maps"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"
)

// heldWriter keeps the status, headers and body a handler writes until the
// transaction has committed.
type heldWriter struct {
	orig   gin.ResponseWriter
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

var _ gin.ResponseWriter = (*heldWriter)(nil)

func newHeldWriter(orig gin.ResponseWriter) *heldWriter {
	return &heldWriter{orig: orig, header: orig.Header().Clone(), status: http.StatusOK}
}

func (w *heldWriter) Header() http.Header { return w.header }

func (w *heldWriter) WriteHeader(code int) {
	if code > 0 && !w.wrote {
		w.status = code
	}
}

func (w *heldWriter) WriteHeaderNow() { w.wrote = true }

func (w *heldWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}

func (w *heldWriter) WriteString(s string) (int, error) {
	w.wrote = true
	return w.body.WriteString(s)
}

func (w *heldWriter) Status() int { return w.status }

func (w *heldWriter) Size() int {
	if !w.wrote {
		return -1
	}
	return w.body.Len()
}

func (w *heldWriter) Written() bool { return w.wrote }

// Flush does nothing: nothing may reach the client before the commit.
func (w *heldWriter) Flush() {}

// Hijack is refused: a hijacked connection would escape the transaction.
func (w *heldWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("ginevents: cannot hijack a transactional request")
}

func (w *heldWriter) CloseNotify() <-chan bool { return w.orig.CloseNotify() }

func (w *heldWriter) Pusher() http.Pusher { return nil }

// release writes what the handler wrote to the client.
func (w *heldWriter) release() {
	h := w.orig.Header()
	clear(h)
	maps.Copy(h, w.header)

	w.orig.WriteHeader(w.status)
	if w.body.Len() > 0 {
		_, _ = w.orig.Write(w.body.Bytes())
	} else {
		w.orig.WriteHeaderNow()
	}
}
