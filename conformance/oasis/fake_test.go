package oasis

import (
	"context"
	"crypto/sha256"
	"fmt"
	"go/build"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"
)

// vectorRoot returns the directory of the OASIS vectors shipped with the
// kmip-go module: the version required by go.mod, in the module cache. It
// runs no subprocess, so that fuzz workers do not start the go tool.
func vectorRoot(t testing.TB) string {
	t.Helper()
	const module = "github.com/ovh/kmip-go"
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var gomod []byte
	for {
		if gomod, err = os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
	version := ""
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && (f[0] == module || len(f) >= 3 && f[0] == "require" && f[1] == module) {
			if f[0] == module {
				version = f[1]
			} else {
				version = f[2]
			}
		}
	}
	if version == "" {
		t.Fatalf("%s is not required by %s/go.mod", module, dir)
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			gopath = build.Default.GOPATH
		}
		cache = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	root := filepath.Join(cache, "github.com", "ovh", "kmip-go@"+version, "kmiptest", "testdata")
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("OASIS vectors not found (run go mod download %s): %v", module, err)
	}
	return root
}

var (
	loadOnce   sync.Once
	allVectors []*Vector
	loadErr    error
)

// loadAll loads the whole corpus once per test binary.
func loadAll(t testing.TB) []*Vector {
	t.Helper()
	root := vectorRoot(t)
	loadOnce.Do(func() { allVectors, loadErr = LoadDir(root) })
	if loadErr != nil {
		t.Fatalf("LoadDir: %v", loadErr)
	}
	return allVectors
}

// fakeServer answers each request of one vector with the vector's own
// expected response, as a different server would: placeholders get values
// it makes up, identifiers the reference server chose get new ones, dates
// from the reference server's clock become now. It checks that every Unique
// Identifier it receives is one it issued or one the vector spells out.
type fakeServer struct {
	t       testing.TB
	v       *Vector
	step    int
	values  map[string]any // placeholder or literal -> made-up value
	issued  map[string]bool
	edit    func(step int, resp *element) // optional corruption for negative tests
	counter int
	// differ makes the server answer the way another correct server
	// may: see perturb.
	differ    bool
	generated map[string]bool // identifiers of objects it generated
	lastReq   ttlv.Value
	// stall[i] wrong answers (stallEdit applied) are given to request i
	// before the server moves on, as a server whose state has not yet
	// reached what the vector expects.
	stall     map[int]int
	stallEdit func(resp *element)
	// sent holds the DateTime and TextString literals of the vector's
	// requests, clientAttrs the attribute names they set.
	sent        map[string]bool
	clientAttrs map[string]bool
}

func newFakeServer(t testing.TB, v *Vector) *fakeServer {
	f := &fakeServer{t: t, v: v, values: map[string]any{}, issued: map[string]bool{}, generated: map[string]bool{},
		sent: map[string]bool{}, clientAttrs: map[string]bool{}}
	for _, p := range v.Pairs {
		req, err := parseMessage(p.Request, p.RequestLine)
		if err != nil {
			continue
		}
		walkElements(req, func(e *element) {
			switch {
			case e.Type == ttlv.TypeDateTime || e.Type == ttlv.TypeTextString:
				f.sent[echoKey(e.Type, e.Value)] = true
			case e.Tag == kmip.TagAttribute:
				f.clientAttrs[attributeName(e)] = true
			}
		})
	}
	return f
}

func (f *fakeServer) RoundTrip(_ context.Context, req []byte) ([]byte, error) {
	if f.step >= len(f.v.Pairs) {
		return nil, fmt.Errorf("fake: request %d beyond the %d pairs of the vector", f.step, len(f.v.Pairs))
	}
	p := f.v.Pairs[f.step]
	step := f.step
	stalled := f.stall[step] > 0
	if stalled {
		f.stall[step]--
	} else {
		f.step++
	}
	if err := f.checkRequest(p, req); err != nil {
		return nil, fmt.Errorf("fake: step %d: %w", step, err)
	}
	exp, err := parseMessage(p.Response, p.ResponseLine)
	if err != nil {
		return nil, err
	}
	if f.edit != nil {
		f.edit(step, exp)
	}
	if stalled && f.stallEdit != nil {
		f.stallEdit(exp)
	}
	v, err := toValue(exp, 0, func(el *element, name string) (any, error) { return f.madeUp(el, name) })
	if err != nil {
		return nil, err
	}
	f.rewriteServerChoices(&v, exp, f.sent)
	if f.differ {
		f.perturb(&v, exp)
	}
	return ttlv.MarshalTTLV(v), nil
}

