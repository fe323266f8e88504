package oasis_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ovh/kmip-go"
	"github.com/ovh/kmip-go/ttlv"

	"github.com/minikms/minikms/conformance/oasis"
)

const discoverVersions = `<KMIP>
# TIME 0
<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="4"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="DiscoverVersions"/>
    <RequestPayload/>
  </BatchItem>
</RequestMessage>
<ResponseMessage>
  <ResponseHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="4"/>
    </ProtocolVersion>
    <TimeStamp type="DateTime" value="2017-03-30T10:00:00+00:00"/>
    <BatchCount type="Integer" value="1"/>
  </ResponseHeader>
  <BatchItem>
    <Operation type="Enumeration" value="DiscoverVersions"/>
    <ResultStatus type="Enumeration" value="Success"/>
    <ResponsePayload>
      <ProtocolVersion>
        <ProtocolVersionMajor type="Integer" value="1"/>
        <ProtocolVersionMinor type="Integer" value="4"/>
      </ProtocolVersion>
      <ProtocolVersion>
        <ProtocolVersionMajor type="Integer" value="1"/>
        <ProtocolVersionMinor type="Integer" value="3"/>
      </ProtocolVersion>
    </ResponsePayload>
  </BatchItem>
</ResponseMessage>
</KMIP>`

// server stands for a KMIP server that supports versions 2.0 down to 1.3.
type server struct{}

func (server) RoundTrip(_ context.Context, req []byte) ([]byte, error) {
	v := func(major, minor int32) ttlv.Value {
		return ttlv.Value{Tag: kmip.TagProtocolVersion, Value: ttlv.Struct{
			{Tag: kmip.TagProtocolVersionMajor, Value: major},
			{Tag: kmip.TagProtocolVersionMinor, Value: minor},
		}}
	}
	resp := ttlv.Value{Tag: kmip.TagResponseMessage, Value: ttlv.Struct{
		{Tag: kmip.TagResponseHeader, Value: ttlv.Struct{
			v(1, 4),
			{Tag: kmip.TagTimeStamp, Value: time.Now()},
			{Tag: kmip.TagBatchCount, Value: int32(1)},
		}},
		{Tag: kmip.TagBatchItem, Value: ttlv.Struct{
			{Tag: kmip.TagOperation, Value: ttlv.Enum(kmip.OperationDiscoverVersions)},
			{Tag: kmip.TagResultStatus, Value: ttlv.Enum(kmip.ResultStatusSuccess)},
			{Tag: kmip.TagResponsePayload, Value: ttlv.Struct{v(2, 0), v(1, 4), v(1, 3)}},
		}},
	}}
	return ttlv.MarshalTTLV(resp), nil
}

func ExampleVector_Run() {
	v, err := oasis.Parse("v1.4", "TC-DV-1-14.xml", []byte(discoverVersions))
	if err != nil {
		fmt.Println(err)
		return
	}
	res := v.Run(context.Background(), server{})
	fmt.Println(res.Name(), "passed:", res.Passed())
	for _, n := range res.Steps[0].Notes {
		fmt.Println("note:", n)
	}
	if err := oasis.WriteReport(os.Stdout, []oasis.Result{res}, nil); err != nil {
		fmt.Println(err)
	}
	// Output:
	// v1.4/TC-DV-1-14.xml passed: true
	// note: BatchItem[0]/ResponsePayload: server supports 2.0, 1.4, 1.3 (reference server: 1.4, 1.3)
	// # OASIS KMIP test vectors
	//
	// **1 of 1 applicable files pass (100.0%).** 1 files run in all; 0 judged not applicable (listed at the end).
	//
	// Comparison tolerances: see TOLERANCES.md.
	//
	// ## By version
	//
	// | Version | Applicable | Passed | Failed | Pass rate | Not applicable |
	// |---|---|---|---|---|---|
	// | v1.4 | 1 | 1 | 0 | 100.0% | 0 |
	//
	// ## By profile
	//
	// | Profile | Applicable | Passed | Failed | Pass rate | Not applicable |
	// |---|---|---|---|---|---|
	// | TC | 1 | 1 | 0 | 100.0% | 0 |
	//
	// ## Files
	//
	// | File | Profile | Result | Steps | First failure |
	// |---|---|---|---|---|
	// | v1.4/TC-DV-1-14.xml | TC | pass | 1/1 |  |
	//
	// ## Not applicable
	//
	// | File | Reason |
	// |---|---|
}
