package protocol

import (
	"fmt"
	"strings"
)

// The execution order of a pipeline graph exists once, here: the server's
// validation and dry run show it, and the agent starts nodes in it
// (docs/architecture.md, "Pipeline graph").

// Order returns the graph's execution order: a topological order of the
// node ids in which, among the nodes whose predecessors are all done, the
// one listed first in Nodes comes first. It fails for a cycle, a duplicate
// id or an edge naming an unknown node.
func (g Graph) Order() ([]string, error) {
	index := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if _, dup := index[n.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate node id %q", ErrInvalid, n.ID)
		}
		index[n.ID] = i
	}
	succ := make([][]int, len(g.Nodes))
	seen := map[[2]int]bool{}
	for _, e := range g.Edges {
		from, okFrom := index[e[0]]
		to, okTo := index[e[1]]
		if !okFrom || !okTo {
			return nil, fmt.Errorf("%w: edge %q → %q names an unknown node", ErrInvalid, e[0], e[1])
		}
		if seen[[2]int{from, to}] {
			continue
		}
		seen[[2]int{from, to}] = true
		succ[from] = append(succ[from], to)
	}
	order, cycle := OrderIndices(len(g.Nodes), succ)
	if cycle != nil {
		ids := make([]string, len(cycle))
		for i, c := range cycle {
			ids[i] = g.Nodes[c].ID
		}
		return nil, fmt.Errorf("%w: the graph has a cycle: %s", ErrInvalid, strings.Join(ids, " → "))
	}
	out := make([]string, len(order))
	for i, o := range order {
		out[i] = g.Nodes[o].ID
	}
	return out, nil
}

// OrderIndices is Order over node indexes: succ[i] lists the successors of
// node i (each once; a self-edge is a cycle). It returns the order, or, for
// a cycle, the indexes along one cycle, first and last the same.
func OrderIndices(n int, succ [][]int) (order []int, cycle []int) {
	indeg := make([]int, n)
	for _, ss := range succ {
		for _, s := range ss {
			indeg[s]++
		}
	}
	done := make([]bool, n)
	for len(order) < n {
		next := -1
		for i := 0; i < n; i++ {
			if !done[i] && indeg[i] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			return nil, findCycle(n, succ, done)
		}
		done[next] = true
		order = append(order, next)
		for _, s := range succ[next] {
			indeg[s]--
		}
	}
	return order, nil
}

// findCycle returns the indexes along one cycle among the nodes not done.
func findCycle(n int, succ [][]int, done []bool) []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, n)
	var stack, found []int
	var visit func(u int) bool
	visit = func(u int) bool {
		color[u] = grey
		stack = append(stack, u)
		for _, v := range succ[u] {
			if done[v] {
				continue
			}
			if color[v] == grey {
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] == v {
						found = append(append([]int{}, stack[i:]...), v)
						break
					}
				}
				return true
			}
			if color[v] == white && visit(v) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		color[u] = black
		return false
	}
	for i := 0; i < n; i++ {
		if !done[i] && color[i] == white && visit(i) {
			break
		}
	}
	return found
}
