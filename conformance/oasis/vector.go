package oasis

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ovh/kmip-go"
)

// Vector is one OASIS test-vector file: an ordered list of requests and the
// responses the reference server gave, kept as XML text so that placeholders
// can be substituted when the vector runs.
type Vector struct {
	Version string // directory of the file, e.g. "v1.4"
	File    string // base name, e.g. "SKLC-M-1-14.xml"
	Path    string // path the vector was loaded from ("" for Parse)
	Profile string // family prefix of the file name: "SKLC", "CS-BC", "TC", ...
	Pairs   []Pair
}

// Pair is one request and the response the reference server sent to it.
type Pair struct {
	Request      string // XML text of the RequestMessage element
	Response     string // XML text of the expected ResponseMessage element
	RequestLine  int    // line of the RequestMessage in the file
	ResponseLine int    // line of the ResponseMessage in the file
	// Repeat is set when the vector marks the request "# [REPEAT] until
	// <condition>": the reference client sent it again until the
	// response showed the condition (a key deactivating at a date in
	// the near future). The run resends it while the response does not
	// match, for up to Options.RepeatTimeout.
	Repeat bool
}

// Name identifies the vector as "version/file", the key used by
// NotApplicable and in reports.
func (v *Vector) Name() string {
	return v.Version + "/" + v.File
}

// LoadError is the failure to load one vector file.
type LoadError struct {
	Version string
	File    string
	Err     error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%s/%s: %v", e.Version, e.File, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Result returns a failed Result for the file, so that a vector that cannot
// be loaded still appears, failing, in a report.
func (e *LoadError) Result() Result {
	return Result{
		Version:   e.Version,
		File:      e.File,
		Profile:   ProfileOf(e.File),
		Err:       e,
		FirstFail: -1,
	}
}

var versionDir = regexp.MustCompile(`^v\d+\.\d+$`)

// LoadDir loads every *.xml file in root and in its immediate
// subdirectories (the kmip-go layout is root/v1.0/*.xml ... root/v1.4/*.xml),
// sorted by version then file name. Files that fail to load are left out of
// the returned slice and reported together in the error, one *LoadError per
// file; the vectors that did load are returned either way.
func LoadDir(root string) ([]*Vector, error) {
	var paths []string
	top, err := filepath.Glob(filepath.Join(root, "*.xml"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, top...)
	nested, err := filepath.Glob(filepath.Join(root, "*", "*.xml"))
	if err != nil {
		return nil, err
	}
	paths = append(paths, nested...)
	if len(paths) == 0 {
		return nil, fmt.Errorf("no *.xml vector files under %s", root)
	}
	sort.Strings(paths)
	var (
		vectors []*Vector
		errs    []error
	)
	for _, p := range paths {
		v, err := Load(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vectors = append(vectors, v)
	}
	return vectors, errors.Join(errs...)
}

// Load reads and parses one vector file. The version is the name of the
// file's directory when it looks like "v1.4", otherwise the protocol
// version of the file's first request. Errors are *LoadError.
func Load(path string) (*Vector, error) {
	version := filepath.Base(filepath.Dir(path))
	if !versionDir.MatchString(version) {
		version = ""
	}
	file := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, &LoadError{Version: version, File: file, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVectorFileSize+1))
	if err != nil {
		return nil, &LoadError{Version: version, File: file, Err: err}
	}
	if len(data) > maxVectorFileSize {
		return nil, &LoadError{Version: version, File: file, Err: fmt.Errorf("file larger than %d bytes", maxVectorFileSize)}
	}
	v, err := Parse(version, file, data)
	if err != nil {
		return nil, err
	}
	v.Path = path
	return v, nil
}

// Parse parses the text of a vector file. version may be empty, in which
// case the protocol version of the first request is used. Every message is
// checked: well-formed XML, known tags and types, values that parse, and
// requests that the kmip codec can decode. Errors are *LoadError.
func Parse(version, file string, data []byte) (*Vector, error) {
	fail := func(err error) (*Vector, error) {
		return nil, &LoadError{Version: version, File: file, Err: err}
	}
	pairs, err := splitMessages(data)
	if err != nil {
		return fail(err)
	}
	if len(pairs) == 0 {
		return fail(errors.New("no RequestMessage/ResponseMessage pair"))
	}
	for i, p := range pairs {
		if err := checkPair(p); err != nil {
			return fail(fmt.Errorf("pair %d: %w", i, err))
		}
	}
	if version == "" {
		version = messageVersion(pairs[0].Request)
	}
	return &Vector{
		Version: version,
		File:    file,
		Profile: ProfileOf(file),
		Pairs:   pairs,
	}, nil
}

// splitMessages finds the RequestMessage and ResponseMessage elements of a
// vector file, at top level or inside a <KMIP> wrapper, and returns them in
// request/response pairs. Text between elements (stray line numbers,
// "# TIME n" notes), comments and processing instructions are ignored.
func splitMessages(data []byte) ([]Pair, error) {
	dec := xml.NewDecoder(strings.NewReader(string(data)))
	lc := &lineCounter{data: data}
	var (
		pairs   []Pair
		pending *Pair
		depth   int
		repeat  bool // a "[REPEAT]" note precedes the next request
	)
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lc.at(dec.InputOffset()), err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if strings.Contains(string(t), "[REPEAT]") {
				repeat = true
			}
		case xml.StartElement:
			name := t.Name.Local
			switch {
			case name == "KMIP" && depth == 0:
				depth++
				continue
			case name != "RequestMessage" && name != "ResponseMessage":
				return nil, fmt.Errorf("line %d: unexpected element <%s> between messages", lc.at(before), name)
			}
			line := lc.at(before)
			if err := dec.Skip(); err != nil {
				return nil, fmt.Errorf("line %d: <%s>: %w", line, name, err)
			}
			text := string(data[before:dec.InputOffset()])
			// The offset before the token may include leading
			// whitespace; start the text at the element itself.
			if i := strings.Index(text, "<"); i > 0 {
				line += strings.Count(text[:i], "\n")
				text = text[i:]
			}
			if name == "RequestMessage" {
				if pending != nil {
					return nil, fmt.Errorf("line %d: RequestMessage follows the RequestMessage of line %d without a ResponseMessage", line, pending.RequestLine)
				}
				pending = &Pair{Request: text, RequestLine: line, Repeat: repeat}
				repeat = false
				continue
			}
			if pending == nil {
				return nil, fmt.Errorf("line %d: ResponseMessage without a preceding RequestMessage", line)
			}
			pending.Response, pending.ResponseLine = text, line
			pairs = append(pairs, *pending)
			pending = nil
			if len(pairs) > maxPairs {
				return nil, fmt.Errorf("more than %d request/response pairs", maxPairs)
			}
		case xml.EndElement:
			if depth == 0 {
				return nil, fmt.Errorf("line %d: unbalanced </%s>", lc.at(before), t.Name.Local)
			}
			depth--
		}
	}
	if depth != 0 {
		return nil, errors.New("<KMIP> is not closed")
	}
	if pending != nil {
		return nil, fmt.Errorf("line %d: RequestMessage without a ResponseMessage", pending.RequestLine)
	}
	return pairs, nil
}

