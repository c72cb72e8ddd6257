// Command gen writes meta.db files whose records are written by
// containerd's own metadata packages, for ctrlift's sandbox store tests:
//
//	v2.db   containerd v2 core/metadata: schema v1 version 4, sandboxes
//	        in v1/<ns>/sandboxes (every containerd 2.x node)
//	v1.7.db containerd v1.7 metadata: sandboxes at the bolt root in
//	        <ns>/sandboxes (containerd 1.7 with the sandbox API)
//
// Both hold the same node: a Kubernetes pod whose sandbox has a pause
// container (the CRI podsandbox sandboxer), an application container in
// it, a sandbox of the shim sandboxer that has no pause container, and a
// container started with ctr in the default namespace. The CRI payloads
// (the JSON of the CRI plugin's metadata) are written as the CRI plugin
// marshals them; the buckets, keys and encodings are containerd's.
//
// Run ../make.sh to regenerate.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	v17containers "github.com/containerd/containerd/containers"
	v17meta "github.com/containerd/containerd/metadata"
	v17ns "github.com/containerd/containerd/namespaces"
	v17types "github.com/containerd/containerd/protobuf/types"
	v17sandbox "github.com/containerd/containerd/sandbox"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/metadata"
	"github.com/containerd/containerd/v2/core/sandbox"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/typeurl/v2"
	bolt "go.etcd.io/bbolt"
)

const (
	specURL        = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
	sandboxMetaURL = "github.com/containerd/cri/pkg/store/sandbox/Metadata"
	ctrMetaURL     = "github.com/containerd/cri/pkg/store/container/Metadata"
	runcV2         = "io.containerd.runc.v2"

	podSandbox  = "5b1c0e0d7a4f4c2e9a3d8b6f1e2c3d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e"
	appID       = "a77c0e0d7a4f4c2e9a3d8b6f1e2c3d4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d01"
	shimSandbox = "0d5e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
)

func sandboxMeta(id, name, ns, uid, ip string) []byte {
	b, _ := json.Marshal(map[string]any{
		"Version": "v1",
		"Metadata": map[string]any{
			"ID":   id,
			"Name": name + "_" + ns + "_" + uid + "_0",
			"Config": map[string]any{
				"metadata": map[string]any{"name": name, "uid": uid, "namespace": ns},
				"hostname": name, "log_directory": "/var/log/pods/" + ns + "_" + name + "_" + uid,
			},
			"NetNSPath":      "/var/run/netns/cni-" + id[:8],
			"IP":             ip,
			"RuntimeHandler": "",
		},
	})
	return b
}

func ctrMeta(id, sandboxID, name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"Version": "v1",
		"Metadata": map[string]any{
			"ID": id, "Name": name, "SandboxID": sandboxID,
			"Config":   map[string]any{"metadata": map[string]any{"name": name}, "log_path": name + "/0.log"},
			"ImageRef": "sha256:4a1f5d1e9d6c0a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3",
			"LogPath":  "/var/log/pods/shop_cart-0_uid-1/" + name + "/0.log",
		},
	})
	return b
}

var spec = []byte(`{"ociVersion":"1.1.0","process":{"args":["/pause"],"cwd":"/"},"root":{"path":"rootfs"}}`)

func podLabels(kind, pod, ctr string) map[string]string {
	l := map[string]string{
		"io.cri-containerd.kind":      kind,
		"io.kubernetes.pod.name":      pod,
		"io.kubernetes.pod.namespace": "shop",
		"io.kubernetes.pod.uid":       "uid-1",
	}
	if ctr != "" {
		l["io.kubernetes.container.name"] = ctr
	}
	return l
}

