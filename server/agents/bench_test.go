package agents_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/nullops/nullops/agent/certs"
	"github.com/nullops/nullops/agent/channel"
	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
	"github.com/nullops/nullops/server/agents"
	"github.com/nullops/nullops/server/secretbox"
	"github.com/nullops/nullops/server/store"
	"github.com/nullops/nullops/server/store/storetest"
)

// envBenchTokens names the tokens file of the simulated-agents process.
const envBenchTokens = "NULLOPS_BENCH_AGENTS_TOKENS"

// BenchmarkConnectAgents connects N simulated agents to one manager and
// reports the time until all are online and the manager's heap per idle
// connected agent. The agents run in a separate process (this test binary
// re-executed), each a real agent/channel server on loopback TLS with its
// own ECDSA certificate, so the heap measured here is the server's alone.
// NULLOPS_BENCH_AGENTS chooses the agent counts (default "100,1000").
//
//	go test ./server/agents -run '^$' -bench BenchmarkConnectAgents -benchtime=1x
//	NULLOPS_BENCH_AGENTS=3000,10000 go test ./server/agents -run '^$' -bench BenchmarkConnectAgents -benchtime=1x
func BenchmarkConnectAgents(b *testing.B) {
	for _, n := range benchAgentCounts(b) {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				online, heap, total := connectAgents(b, n)
				b.ReportMetric(online.Seconds(), "s-until-all-online")
				b.ReportMetric(float64(heap)/float64(n), "heap-B/agent")
				b.ReportMetric(float64(total)/float64(n), "heap+stacks-B/agent")
			}
		})
	}
}

// BenchmarkConnectAgentsReplicas is BenchmarkConnectAgents with three
// replicas (managers with their own replica ids on one database, in this
// process) sharing the N agents by lease: the time until every agent is
// online on exactly one replica, the spread (fewest and most agents on one
// replica) and the heap of all three per agent.
//
//	NULLOPS_BENCH_AGENTS=300 go test ./server/agents -run '^$' -bench BenchmarkConnectAgentsReplicas -benchtime=1x
func BenchmarkConnectAgentsReplicas(b *testing.B) {
	for _, n := range benchAgentCounts(b) {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := connectAgentsReplicas(b, n, 3)
				b.ReportMetric(r.online.Seconds(), "s-until-all-online")
				b.ReportMetric(float64(r.minHeld), "min-agents/replica")
				b.ReportMetric(float64(r.maxHeld), "max-agents/replica")
				b.ReportMetric(float64(r.heap)/float64(n), "heap-B/agent")
			}
		})
	}
}

type replicasResult struct {
	online           time.Duration
	minHeld, maxHeld int
	heap             int64
}

