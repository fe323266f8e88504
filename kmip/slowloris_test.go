package kmip_test

import (
	"sync"
	"testing"
	"time"

	"github.com/minikms/minikms/kmip"
)

// TestSlowlorisDoesNotHoldTheServer: many slow clients at once (trickling
// a header byte at a time, or sending half a message then nothing) do not
// delay other clients, and each is cut at the read timeout, well before
// the idle timeout.
func TestSlowlorisDoesNotHoldTheServer(t *testing.T) {
	const (
		readTimeout = 500 * time.Millisecond
		slow        = 16
	)
	env := startKMS(t, func(c *kmip.Config) {
		c.ReadTimeout = readTimeout
		c.IdleTimeout = time.Minute
		c.MaxConnsPerClient = 2 * slow
	})
	full := validRequest()
	var wg sync.WaitGroup
	cut := make(chan time.Duration, slow)
	for i := range slow {
		w := dialAdmin(t, env)
		w.servesOK() // connected and served once: now idle
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if i%2 == 0 {
				// Half a message, then silence.
				w.conn.SetWriteDeadline(time.Now().Add(time.Second))
				w.conn.Write(full[:len(full)/2])
			} else {
				// One byte every 100 ms, forever.
				go func() {
					for j := 0; ; j++ {
						w.conn.SetWriteDeadline(time.Now().Add(time.Second))
						if _, err := w.conn.Write(full[j%len(full) : j%len(full)+1]); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}()
			}
			w.conn.SetReadDeadline(time.Now().Add(readTimeout + 5*time.Second))
			var b [1]byte
			_, err := w.conn.Read(b[:])
			if !isClosed(err) {
				t.Errorf("slow client %d was not cut: %v", i, err)
			}
			cut <- time.Since(start)
			w.conn.Close()
		}()
	}
	// Meanwhile a normal client is served promptly, again and again.
	w := dialAdmin(t, env)
	for range 20 {
		start := time.Now()
		w.servesOK()
		if d := time.Since(start); d > readTimeout/2 {
			t.Fatalf("a normal request took %v while slow clients were connected", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	close(cut)
	for d := range cut {
		if d < readTimeout-50*time.Millisecond || d > readTimeout+3*time.Second {
			t.Errorf("a slow client was cut after %v, want about the read timeout %v", d, readTimeout)
		}
	}
	w.servesOK()
	w.conn.Close()
	waitConns(t, env, 0, 2*time.Second)
}
