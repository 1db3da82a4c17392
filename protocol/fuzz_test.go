package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var exit137 = 137

// seedFrames are valid frames of every message type plus malformed ones.
func seedFrames(t testing.TB) [][]byte {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := DeploySpec{
		DeploymentID: 7, Name: "pr-42", Project: "shop", Environment: "qa", PipelineVersion: 3,
		Graph: Graph{Nodes: []Node{
			{ID: "db", Kind: KindService, Service: "postgres", Env: map[string]string{"POSTGRES_PASSWORD": "${secrets.db}"}},
			{ID: "mk", Kind: KindComponent, Plugin: "pg-create", Params: map[string]any{"host": "db", "n": 1.5}},
			{ID: "api", Kind: KindService, Service: "api", Port: 8080, Ingress: true, Health: &Health{HTTP: "/healthz"}, Retries: &Retry{Count: 2}},
		}, Edges: [][2]string{{"db", "mk"}, {"mk", "api"}}},
		Services: map[string]ServiceImage{"db": {Image: "r/pg:16"}, "api": {Image: "r/api:1", Ports: []int{8080}, Auth: &RegistryAuth{ServerAddress: "r", Username: "u", Password: "p"}}},
		Plugins:  map[string]PluginImage{"mk": {Name: "pg-create", Image: "r/pg-create:1", Timeout: "5m"}},
		Secrets:  map[string]string{"db": "s3cret"},
	}
	bodies := []struct {
		typ  string
		id   string
		re   string
		seq  uint64
		body any
	}{
		{TypeHello, "s1", "", 0, HelloRequest{ServerVersion: "0.1.0", ProtocolVersion: Version}},
		{TypeHello, "", "s1", 0, HelloReply{AgentVersion: "0.1.0", ProtocolVersion: Version, InstanceID: "abc", Capacity: Capacity{CPUs: 2, MemoryMB: 2048, DiskMB: 10000}, LastAckedSeq: 4}},
		{TypeSync, "s2", "", 0, SyncRequest{Deployments: []DeploySpec{spec}}},
		{TypeSync, "s2", "", 0, SyncRequest{Deployments: []DeploySpec{spec}, NodeUID: "3f2a9c0d1e4b5a6978f0c1d2e3f4a5b6"}},
		{TypeSync, "s2", "", 0, SyncRequest{NodeUID: "a=b,nullops.managed=true"}},
		{TypeSync, "", "s2", 0, SyncReply{Deployments: []DeploymentState{{DeploymentID: 7, Status: StatusRunning, Services: []ServiceState{{DeploymentID: 7, Service: "api", HostPort: 32768, Running: true}}}}, RemovedOrphans: []string{"x"}}},
		{TypeDeploy, "s3", "", 0, DeployRequest{Spec: spec}},
		{TypeDelete, "s4", "", 0, DeleteRequest{DeploymentID: 7}},
		{TypeCancel, "s5", "", 0, DeleteRequest{DeploymentID: 7}},
		{TypeCancel, "s5b", "", 0, DeleteRequest{DeploymentID: 7, FailReason: "deploying for more than 30m0s (the project's deploy timeout)"}},
		{TypeLogsOpen, "s6", "", 0, LogsOpen{DeploymentID: 7, Service: "api", Tail: 100, Follow: true}},
		{TypeLogsClose, "s7", "", 0, LogsClose{ID: "s6"}},
		{TypeLogsData, "", "s6", 0, LogsData{Stream: "stdout", Data: "hello\n"}},
		{TypeLogsData, "", "s6", 0, LogsData{EOF: true, Error: "gone"}},
		{TypePluginsUpdate, "s8", "", 0, PluginsUpdate{Plugins: []PluginImage{{Name: "p", Image: "r/p:1"}}}},
		{TypeAck, "", "", 0, Ack{Seq: 9}},
		{TypeError, "", "s3", 0, ErrorBody{Message: "not implemented on this agent"}},
		{TypeMetrics, "", "", 0, Metrics{Capacity: Capacity{CPUs: 2}, Usage: Usage{CPUPercent: 12.5, MemoryUsedMB: 100}, Containers: []ContainerStats{{DeploymentID: 7, Service: "api", CPUPercent: 1}}, At: at}},
		{TypeDeploymentStatus, "", "", 1, DeploymentStatus{DeploymentID: 7, Status: StatusFailed, Reason: "step mk failed", FailedStep: "mk", At: at}},
		{TypeStepStatus, "", "", 2, StepStatus{DeploymentID: 7, Step: "mk", Kind: KindComponent, Status: StepSucceeded, Attempt: 1, Outputs: map[string]string{"url": "postgres://db/app"}, At: at}},
		{TypeStepLog, "", "", 3, StepLog{DeploymentID: 7, Step: "mk", Attempt: 1, Chunk: "pulling…\n", At: at}},
		{TypeServiceState, "", "", 4, ServiceState{DeploymentID: 7, Service: "api", ContainerID: "c1", ContainerPort: 8080, HostPort: 32768, Running: true, Health: "healthy"}},
		{TypeServiceState, "", "", 5, ServiceState{DeploymentID: 7, Service: "api", ContainerID: "c1", State: ServiceOOMKilled, Health: "unhealthy",
			RestartCount: 3, ExitCode: &exit137, LastExitOOM: true, LastExitAt: at, LastLines: "allocating 512 MiB\n"}},
		{TypeTokenRotate, "s9", "", 0, TokenRotate{Verifier: TokenVerifier("nullops-node_x"), Generation: 2}},
		{TypeTokenRotate, "s9", "", 0, TokenRotate{Verifier: "ABCDEF"}},
		{TypeTokenRevoke, "s10", "", 0, TokenRevoke{Reason: "revoked by admin"}},
		{TypeChannelEvent, "", "", 6, ChannelEvent{Kind: ChannelRefused, Remote: "10.0.0.9:41000", Reason: "a healthy control-plane connection exists", Epoch: 12, At: at}},
		{TypeChannelEvent, "", "", 7, ChannelEvent{Kind: "takeover", At: at}},
	}
	var out [][]byte
	for _, b := range bodies {
		e, err := NewEnvelope(b.typ, b.body)
		if err != nil {
			t.Fatal(err)
		}
		e.ID, e.ReplyTo, e.Seq = b.id, b.re, b.seq
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"type":""}`, `{"type":"step.log"}`, `{"type":"step.log","seq":0,"body":{}}`,
		`{"type":"hello","id":"` + strings.Repeat("x", 200) + `"}`, `{"type":1}`, `{"type":"ack","body":{"seq":-1}}`,
		`{"type":"ack","body":{"seq":18446744073709551616}}`, `{"type":"sync","body":{"deployments":[{"deployment_id":1}]}}`,
		`{"type":"deploy","body":{"spec":{"deployment_id":1,"name":"n","graph":{"nodes":[{"id":"a","kind":"service"}],"edges":[["a","b"]]}}}}`,
		`{"type":"service.state","seq":1,"body":{"deployment_id":1,"service":"a","state":"zombie"}}`,
		`{"type":"service.state","seq":1,"body":{"deployment_id":1,"service":"a","restart_count":-1,"exit_code":null}}`,
		`{"type":"hello","body":` + strings.Repeat("[", 10000) + `}`, "{\"type\":\"hello\",\"body\":\"\xff\"}",
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzDecodeEnvelope: any input either fails with ErrInvalid or yields an
// envelope satisfying the contract that survives a re-encode unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if e.Type == "" || len(e.Type) > 64 || len(e.ID) > 128 || len(e.ReplyTo) > 128 {
			t.Fatalf("accepted envelope breaks the limits: %+v", e)
		}
		if IsEvent(e.Type) && e.Seq == 0 {
			t.Fatalf("accepted event without seq: %+v", e)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encode accepted envelope: %v", err)
		}
		e2, err := DecodeEnvelope(raw)
		if err != nil {
			t.Fatalf("re-decode %s: %v", raw, err)
		}
		if e2.Type != e.Type || e2.ID != e.ID || e2.ReplyTo != e.ReplyTo || e2.Seq != e.Seq {
			t.Fatalf("round trip changed the envelope: %+v → %+v", e, e2)
		}
		if !jsonEqual(e.Body, e2.Body) {
			t.Fatalf("round trip changed the body: %s → %s", e.Body, e2.Body)
		}
		// Whatever the envelope, its body decoders and the event check
		// must not panic.
		decodeAll(t, e)
		if IsEvent(e.Type) {
			_ = ValidateEvent(e)
		}
	})
}

// FuzzDecodeBody runs one body through every message decoder: each either
// fails with ErrInvalid or returns a value whose re-encoding decodes (and
// validates) again.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range seedFrames(f) {
		if e, err := DecodeEnvelope(s); err == nil && len(e.Body) > 0 {
			f.Add([]byte(e.Body))
		}
	}
	for _, s := range []string{`{}`, `null`, `[]`, `""`, `{"deployment_id":-1}`, `{"deployments":null}`, `{"seq":1e3}`, `{"at":"not a time"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			// DecodeEnvelope only hands out syntactically valid bodies.
			return
		}
		decodeAll(t, Envelope{Type: "x", Seq: 1, Body: body})
	})
}

