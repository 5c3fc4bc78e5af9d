//go:build tools

// Package tools records the etcd server main package that
// scripts/k8s-binaries builds from this module, so that `go mod tidy` keeps
// its dependencies.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