func writeV2(path string) error {
	bdb, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer bdb.Close()
	db := metadata.NewDB(bdb, nil, nil)
	if err := db.Init(context.Background()); err != nil {
		return err
	}
	k8s := namespaces.WithNamespace(context.Background(), "k8s.io")
	cs := metadata.NewContainerStore(db)
	ss := metadata.NewSandboxStore(db)
	any := func(url string, v []byte) typeurl.Any { return &types.Any{TypeUrl: url, Value: v} }
	for _, c := range []containers.Container{
		{
			ID: podSandbox, Labels: podLabels("sandbox", "cart-0", ""), Image: "registry.k8s.io/pause:3.10",
			Runtime: containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec), SandboxID: podSandbox,
			Extensions: map[string]typeurl.Any{"io.cri-containerd.sandbox.metadata": any(sandboxMetaURL, sandboxMeta(podSandbox, "cart-0", "shop", "uid-1", "10.4.0.7"))},
		},
		{
			ID: appID, Labels: podLabels("container", "cart-0", "cart"), Image: "registry.example/shop/cart:2.1",
			Runtime: containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec), SandboxID: podSandbox,
			Extensions: map[string]typeurl.Any{"io.cri-containerd.container.metadata": any(ctrMetaURL, ctrMeta(appID, podSandbox, "cart"))},
		},
	} {
		if _, err := cs.Create(k8s, c); err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
	}
	for _, s := range []sandbox.Sandbox{
		{
			ID: podSandbox, Labels: map[string]string{"name": "cart-0_shop_uid-1_0"}, Sandboxer: "podsandbox",
			Runtime:    sandbox.RuntimeOpts{Name: runcV2},
			Spec:       any(specURL, spec),
			Extensions: map[string]typeurl.Any{"metadata": any(sandboxMetaURL, sandboxMeta(podSandbox, "cart-0", "shop", "uid-1", "10.4.0.7"))},
		},
		{
			ID: shimSandbox, Labels: map[string]string{"name": "vm-0_shop_uid-2_0"}, Sandboxer: "shim",
			Runtime:    sandbox.RuntimeOpts{Name: "io.containerd.kata.v2"},
			Extensions: map[string]typeurl.Any{"metadata": any(sandboxMetaURL, sandboxMeta(shimSandbox, "vm-0", "shop", "uid-2", "10.4.0.9"))},
		},
	} {
		if _, err := ss.Create(k8s, s); err != nil {
			return fmt.Errorf("sandbox %s: %w", s.ID, err)
		}
	}
	def := namespaces.WithNamespace(context.Background(), "default")
	_, err = cs.Create(def, containers.Container{ID: "debug", Image: "docker.io/library/busybox:1.36", Runtime: containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec)})
	return err
}

func writeV17(path string) error {
	bdb, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer bdb.Close()
	db := v17meta.NewDB(bdb, nil, nil)
	if err := db.Init(context.Background()); err != nil {
		return err
	}
	k8s := v17ns.WithNamespace(context.Background(), "k8s.io")
	cs := v17meta.NewContainerStore(db)
	ss := v17meta.NewSandboxStore(db)
	any := func(url string, v []byte) typeurl.Any { return &v17types.Any{TypeUrl: url, Value: v} }
	for _, c := range []v17containers.Container{
		{
			ID: podSandbox, Labels: podLabels("sandbox", "cart-0", ""), Image: "registry.k8s.io/pause:3.9",
			Runtime: v17containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec), SandboxID: podSandbox,
			Extensions: map[string]typeurl.Any{"io.cri-containerd.sandbox.metadata": any(sandboxMetaURL, sandboxMeta(podSandbox, "cart-0", "shop", "uid-1", "10.4.0.7"))},
		},
		{
			ID: appID, Labels: podLabels("container", "cart-0", "cart"), Image: "registry.example/shop/cart:2.1",
			Runtime: v17containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec), SandboxID: podSandbox,
			Extensions: map[string]typeurl.Any{"io.cri-containerd.container.metadata": any(ctrMetaURL, ctrMeta(appID, podSandbox, "cart"))},
		},
	} {
		if _, err := cs.Create(k8s, c); err != nil {
			return fmt.Errorf("container %s: %w", c.ID, err)
		}
	}
	for _, s := range []v17sandbox.Sandbox{
		{
			ID: podSandbox, Labels: map[string]string{"name": "cart-0_shop_uid-1_0"},
			Runtime:    v17sandbox.RuntimeOpts{Name: runcV2},
			Spec:       any(specURL, spec),
			Extensions: map[string]typeurl.Any{"metadata": any(sandboxMetaURL, sandboxMeta(podSandbox, "cart-0", "shop", "uid-1", "10.4.0.7"))},
		},
		{
			ID: shimSandbox, Labels: map[string]string{"name": "vm-0_shop_uid-2_0"},
			Runtime:    v17sandbox.RuntimeOpts{Name: "io.containerd.kata.v2"},
			Spec:       any(specURL, spec),
			Extensions: map[string]typeurl.Any{"metadata": any(sandboxMetaURL, sandboxMeta(shimSandbox, "vm-0", "shop", "uid-2", "10.4.0.9"))},
		},
	} {
		if _, err := ss.Create(k8s, s); err != nil {
			return fmt.Errorf("sandbox %s: %w", s.ID, err)
		}
	}
	def := v17ns.WithNamespace(context.Background(), "default")
	_, err = cs.Create(def, v17containers.Container{ID: "debug", Image: "docker.io/library/busybox:1.36", Runtime: v17containers.RuntimeInfo{Name: runcV2}, Spec: any(specURL, spec)})
	return err
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen V2.DB V1.7.DB")
		os.Exit(2)
	}
	for i, w := range []func(string) error{writeV2, writeV17} {
		os.Remove(os.Args[1+i])
		if err := w(os.Args[1+i]); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