// madeUp returns this server's value for a placeholder.
func (f *fakeServer) madeUp(el *element, name string) (any, error) {
	if off, ok := nowOffset(name); ok {
		return time.Now().Add(time.Duration(off) * time.Second).Truncate(time.Second), nil
	}
	key := fmt.Sprintf("%s/%s", el.Type, name)
	if v, ok := f.values[key]; ok {
		return v, nil
	}
	f.counter++
	h := sha256.Sum256([]byte(name))
	var v any
	switch el.Type {
	case ttlv.TypeTextString:
		s := fmt.Sprintf("fake-%s-%d", strings.ToLower(name), f.counter)
		f.issued[s] = true
		v = s
	case ttlv.TypeByteString:
		v = h[:16+f.counter%16]
	case ttlv.TypeInteger:
		v = int32(f.counter)
	case ttlv.TypeLongInteger:
		v = int64(f.counter)
	case ttlv.TypeBigInteger:
		v = big.NewInt(int64(f.counter))
	case ttlv.TypeEnumeration:
		v = ttlv.Enum(1)
	case ttlv.TypeBoolean:
		v = true
	case ttlv.TypeDateTime:
		v = time.Now().Truncate(time.Second)
	case ttlv.TypeInterval:
		v = time.Duration(f.counter) * time.Second
	default:
		return nil, fmt.Errorf("no value for $%s of type %s", name, el.Type)
	}
	f.values[key] = v
	return v, nil
}

// rewriteServerChoices replaces, in the generic response v built from exp,
// the literal values only the reference server could have chosen: its
// clock (dates the client never sent) and its identifiers.
func (f *fakeServer) rewriteServerChoices(v *ttlv.Value, exp *element, sent map[string]bool) {
	st, ok := v.Value.(ttlv.Struct)
	if !ok {
		if s, ok := v.Value.(string); ok {
			// The client sent single spaces (the harness repairs the
			// vectors' runs of spaces); a server echoes those.
			v.Value = collapseSpaces(s)
		}
		if placeholderName(exp.Value) != "" || sent[echoKey(exp.Type, exp.Value)] {
			return
		}
		switch {
		case exp.Type == ttlv.TypeDateTime:
			v.Value = time.Now().Truncate(time.Second)
		case exp.Type == ttlv.TypeTextString && identifierTags[exp.Tag]:
			key := "literal/" + exp.Value
			if _, ok := f.values[key]; !ok {
				f.counter++
				id := fmt.Sprintf("fake-literal-%d", f.counter)
				f.values[key] = id
				f.issued[id] = true
			}
			v.Value = f.values[key]
		}
		return
	}
	for i := range st {
		if i < len(exp.Children) {
			f.rewriteServerChoices(&st[i], exp.Children[i], sent)
		}
	}
}

// checkRequest verifies that every identifier the harness sent is one this
// server issued or a literal of the vector's request.
func (f *fakeServer) checkRequest(p Pair, data []byte) error {
	got, err := decodeAny(data)
	if err != nil {
		return fmt.Errorf("request does not decode: %w", err)
	}
	f.lastReq = got
	if got.Tag != kmip.TagRequestMessage {
		return fmt.Errorf("request tag %s", ttlv.TagString(got.Tag))
	}
	var bad []string
	walkValues(got, func(v ttlv.Value) {
		s, ok := v.Value.(string)
		if !ok || !identifierTags[v.Tag] {
			return
		}
		if !f.issued[s] && !strings.Contains(p.Request, `"`+s+`"`) {
			bad = append(bad, s)
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("request carries identifiers this server never issued: %v", bad)
	}
	return nil
}

func decodeAny(b []byte) (ttlv.Value, error) {
	var v ttlv.Value
	err := safely("decode", func() error {
		dec, err := ttlv.NewTTLVDecoder(b)
		if err != nil {
			return err
		}
		return v.DecodeTTLV(&dec)
	})
	return v, err
}
