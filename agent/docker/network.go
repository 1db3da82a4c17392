package docker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
	used, existing, err := r.usedSubnets(ctx, name)
	if err != nil {
		return Network{}, err
	}
	if existing != nil {
		return *existing, r.joinNetwork(ctx, existing.ID)
	}
	cctx, cancelCreate := createCtx(ctx)
	defer cancelCreate()
	for attempt := 0; attempt < maxSubnetAttempts; attempt++ {
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
			// Another agent on this daemon took a subnet since the list:
			// look again, so the next pick knows every network created
			// meanwhile, not only the one that collided.
			used[subnet] = true
			if fresh, _, lerr := r.usedSubnets(ctx, ""); lerr == nil {
				for p := range fresh {
					used[p] = true
				}
			}
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

// maxSubnetAttempts bounds the retries when other agents on the same daemon
// keep taking the subnet this one picked.
const maxSubnetAttempts = 32

// usedSubnets lists the daemon's networks: the subnets they hold and, when
// one is called name, that network.
func (r *Runtime) usedSubnets(ctx context.Context, name string) (map[netip.Prefix]bool, *Network, error) {
	list, err := r.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list networks: %w", err)
	}
	used := map[netip.Prefix]bool{}
	for _, n := range list.Items {
		if name != "" && n.Name == name {
			return nil, &Network{ID: n.ID, Name: n.Name, Subnet: firstSubnet(n.IPAM)}, nil
		}
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				used[c.Subnet.Masked()] = true
			}
		}
	}
	return used, nil, nil
}

func isOverlap(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "overlap") || strings.Contains(s, "pool")
}

// freeSubnet returns a /subnetBits of the pool that overlaps no used prefix,
// chosen at random among the free ones: agents sharing a daemon list the
// same networks, and picking the lowest free subnet would have them all
// race for it.
func (r *Runtime) freeSubnet(used map[netip.Prefix]bool) (netip.Prefix, bool) {
	step := uint32(1) << (32 - r.subnetBits)
	n := uint32(1) << (r.subnetBits - r.pool.Bits())
	base := addrToU32(r.pool.Addr())
	var free []netip.Prefix
	for i := uint32(0); i < n; i++ {
		cand := netip.PrefixFrom(u32ToAddr(base+i*step), r.subnetBits)
		if !overlapsAny(cand, used) {
			free = append(free, cand)
		}
	}
	if len(free) == 0 {
		return netip.Prefix{}, false
	}
	return free[rand.IntN(len(free))], true
}

func overlapsAny(cand netip.Prefix, used map[netip.Prefix]bool) bool {
	for u := range used {
		if u.Overlaps(cand) {
			return true
		}
	}
	return false
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
