//go:build tools

// Package tools pins kube-router for build.sh, which builds its command and
// runs it with --run-firewall only: the NetworkPolicy engine of the test
// cluster (the bridge CNI enforces no policy by itself).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
