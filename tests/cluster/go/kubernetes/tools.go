//go:build tools

// Package tools records the commands this module builds (kube-scheduler only for
// the SkyPilot lab, tests/skypilot), so that go mod tidy keeps their dependencies
// in go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
