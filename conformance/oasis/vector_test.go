package oasis

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovh/kmip-go/ttlv"
)

const createRequest = `<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="2"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <RequestPayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <TemplateAttribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Algorithm"/>
          <AttributeValue type="Enumeration" value="AES"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
          <AttributeValue type="Integer" value="Encrypt   Decrypt"/>
        </Attribute>
      </TemplateAttribute>
    </RequestPayload>
  </BatchItem>
</RequestMessage>`

const createResponse = `<ResponseMessage>
  <ResponseHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="2"/>
    </ProtocolVersion>
    <TimeStamp type="DateTime" value="2012-04-27T08:12:24+00:00"/>
    <BatchCount type="Integer" value="1"/>
  </ResponseHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <ResultStatus type="Enumeration" value="Success"/>
    <ResponsePayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
    </ResponsePayload>
  </BatchItem>
</ResponseMessage>`

func TestParseToleratesDirt(t *testing.T) {
	cases := map[string]string{
		"wrapped":   "<KMIP>\n" + createRequest + "\n" + createResponse + "\n</KMIP>\n",
		"unwrapped": `<?xml version="1.0"?>` + "\n<!-- comment -->\n" + createRequest + createResponse,
		"line numbers and time notes": "<?xml version=\"1.0\"?>\n<KMIP>\n  # TIME 0 " + createRequest +
			"\n  0037 0038 0039 0040 " + createResponse + "\n 0055 0056\n0057 # TIME 1\n</KMIP>",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := Parse("v1.2", "SKLC_M_1_12_x.xml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(v.Pairs) != 1 || v.Profile != "SKLC" || v.Name() != "v1.2/SKLC_M_1_12_x.xml" {
				t.Fatalf("got %+v", v)
			}
			if !strings.HasPrefix(v.Pairs[0].Request, "<RequestMessage>") || !strings.HasSuffix(v.Pairs[0].Response, "</ResponseMessage>") {
				t.Fatalf("pair text not trimmed to the elements: %q", v.Pairs[0].Request[:20])
			}
		})
	}
}

func TestParseReportsMalformedVectors(t *testing.T) {
	swap := func(old, new string) string { return strings.Replace(createRequest, old, new, 1) }
	cases := map[string]string{
		"empty":                 "",
		"no pair":               "<KMIP></KMIP>",
		"request only":          createRequest,
		"response first":        createResponse + createRequest,
		"two requests":          createRequest + createRequest + createResponse,
		"unknown element":       "<KMIP><Nonsense/></KMIP>",
		"unknown tag":           swap("ObjectType", "ObjectTipe") + createResponse,
		"unknown type":          swap(`type="Enumeration" value="AES"`, `type="Enum" value="AES"`) + createResponse,
		"unknown enum name":     swap(`value="AES"`, `value="AESX"`) + createResponse,
		"bad mask name":         swap("Encrypt   Decrypt", "Encrypt Dance") + createResponse,
		"leaf without value":    swap(`<BatchCount type="Integer" value="1"/>`, `<BatchCount type="Integer"/>`) + createResponse,
		"leaf with children":    swap(`<BatchCount type="Integer" value="1"/>`, `<BatchCount type="Integer" value="1"><X/></BatchCount>`) + createResponse,
		"bad hex":               swap(`<ObjectType type="Enumeration" value="SymmetricKey"/>`, `<Data type="ByteString" value="zz"/>`) + createResponse,
		"unclosed":              "<KMIP>" + createRequest + createResponse,
		"truncated":             createRequest + createResponse[:100],
		"bad TTLV tag":          swap("<ObjectType ", `<TTLV tag="42zz" `) + createResponse,
		"NOW in a text":         swap(`type="Enumeration" value="AES"`, `type="TextString" value="$NOW"`) + createResponse,
		"wrong root":            strings.ReplaceAll(createRequest, "RequestMessage", "ResponseMessage") + createResponse,
		"deep nesting":          "<KMIP>" + strings.Repeat("<RequestMessage>", 1) + strings.Repeat("<RequestHeader>", 100) + strings.Repeat("</RequestHeader>", 100) + "</RequestMessage>" + createResponse + "</KMIP>",
		"stray closing element": createRequest + createResponse + "</KMIP>",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("v1.2", "X.xml", []byte(doc))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("got %v, want a *LoadError", err)
			}
			if le.File != "X.xml" || !strings.Contains(err.Error(), "v1.2/X.xml") {
				t.Fatalf("error %q does not name the file", err)
			}
			if r := le.Result(); r.Passed() || r.Failure() == "" {
				t.Fatalf("load failure result %+v", r)
			}
		})
	}
}

func TestParseTakesVersionFromFirstRequest(t *testing.T) {
	v, err := Parse("", "x.xml", []byte(createRequest+createResponse))
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "v1.2" {
		t.Fatalf("version %q", v.Version)
	}
}