func connectAgentsReplicas(b *testing.B, n, replicas int) replicasResult {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, box, ids, agentPIDs := benchNodes(ctx, b, n)
	// Registered up front, so each replica's first round already sees the
	// others live and takes only the nodes that prefer it.
	var ms []*agents.Manager
	for i := range replicas {
		id := fmt.Sprintf("bench-r%d", i+1)
		if err := st.RegisterReplica(ctx, id, "", 10*time.Second); err != nil {
			b.Fatal(err)
		}
		ms = append(ms, agents.New(agents.Options{Store: st, Box: box, Log: zerolog.Nop(), ServerVersion: "0.1.0-dev", ReplicaID: id}))
	}
	before := memStats()

	cpu := startCPUMeter(ctx, b, st, agentPIDs)
	b.StartTimer()
	start := time.Now()
	errc := make(chan error, replicas)
	for _, m := range ms {
		go func() { errc <- m.Start(ctx) }()
	}
	for range ms {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	held := waitAllOnline(ctx, b, st, ms, ids, start)
	online := time.Since(start)
	b.StopTimer()
	cpu.report(ctx, b, n)

	time.Sleep(2 * time.Second)
	after := memStats()
	r := replicasResult{online: online, minHeld: n, heap: int64(after.HeapAlloc) - int64(before.HeapAlloc)}
	for _, k := range held {
		r.minHeld, r.maxHeld = min(r.minHeld, k), max(r.maxHeld, k)
	}
	for _, m := range ms {
		m.Stop()
	}
	return r
}

// benchNodes creates n nodes whose simulated agents run in a child process.
func benchNodes(ctx context.Context, b *testing.B, n int) (*store.Store, *secretbox.Box, []int64, []int) {
	st := storetest.New(b)
	box, err := secretbox.New(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		b.Fatal(err)
	}
	env, err := store.CreateEnvironment(ctx, st.Pool, store.EnvironmentInput{Name: "bench", BaseDomain: "bench.test", DefaultTTLSeconds: 3600})
	if err != nil {
		b.Fatal(err)
	}
	admin := &agents.Admin{Store: st, Box: box}
	ids := make([]int64, n)
	tokens := make([]string, n)
	for i := range n {
		node, tok, err := admin.Create(ctx, store.SystemActor, store.NewNode{EnvironmentID: env.ID, Name: fmt.Sprintf("n%04d", i), Host: "127.0.0.1", Port: 1})
		if err != nil {
			b.Fatal(err)
		}
		ids[i], tokens[i] = node.ID, tok
	}
	ports, pids := startAgentsProcess(b, tokens)
	for i, id := range ids {
		p := ports[i]
		if _, err := store.UpdateNode(ctx, st.Pool, id, store.NodePatch{Port: &p}); err != nil {
			b.Fatal(err)
		}
	}
	return st, box, ids, pids
}

// waitAllOnline waits until every node is held by one of the managers
// and returns how many each holds.
func waitAllOnline(ctx context.Context, b *testing.B, st *store.Store, ms []*agents.Manager, ids []int64, start time.Time) []int {
	held := make([]int, len(ms))
	for {
		up := 0
		for i, m := range ms {
			held[i] = 0
			for _, id := range ids {
				if m.Holds(id) {
					held[i]++
				}
			}
			up += held[i]
		}
		if up == len(ids) {
			return held
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d agents online after %s; node statuses: %s", up, len(ids), time.Since(start), statusReasons(st))
		}
		// Polling takes the manager's lock once per node: every 10 ms at
		// 1,000 agents, every 100 ms at 10,000, so the benchmark's own
		// checks stay a small part of the CPU.
		time.Sleep(time.Duration(max(10, len(ids)/100)) * time.Millisecond)
	}
}

// memStats collects garbage (twice: finalizers free more) and reads the
// memory statistics.
func memStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func connectAgents(b *testing.B, n int) (time.Duration, int64, int64) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, box, ids, agentPIDs := benchNodes(ctx, b, n)

	m := agents.New(agents.Options{Store: st, Box: box, Log: zerolog.Nop(), ServerVersion: "0.1.0-dev"})
	before := memStats()

	cpu := startCPUMeter(ctx, b, st, agentPIDs)
	b.StartTimer()
	start := time.Now()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	waitAllOnline(ctx, b, st, []*agents.Manager{m}, ids, start)
	online := time.Since(start)
	b.StopTimer()
	cpu.report(ctx, b, n)

	time.Sleep(2 * time.Second) // idle: handshake garbage becomes collectable
	after := memStats()
	for _, id := range ids {
		if !m.Holds(id) {
			b.Fatalf("node %d dropped while idle", id)
		}
	}
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total := heap + int64(after.StackInuse) - int64(before.StackInuse)
	m.Stop()
	return online, heap, total
}

// agentsPerProcess bounds the simulated agents of one child process: each
// holds two file descriptors (its listener and the accepted connection),
// and a common limit is 20,000 open files per process (ulimit -n), which
// 10,000 agents in one process would exceed.
const agentsPerProcess = 4000

// startAgentsProcess runs the simulated agents in child processes of at
// most agentsPerProcess agents each and returns their ports, in token
// order, and the processes' ids.
func startAgentsProcess(b *testing.B, tokens []string) (ports, pids []int) {
	b.Helper()
	for len(tokens) > 0 {
		k := min(len(tokens), agentsPerProcess)
		p, pid := startAgentsChild(b, tokens[:k])
		ports, pids = append(ports, p...), append(pids, pid)
		tokens = tokens[k:]
	}
	return ports, pids
}

// startAgentsChild runs one child process of simulated agents.
func startAgentsChild(b *testing.B, tokens []string) ([]int, int) {
	b.Helper()
	f := filepath.Join(b.TempDir(), "tokens.json")
	raw, _ := json.Marshal(tokens)
	if err := os.WriteFile(f, raw, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBenchTokens+"="+f, "NULLOPS_BENCH_DIR="+b.TempDir())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("agents process: %v", err)
	}
	var ports []int
	if err := json.Unmarshal([]byte(line), &ports); err != nil || len(ports) != len(tokens) {
		b.Fatalf("agents process said %q: %v", strings.TrimSpace(line), err)
	}
	return ports, cmd.Process.Pid
}

// memJournal is an empty journal: idle agents report no events.
type memJournal struct{ id string }