// checkPair parses both messages of a pair and checks that every value can
// be interpreted, with placeholders standing for values of their type, and
// that the request decodes into a kmip.RequestMessage.
func checkPair(p Pair) error {
	req, err := parseMessage(p.Request, p.RequestLine)
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if req.Tag != kmip.TagRequestMessage {
		return fmt.Errorf("request: root is <%s>, want <RequestMessage>", req.label())
	}
	resp, err := parseMessage(p.Response, p.ResponseLine)
	if err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if resp.Tag != kmip.TagResponseMessage {
		return fmt.Errorf("response: root is <%s>, want <ResponseMessage>", resp.label())
	}
	if _, err := toValue(resp, 0, samplePlaceholder); err != nil {
		return fmt.Errorf("response: %w", err)
	}
	if _, err := toValue(req, 0, samplePlaceholder); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	text, err := rewriteRequest(p.Request, func(ref valueRef) (string, bool, error) {
		if ref.Name == "" {
			return "", false, nil
		}
		v, err := samplePlaceholder(&element{Type: ref.Type}, ref.Name)
		if err != nil {
			return "", false, err
		}
		s, err := formatXMLValue(v)
		return s, err == nil, err
	})
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if _, err := encodeRequest(text); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	return nil
}

// messageVersion returns "v<major>.<minor>" of a message's protocol version,
// or "" when it cannot be read.
func messageVersion(text string) string {
	el, err := parseMessage(text, 1)
	if err != nil {
		return ""
	}
	hdr := el.child(kmip.TagRequestHeader)
	if hdr == nil {
		hdr = el.child(kmip.TagResponseHeader)
	}
	if hdr == nil {
		return ""
	}
	pv := hdr.child(kmip.TagProtocolVersion)
	if pv == nil {
		return ""
	}
	maj, mnr := pv.child(kmip.TagProtocolVersionMajor), pv.child(kmip.TagProtocolVersionMinor)
	if maj == nil || mnr == nil {
		return ""
	}
	return "v" + maj.Value + "." + mnr.Value
}

// ProfileOf derives the profile family of a vector from its file name:
// "SKLC_M_1_10_x.xml" and "SKLC-M-1-14.xml" give "SKLC",
// "CS-BC-M-GCM-1-14.xml" and "CS_BC_M_14_12_x.xml" give "CS-BC",
// "TC-DERIVEKEY-1-10.xml" and "TC_311_10_x.xml" give "TC",
// "SUITEB_128-M-1-13.xml" gives "SUITEB".
func ProfileOf(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	tokens := strings.FieldsFunc(strings.ToUpper(base), func(r rune) bool { return r == '-' || r == '_' || r == ' ' })
	switch {
	case len(tokens) == 0:
		return ""
	case tokens[0] == "CS" && len(tokens) > 1:
		return "CS-" + tokens[1]
	default:
		return tokens[0]
	}
}