func TestParseMarksRepeatedRequests(t *testing.T) {
	doc := "<KMIP>" + createRequest + createResponse + "\n# [REPEAT] until it works\n" + createRequest + createResponse + createRequest + createResponse + "</KMIP>"
	v, err := Parse("v1.2", "x.xml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := []bool{v.Pairs[0].Repeat, v.Pairs[1].Repeat, v.Pairs[2].Repeat}; got[0] || !got[1] || got[2] {
		t.Fatalf("repeat flags %v", got)
	}
}

func TestProfileOf(t *testing.T) {
	for file, want := range map[string]string{
		"SKLC_M_1_10_SymmetricKeyLifecycle_1.xml":          "SKLC",
		"SKLC_O_1_10-SymmetricKeysLifecycle_1.xml":         "SKLC",
		"SKLC-M-1-14.xml":                                  "SKLC",
		"CS-BC-M-GCM-1-14.xml":                             "CS-BC",
		"CS-BC-M-GCM-2-14_okms_test9.xml":                  "CS-BC",
		"CS_BC_M_14_12_Encrypt_and_Decrypt_with_Known.xml": "CS-BC",
		"CS-AC-M-OAEP-1-14.xml":                            "CS-AC",
		"CS-RNG-O-4-13.xml":                                "CS-RNG",
		"TC-DERIVEKEY-1-10.xml":                            "TC",
		"TC_311_10_Create_Destroy.xml":                     "TC",
		"TC-311-10-CREATE-DESTROY.xml":                     "TC",
		"AKLC_M_2_10_AsymmetricKey-2.xml":                  "AKLC",
		"OMOS-O-1-14.xml":                                  "OMOS",
		"SUITEB_128-M-1-13.xml":                            "SUITEB",
		"MSGENC-HTTPS-M-1-14.xml":                          "MSGENC",
		"v1.4/TL-M-3-14.xml":                               "TL",
	} {
		if got := ProfileOf(file); got != want {
			t.Errorf("ProfileOf(%q) = %q, want %q", file, got, want)
		}
	}
}

func TestLoadDirLoadsTheWholeCorpus(t *testing.T) {
	vectors := loadAll(t)
	perVersion := map[string]int{}
	for _, v := range vectors {
		perVersion[v.Version]++
		if v.Profile == "" || len(v.Pairs) == 0 || v.Path == "" {
			t.Errorf("%s: incomplete vector", v.Name())
		}
	}
	want := map[string]int{"v1.0": 64, "v1.1": 67, "v1.2": 66, "v1.3": 76, "v1.4": 137}
	for ver, n := range want {
		if perVersion[ver] != n {
			t.Errorf("%s: %d vectors, want %d", ver, perVersion[ver], n)
		}
	}
}

func TestLoadDirReportsBadFilesAndKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "v1.2"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, "v1.2", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("SKLC-M-1-12.xml", createRequest+createResponse)
	write("BAD-1-12.xml", createRequest)
	vectors, err := LoadDir(dir)
	if len(vectors) != 1 || vectors[0].Version != "v1.2" {
		t.Fatalf("vectors %v", vectors)
	}
	var le *LoadError
	if !errors.As(err, &le) || le.File != "BAD-1-12.xml" {
		t.Fatalf("error %v", err)
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Fatal("empty directory loaded")
	}
}

func TestNotApplicableNamesCorpusFiles(t *testing.T) {
	names := map[string]bool{}
	for _, v := range loadAll(t) {
		names[v.Name()] = true
	}
	for name, reason := range NotApplicable {
		if !names[name] {
			t.Errorf("NotApplicable names %s, which is not in the corpus", name)
		}
		if len(reason) < 40 {
			t.Errorf("%s: reason too short to be one: %q", name, reason)
		}
	}
}

// TestTypedEncodingKeepsEveryField checks, for every request of the
// corpus, that decoding into kmip.RequestMessage and encoding back loses
// or changes nothing compared with a direct generic encoding of the XML.
func TestTypedEncodingKeepsEveryField(t *testing.T) {
	for _, v := range loadAll(t) {
		for i, p := range v.Pairs {
			text, err := rewriteRequest(p.Request, func(ref valueRef) (string, bool, error) {
				if ref.Name == "" {
					return "", false, nil
				}
				x, err := samplePlaceholder(&element{Type: ref.Type}, ref.Name)
				if err != nil {
					return "", false, err
				}
				s, err := formatXMLValue(x)
				return s, err == nil, err
			})
			if err != nil {
				t.Fatalf("%s pair %d: %v", v.Name(), i, err)
			}
			typed, err := encodeRequest(text)
			if err != nil {
				t.Fatalf("%s pair %d: %v", v.Name(), i, err)
			}
			el, err := parseMessage(text, p.RequestLine)
			if err != nil {
				t.Fatalf("%s pair %d: %v", v.Name(), i, err)
			}
			gv, err := toValue(el, 0, samplePlaceholder)
			if err != nil {
				t.Fatalf("%s pair %d: %v", v.Name(), i, err)
			}
			if generic := ttlv.MarshalTTLV(gv); !bytes.Equal(typed, generic) {
				t.Errorf("%s pair %d: the typed codec changes the request", v.Name(), i)
			}
		}
	}
}