// jsonEqual compares two JSON values semantically (encoding/json escapes
// <, > and & on output, so bytes may differ).
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	x, err1 := decodeValue(a)
	y, err2 := decodeValue(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(x, y)
}

func decodeValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func decodeAll(t *testing.T, e Envelope) {
	check(t, e, decodeCheck[HelloRequest])
	check(t, e, decodeCheck[HelloReply])
	check(t, e, decodeCheck[SyncRequest])
	check(t, e, decodeCheck[SyncReply])
	check(t, e, decodeCheck[DeployRequest])
	check(t, e, decodeCheck[DeleteRequest])
	check(t, e, decodeCheck[LogsOpen])
	check(t, e, decodeCheck[LogsClose])
	check(t, e, decodeCheck[LogsData])
	check(t, e, decodeCheck[PluginsUpdate])
	check(t, e, decodeCheck[Ack])
	check(t, e, decodeCheck[ErrorBody])
	check(t, e, decodeCheck[Metrics])
	check(t, e, decodeCheck[DeploymentStatus])
	check(t, e, decodeCheck[StepStatus])
	check(t, e, decodeCheck[StepLog])
	check(t, e, decodeCheck[ServiceState])
	check(t, e, decodeCheck[TokenRotate])
	check(t, e, decodeCheck[TokenRevoke])
	check(t, e, decodeCheck[ChannelEvent])
	check(t, e, decodeCheck[Refused])
	check(t, e, decodeCheck[Empty])
}

