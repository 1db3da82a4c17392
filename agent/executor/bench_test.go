package executor

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/internal/testutil"
	"github.com/nullops/nullops/protocol"
)

// BenchmarkDeployOverhead compares deploying a pipeline of K services
// (images present, a chain so both sides work sequentially) through the
// executor — state in bbolt, events fsynced to a file like the journal,
// subnet allocation, image check, inspect — with the bare Docker API calls
// for the same result made directly (network create + container create +
// start). Reported: agent-ms/op, direct-ms/op and ratio (goal ≤ 1.25).
//
//	go test ./agent/executor -run '^$' -bench DeployOverhead -benchtime 5x
func BenchmarkDeployOverhead(b *testing.B) {
	for _, k := range []int{1, 5, 20} {
		b.Run("K="+strconv.Itoa(k), func(b *testing.B) { benchDeploy(b, k) })
	}
}

func benchDeploy(b *testing.B, k int) {
	requireDocker(b, "compares with bare Docker API calls")
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "journal.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	e := newEnvWith(b, Config{}, &fileEmitter{f: f})
	cli := e.docker().Client()
	ctx := testutil.Context(b, 30*time.Minute)

	var nodes []protocol.Node
	var edges [][2]string
	for i := 0; i < k; i++ {
		nodes = append(nodes, protocol.Node{ID: fmt.Sprintf("s%d", i), Kind: protocol.KindService, Port: 8080})
		if i > 0 {
			edges = append(edges, [2]string{fmt.Sprintf("s%d", i-1), fmt.Sprintf("s%d", i)})
		}
	}
	// Warm up both paths once (image layers, daemon caches).
	directDeploy(b, ctx, cli, e.node, 0, k)
	base := int64(time.Now().UnixNano()%1e6+8000000) * 100
	var agentDur, directDur time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		directDur += directDeploy(b, ctx, cli, e.node, i+1, k)

		id := base + int64(i)
		spec := specOf(id, nodes, edges, demoWebImage, nil)
		b.StartTimer()
		t1 := time.Now()
		if err := e.ex.Deploy(ctx, protocol.DeployRequest{Spec: spec}); err != nil {
			b.Fatal(err)
		}
		if ds := e.rec.waitDeployment(b, ctx, id, protocol.StatusRunning, protocol.StatusFailed); ds.Status != protocol.StatusRunning {
			b.Fatalf("%s: %s", ds.Status, ds.Reason)
		}
		agentDur += time.Since(t1)
		b.StopTimer()
		if err := e.ex.Delete(ctx, protocol.DeleteRequest{DeploymentID: id}); err != nil {
			b.Fatal(err)
		}
		e.rec.waitDeployment(b, ctx, id, protocol.StatusDeleted)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(agentDur.Milliseconds())/n, "agent-ms/op")
	b.ReportMetric(float64(directDur.Milliseconds())/n, "direct-ms/op")
	b.ReportMetric(float64(agentDur)/float64(directDur), "ratio")
}

// directDeploy makes the same objects with bare API calls and returns the
// time that took; then it removes them (untimed).
func directDeploy(b *testing.B, ctx context.Context, cli *client.Client, node string, round, k int) time.Duration {
	name := fmt.Sprintf("nullops-bench-%s-r%d", node, round)
	labels := map[string]string{"nullops.managed": "true", "nullops.node": node, "nullops.deployment": "999999999"}
	subnet := netip.MustParsePrefix(fmt.Sprintf("10.219.%d.0/24", round%250))
	start := time.Now()
	if _, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: labels,
		IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: subnet.Addr().Next()}}},
	}); err != nil {
		b.Fatal(err)
	}
	port := network.MustParsePort("8080/tcp")
	for i := 0; i < k; i++ {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name: fmt.Sprintf("%s-s%d", name, i),
			Config: &container.Config{
				Image: demoWebImage, Env: []string{"SERVICE_NAME=s" + strconv.Itoa(i)},
				ExposedPorts: network.PortSet{port: {}}, Labels: labels,
			},
			HostConfig: &container.HostConfig{
				NetworkMode:   container.NetworkMode(name),
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
				Resources:     container.Resources{NanoCPUs: 5e8, Memory: 64 << 20},
			},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: {Aliases: []string{"s" + strconv.Itoa(i)}}}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	for i := 0; i < k; i++ {
		_, _ = cli.ContainerRemove(ctx, fmt.Sprintf("%s-s%d", name, i), client.ContainerRemoveOptions{Force: true})
	}
	_, _ = cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	return elapsed
}
