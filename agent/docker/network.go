package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/nullops/nullops/agent/runtime"
)

// ErrPoolExhausted means every subnet of the pool is in use.
var ErrPoolExhausted = errors.New("deployment subnet pool exhausted")

// Network is a deployment network (a bridge with its own subnet).
type Network = runtime.Network

// EnsureNetwork returns deployment id's bridge network, creating it with a
// free subnet of the pool when it does not exist. Free means not used by
// any network on the daemon (of any node or owner), so restarts and agents
// sharing a daemon never collide.
// The budget (spec.Resources) is enforced per container on Docker.
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) (Network, error) {
	deploymentID := spec.DeploymentID
	r.netMu.Lock()
	defer r.netMu.Unlock()
	name := NetworkName(r.node, deploymentID)
	list, err := r.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return Network{}, fmt.Errorf("list networks: %w", err)
	}
	used := map[netip.Prefix]bool{}
	for _, n := range list.Items {
		if n.Name == name {
			return Network{ID: n.ID, Name: n.Name, Subnet: firstSubnet(n.IPAM)}, r.joinNetwork(ctx, n.ID)
		}
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				used[c.Subnet.Masked()] = true
			}
		}
	}
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	for attempt := 0; attempt < 8; attempt++ {
		subnet, ok := r.freeSubnet(used)
		if !ok {
			return Network{}, fmt.Errorf("%w: %s holds no free /%d", ErrPoolExhausted, r.pool, r.subnetBits)
		}
		gw := subnet.Addr().Next()
		res, err := r.cli.NetworkCreate(cctx, name, client.NetworkCreateOptions{
			Driver: "bridge",
			IPAM: &network.IPAM{
				Driver: "default",
				Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gw}},
			},
			Labels: r.labels(deploymentID),
		})
		if err == nil {
			return Network{ID: res.ID, Name: name, Subnet: subnet}, r.joinNetwork(ctx, res.ID)
		}
		if isOverlap(err) {
			// Another agent on this daemon took it between list and create.
			used[subnet] = true
			continue
		}
		if cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists") {
			ins, ierr := r.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
			if ierr == nil {
				return Network{ID: ins.Network.ID, Name: name, Subnet: firstSubnet(ins.Network.IPAM)}, r.joinNetwork(ctx, ins.Network.ID)
			}
		}
		return Network{}, fmt.Errorf("create network %s: %w", name, err)
	}
	return Network{}, fmt.Errorf("create network %s: subnets kept colliding", name)
}

func isOverlap(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "overlap") || strings.Contains(s, "pool")
}

// freeSubnet returns the first /subnetBits of the pool that overlaps no used
// prefix.
func (r *Runtime) freeSubnet(used map[netip.Prefix]bool) (netip.Prefix, bool) {
	step := uint32(1) << (32 - r.subnetBits)
	n := uint32(1) << (r.subnetBits - r.pool.Bits())
	base := addrToU32(r.pool.Addr())
	for i := uint32(0); i < n; i++ {
		cand := netip.PrefixFrom(u32ToAddr(base+i*step), r.subnetBits)
		free := true
		for u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

func firstSubnet(ipam network.IPAM) netip.Prefix {
	for _, c := range ipam.Config {
		if c.Subnet.IsValid() {
			return c.Subnet
		}
	}
	return netip.Prefix{}
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32ToAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