func (j memJournal) InstanceID() string                             { return j.id }
func (memJournal) LastAcked() uint64                                { return 0 }
func (memJournal) Pending(uint64, int) ([]protocol.Envelope, error) { return nil, nil }
func (memJournal) Ack(uint64) error                                 { return nil }
func (memJournal) Changed() <-chan struct{}                         { return nil }
func (memJournal) Emit(protocol.Event) (uint64, error)              { return 0, nil }
func (fixedCapacity) Usage() protocol.Usage                         { return protocol.Usage{MemoryUsedMB: 100} }
func (fixedCapacity) Capacity() protocol.Capacity {
	return protocol.Capacity{CPUs: 2, MemoryMB: 4096, DiskMB: 10000}
}

type fixedCapacity struct{}

// runAgentsProcess is the child side of startAgentsProcess: one channel
// server per token, each with its own certificate, until stdin closes.
func runAgentsProcess(tokensFile, dir string) {
	raw, err := os.ReadFile(tokensFile)
	if err != nil {
		log.Fatal(err)
	}
	var tokens []string
	if err := json.Unmarshal(raw, &tokens); err != nil {
		log.Fatal(err)
	}
	ports := make([]int, len(tokens))
	for i, tok := range tokens {
		id, err := certs.Ensure(mkdir(filepath.Join(dir, fmt.Sprint(i))))
		if err != nil {
			log.Fatal(err)
		}
		srv := channel.New(channel.Options{Token: tok, Version: "0.1.0-dev", Journal: memJournal{id: fmt.Sprintf("bench-%d", i)},
			Host: fixedCapacity{}, Log: zerolog.Nop(), MetricsInterval: time.Hour})
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{id.Certificate}, NextProtos: []string{"http/1.1"}})
		if err != nil {
			log.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(protocol.PathConnect, srv)
		go (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}).Serve(l) //nolint:errcheck
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	line, _ := json.Marshal(ports)
	fmt.Println(string(line))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark ends
}

func mkdir(d string) string {
	if err := os.MkdirAll(d, 0o700); err != nil {
		log.Fatal(err)
	}
	return d
}

// benchAgentCounts reads NULLOPS_BENCH_AGENTS ("100,1000" when unset).
func benchAgentCounts(b *testing.B) []int {
	v := os.Getenv("NULLOPS_BENCH_AGENTS")
	if v == "" {
		return []int{100, 1000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("NULLOPS_BENCH_AGENTS=%q: want agent counts like 100,1000", v)
		}
		out = append(out, n)
	}
	return out
}

// statusReasons counts the nodes by status and reason, for a benchmark
// that did not get every agent online.
func statusReasons(st *store.Store) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := st.Pool.Query(ctx, `SELECT status || ': ' || left(status_reason, 120), count(*) FROM nodes GROUP BY 1 ORDER BY 2 DESC LIMIT 10`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var what string
		var k int
		if err := rows.Scan(&what, &k); err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("%d × %q", k, what))
	}
	return strings.Join(out, "; ")
}

// cpuMeter measures the CPU spent until every agent is online: this
// process (the server's managers, plus the benchmark's polling), the
// simulated agents and PostgreSQL, all sharing the machine's cores.
type cpuMeter struct {
	pg           *testutil.BackendCPU
	self, agents time.Duration
	agentPIDs    []int
}

func startCPUMeter(ctx context.Context, b *testing.B, st *store.Store, agentPIDs []int) *cpuMeter {
	pg, err := testutil.NewBackendCPU(ctx, st.Pool)
	if err != nil {
		b.Fatal(err)
	}
	return &cpuMeter{pg: pg, self: testutil.SelfCPU(), agents: testutil.ProcCPU(agentPIDs...), agentPIDs: agentPIDs}
}

// report reports the CPU per agent of each side, and the load average.
func (c *cpuMeter) report(ctx context.Context, b *testing.B, n int) {
	pg, err := c.pg.Spent(ctx)
	if err != nil {
		b.Fatal(err)
	}
	perAgent := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(perAgent(testutil.SelfCPU()-c.self), "server-cpu-µs/agent")
	b.ReportMetric(perAgent(testutil.ProcCPU(c.agentPIDs...)-c.agents), "agents-cpu-µs/agent")
	b.ReportMetric(perAgent(pg), "pg-cpu-µs/agent")
	if k, err := c.pg.NewSessions(ctx); err == nil {
		b.ReportMetric(float64(k), "pg-new-sessions")
	}
	b.ReportMetric(testutil.LoadAverage(), "load1")
}
