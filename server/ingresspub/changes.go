package ingresspub

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// What a route notification names (store.RoutesChannel; migration 000030):
// "d:<id>" a deployment, "n:<id>" a node, "e:<id>" an environment, each
// with one id or several separated by commas. Anything else, the empty
// payload of older triggers included, names nothing in particular: the
// publisher then recomputes the whole table.
const (
	changeDeployment  = 'd'
	changeNode        = 'n'
	changeEnvironment = 'e'
)

// maxPayload is PostgreSQL's limit on a NOTIFY payload (a longer one
// cannot have come from the database).
const maxPayload = 8000

// parsePayload decodes a route notification. ok is false for anything that
// is not exactly the form above (ids are positive decimal int64 without
// sign or leading zero).
func parsePayload(payload string) (kind byte, ids []int64, ok bool) {
	if len(payload) < 3 || len(payload) > maxPayload || payload[1] != ':' {
		return 0, nil, false
	}
	switch kind = payload[0]; kind {
	case changeDeployment, changeNode, changeEnvironment:
	default:
		return 0, nil, false
	}
	rest := payload[2:]
	ids = make([]int64, 0, strings.Count(rest, ",")+1)
	for len(rest) > 0 || len(ids) == 0 {
		field, tail, more := strings.Cut(rest, ",")
		if field == "" || field[0] < '1' || field[0] > '9' {
			return 0, nil, false
		}
		for i := 0; i < len(field); i++ {
			if field[i] < '0' || field[i] > '9' {
				return 0, nil, false
			}
		}
		id, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, nil, false
		}
		ids = append(ids, id)
		if more && tail == "" {
			return 0, nil, false // trailing comma
		}
		rest = tail
	}
	return kind, ids, true
}

// maxPendingIDs bounds the ids collected between two derivations: a burst
// naming more (a transaction that touched many rows) is cheaper to derive
// with one query over the whole table than by id.
const maxPendingIDs = 1000

// changes are what the notifications since the last derivation named. The
// zero value names nothing.
type changes struct {
	all                              bool // derive everything
	deployments, nodes, environments map[int64]struct{}
	n                                int
}

// everything makes c name the whole table.
func (c *changes) everything() {
	*c = changes{all: true}
}

// add records one notification's payload.
func (c *changes) add(payload string) {
	if c.all {
		return
	}
	kind, ids, ok := parsePayload(payload)
	if !ok || c.n+len(ids) > maxPendingIDs {
		c.everything()
		return
	}
	var set *map[int64]struct{}
	switch kind {
	case changeDeployment:
		set = &c.deployments
	case changeNode:
		set = &c.nodes
	default:
		set = &c.environments
	}
	if *set == nil {
		*set = map[int64]struct{}{}
	}
	for _, id := range ids {
		if _, dup := (*set)[id]; !dup {
			(*set)[id] = struct{}{}
			c.n++
		}
	}
}

// empty reports whether c names nothing.
func (c *changes) empty() bool { return !c.all && c.n == 0 }

func sortedIDs(set map[int64]struct{}) []int64 { return slices.Sorted(maps.Keys(set)) }
