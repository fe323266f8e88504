package conformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/minikms/minikms/conformance/oasis"
	"github.com/minikms/minikms/engine"
	"github.com/minikms/minikms/internal/testkms"
	"github.com/ovh/kmip-go/ttlv"
)

type printRT struct{ rt oasis.RoundTripper }

func (p printRT) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	if os.Getenv("OASIS_DEBUG_REQ") != "" {
		var v ttlv.Value
		if d, e := ttlv.NewTTLVDecoder(req); e == nil && v.DecodeTTLV(&d) == nil {
			fmt.Println(string(ttlv.MarshalText(v)))
		}
	}
	resp, err := p.rt.RoundTrip(ctx, req)
	if err == nil {
		var v ttlv.Value
		if d, e := ttlv.NewTTLVDecoder(resp); e == nil && v.DecodeTTLV(&d) == nil {
			fmt.Println(string(ttlv.MarshalText(v)))
		}
	}
	return resp, err
}

// TestDebugOne replays one vector (OASIS_DEBUG=v1.4/FILE.xml) and prints
// every response; OASIS_DEBUG_REQ=1 prints the requests too.
func TestDebugOne(t *testing.T) {
	f := os.Getenv("OASIS_DEBUG")
	if f == "" {
		t.Skip("set OASIS_DEBUG to a vector path to replay it verbosely")
	}
	env := testkms.Start(t, replayOptions)
	v, err := oasis.Load(filepath.Join(vectorDir(t), f))
	if err != nil {
		t.Fatal(err)
	}
	conn := env.Dial(t, "dbg", "admin", engine.RoleAdmin)
	r := v.Run(context.Background(), printRT{&oasis.TTLVConn{Conn: conn}})
	t.Log(r.Failure())
}