func check(t *testing.T, e Envelope, f func(Envelope) error) {
	t.Helper()
	if err := f(e); err != nil {
		t.Fatal(err)
	}
}

func decodeCheck[T any](e Envelope) error {
	v, err := DecodeBody[T](e)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			return errors.New("decode error does not wrap ErrInvalid: " + err.Error())
		}
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return errors.New("re-encode decoded body: " + err.Error())
	}
	if _, err := DecodeBody[T](Envelope{Type: e.Type, Body: raw}); err != nil {
		return errors.New("decoded body does not decode again: " + err.Error() + ": " + string(raw))
	}
	return nil
}

// TestServiceStateValidate: a crashed service's report round-trips; unknown
// states, negative counts and oversized log tails are refused.
func TestServiceStateValidate(t *testing.T) {
	code := 3
	ok := ServiceState{DeploymentID: 1, Service: "api", State: ServiceRestarting, RestartCount: 2, ExitCode: &code, LastLines: "boom\n"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]ServiceState{
		"state":    {DeploymentID: 1, Service: "api", State: "zombie"},
		"restarts": {DeploymentID: 1, Service: "api", RestartCount: -1},
		"lines":    {DeploymentID: 1, Service: "api", LastLines: strings.Repeat("x", MaxServiceLastLines+1)},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, bad)
		}
	}
	if err := (&DeleteRequest{DeploymentID: 1, FailReason: strings.Repeat("x", maxFailReason+1)}).Validate(); err == nil {
		t.Error("oversized fail_reason accepted")
	}
}
